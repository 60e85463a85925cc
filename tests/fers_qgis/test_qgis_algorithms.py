"""Every algorithm through processing.run on small georeferenced GeoTIFFs (and one real scene)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from qgis_helpers import (
    cuda_available,
    expected_device,
    raster_geometry,
    read_band,
    synthetic_cube,
    write_tif,
)

from fers_engine.choices import DEFAULT_DETECTOR, DEFAULT_ENHANCER


def run(alg_id, params, feedback=None, context=None):
    import processing

    return processing.run(alg_id, params, feedback=feedback, context=context)


def test_detect_rx_keeps_georeference_and_finds_targets(provider, small_scene, tmp_path, recording_feedback):
    scene, _, truth = small_scene
    out = str(tmp_path / "score.tif")
    fb = recording_feedback()
    res = run("fers:detect", {"INPUT": scene, "ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": out}, fb)
    assert res["OUTPUT"] == out and os.path.isfile(out)
    assert res["OUTPUT_MASK"] is None
    assert res["DEVICE"] == expected_device("auto")
    assert raster_geometry(out)[:4] == raster_geometry(scene)[:4]
    assert raster_geometry(out)[4] == 1
    scores, _ = read_band(out)
    assert scores.dtype == np.float32 and np.isfinite(scores).all()
    top = np.argsort(scores.ravel())[::-1][: int(truth.sum())]
    assert set(top) == set(np.flatnonzero(truth.ravel()))
    assert fb.progress_values and max(fb.progress_values) == pytest.approx(100.0)
    assert f"Device used: {res['DEVICE']}" in fb.infos


def test_detect_lrx_with_bands_and_mask(provider, small_scene, tmp_path):
    scene, _, truth = small_scene
    out, mask = str(tmp_path / "score.tif"), str(tmp_path / "mask.tif")
    res = run(
        "fers:detect",
        {
            "INPUT": scene,
            "ENHANCER": "none",
            "DETECTOR": "lrx",
            "WINDOW_INNER": 3,
            "WINDOW_OUTER": 9,
            "BANDS": [1, 2, 3, 5, 8],
            "BLOCK_SIZE": 7,
            "OUTPUT": out,
            "OUTPUT_MASK": mask,
            "THRESHOLD_METHOD": "percentile",
            "THRESHOLD_VALUE": 99.0,
        },
    )
    assert res["OUTPUT_MASK"] == mask and isinstance(res["THRESHOLD"], float)
    m, nodata = read_band(mask)
    assert m.dtype == np.uint8 and nodata == 255
    assert set(np.unique(m)) <= {0, 1}
    assert 1 <= int((m == 1).sum()) <= 0.02 * m.size + 1
    assert raster_geometry(mask)[:4] == raster_geometry(scene)[:4]


def test_detect_lrx_scene_covariance_is_logged(provider, small_scene, tmp_path, recording_feedback):
    scene, _, _ = small_scene
    out = str(tmp_path / "score.tif")
    fb = recording_feedback()
    run(
        "fers:detect",
        {
            "INPUT": scene,
            "ENHANCER": "none",
            "DETECTOR": "lrx",
            "WINDOW_INNER": 3,
            "WINDOW_OUTER": 9,
            "LOCAL_COVARIANCE": "scene",
            "OUTPUT": out,
        },
        fb,
    )
    assert any("local RX covariance: scene" in m for m in fb.infos), fb.infos
    scores, _ = read_band(out)
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("max_threads", [1, -1])
def test_windowed_detectors_use_qgis_thread_setting(
    provider, small_scene, tmp_path, recording_feedback, max_threads
):
    """QGIS's "Max cores to use" bounds the CRD / local RX kernels' threads; without a limit they
    use every core the process may run on."""
    from qgis.core import QgsApplication

    from fers_engine.detectors import compiled
    from fers_engine.detectors.parallel import available_cores

    if not compiled.available():
        pytest.skip("the thread count is logged by the compiled (numba) kernels")
    scene, _, _ = small_scene
    before = QgsApplication.maxThreads()
    QgsApplication.setMaxThreads(max_threads)
    try:
        fb = recording_feedback()
        params = {"INPUT": scene, "ENHANCER": "none", "DETECTOR": "crd", "WINDOW_INNER": 3, "WINDOW_OUTER": 9}
        run("fers:detect", {**params, "OUTPUT": str(tmp_path / "score.tif")}, fb)
    finally:
        QgsApplication.setMaxThreads(before)
    threads = 1 if max_threads == 1 else available_cores()
    expected = f"on {threads} thread" + ("s" if threads != 1 else "") + ";"
    assert any(m.startswith("CRD: compiled kernel") and expected in m for m in fb.infos), fb.infos


def test_threshold_keeps_nodata(provider, tmp_path):
    scores = np.arange(200, dtype=np.float32).reshape(10, 20)
    scores[0, :5] = np.nan
    src = write_tif(tmp_path / "scores.tif", scores, nodata=float("nan"))
    out = str(tmp_path / "mask.tif")
    res = run("fers:threshold", {"INPUT": src, "METHOD": "value", "VALUE": 150.0, "OUTPUT": out})
    assert res["THRESHOLD"] == pytest.approx(150.0)
    m, nodata = read_band(out)
    assert nodata == 255 and (m[0, :5] == 255).all()
    assert (m[scores > 150] == 1).all() and (m[(scores <= 150)] == 0).all()
    assert raster_geometry(out)[:4] == raster_geometry(src)[:4]
    res = run("fers:threshold", {"INPUT": src, "METHOD": "otsu", "OUTPUT": str(tmp_path / "otsu.tif")})
    assert np.isfinite(res["THRESHOLD"])
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="value"):
        run("fers:threshold", {"INPUT": src, "METHOD": "value", "OUTPUT": str(tmp_path / "x.tif")})


def test_evaluate_outputs_numbers_and_html(provider, small_scene, tmp_path):
    scene, gt, _ = small_scene
    score = str(tmp_path / "score.tif")
    run("fers:detect", {"INPUT": scene, "ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": score})
    html = str(tmp_path / "report.html")
    res = run("fers:evaluate", {"SCORE": score, "GROUND_TRUTH": gt, "OUTPUT_HTML": html})
    for key in ("AUC", "AUC_PD_PF", "AUC_PD_TAU", "AUC_PF_TAU"):
        assert isinstance(res[key], float) and 0.0 <= res[key] <= 1.0, key
    assert res["AUC"] > 0.95
    text = open(html, encoding="utf-8").read()
    assert "<svg" in text and "<polyline" in text and f"{res['AUC']:.6f}" in text


def test_real_scene_detect_and_evaluate(provider, real_scene, tmp_path):
    scene, truth = real_scene
    out = str(tmp_path / "sd_score.tif")
    res = run("fers:detect", {"INPUT": scene, "ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": out})
    geo_in, geo_out = raster_geometry(scene), raster_geometry(out)
    assert geo_in[0] is not None  # the ENVI header's UTM 11N (NAD27) CRS survived the conversion
    assert geo_out[:4] == geo_in[:4]
    ev = run(
        "fers:evaluate",
        {"SCORE": res["OUTPUT"], "GROUND_TRUTH": truth, "OUTPUT_HTML": str(tmp_path / "sd.html")},
    )
    assert ev["AUC"] > 0.8


def test_batch_runs_reuse_one_instance_and_style_outputs(provider, tmp_path, recording_feedback):
    """What the batch dialog does: one instance, a new context per row, results handled per row.

    The batch panel hands every destination over as an output definition, an unset optional one
    (OUTPUT_MASK) with an empty path; loading the results must not report that as a failed layer.
    """
    from processing.gui.Postprocessing import handleAlgorithmResults
    from processing.tools import dataobjects
    from qgis.core import QgsApplication, QgsProcessingOutputLayerDefinition, QgsProject

    alg = QgsApplication.processingRegistry().createAlgorithmById("fers:detect")
    project = QgsProject.instance()
    project.removeAllMapLayers()
    outputs = []
    for i in range(2):
        cube, _ = synthetic_cube(bands=6, rows=12 + i * 4, cols=10, seed=i)
        src = write_tif(tmp_path / f"in{i}.tif", cube)
        out = str(tmp_path / f"out{i}.tif")
        params = alg.preprocessParameters(
            {
                "INPUT": src,
                "ENHANCER": "none",
                "DETECTOR": "rx",
                "OUTPUT": QgsProcessingOutputLayerDefinition(out, project),
                "OUTPUT_MASK": QgsProcessingOutputLayerDefinition("", project),
            }
        )
        feedback = recording_feedback()
        context = dataobjects.createContext(feedback)
        results, ok = alg.run(params, context, feedback)
        assert ok, f"row {i} failed"
        assert results["OUTPUT"] == out and raster_geometry(out)[:4] == raster_geometry(src)[:4]
        assert results["OUTPUT_MASK"] is None
        assert handleAlgorithmResults(alg, context, feedback, False, params), feedback.errors
        assert not feedback.errors, feedback.errors
        outputs.append(out)
    layers = list(project.mapLayers().values())
    assert len(layers) == 2
    for layer in layers:
        assert layer.renderer().type() == "singlebandpseudocolor"
        shader = layer.renderer().shader().rasterShaderFunction()
        stats = layer.dataProvider().bandStatistics(1)
        assert stats.minimumValue <= shader.minimumValue() < shader.maximumValue() <= stats.maximumValue
    project.removeAllMapLayers()


def test_cancel_after_first_block_leaves_no_output(provider, tmp_path, recording_feedback):
    from qgis.core import QgsProcessingException

    cube, _ = synthetic_cube(bands=6, rows=40, cols=12)
    src = write_tif(tmp_path / "in.tif", cube)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = str(out_dir / "score.tif")
    fb = recording_feedback(cancel_after_progress=1)
    with pytest.raises(QgsProcessingException, match="cancel"):
        run(
            "fers:detect",
            {"INPUT": src, "ENHANCER": "none", "DETECTOR": "rx", "BLOCK_SIZE": 2, "OUTPUT": out},
            fb,
        )
    assert fb.isCanceled()
    assert len(fb.progress_values) < 10  # stopped after the first block, not at the end
    assert not os.path.exists(out)
    assert list(out_dir.iterdir()) == []  # no temporary leftovers either


def test_one_band_raster_is_a_clear_error(provider, tmp_path):
    from qgis.core import QgsProcessingException

    src = write_tif(tmp_path / "one.tif", np.ones((1, 8, 8), np.float32))
    with pytest.raises(QgsProcessingException, match="band"):
        run(
            "fers:detect",
            {"INPUT": src, "ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": str(tmp_path / "o.tif")},
        )
    assert not os.path.exists(tmp_path / "o.tif")


def test_missing_band_is_named_one_based(provider, tmp_path):
    from qgis.core import QgsProcessingException

    cube, _ = synthetic_cube(bands=5, rows=10, cols=10)
    src = write_tif(tmp_path / "five.tif", cube)
    with pytest.raises(QgsProcessingException, match="band 9 does not exist: .* has 5 bands"):
        run(
            "fers:detect",
            {
                "INPUT": src,
                "BANDS": [1, 9],
                "ENHANCER": "none",
                "DETECTOR": "rx",
                "OUTPUT": str(tmp_path / "o.tif"),
            },
        )
    assert not os.path.exists(tmp_path / "o.tif")


def test_raster_without_crs_runs_with_warning(provider, tmp_path, recording_feedback):
    cube, _ = synthetic_cube(bands=5, rows=10, cols=10)
    src = write_tif(tmp_path / "nocrs.tif", cube, crs=None)
    fb = recording_feedback()
    res = run(
        "fers:detect",
        {"INPUT": src, "ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": str(tmp_path / "o.tif")},
        fb,
    )
    assert os.path.isfile(res["OUTPUT"])
    assert any("CRS" in w for w in fb.warnings), fb.log


def test_requested_gpu_never_falls_back_silently(provider, small_scene, tmp_path, recording_feedback):
    """DEVICE=cuda runs on the GPU where there is one, and says so aloud where it falls back to the CPU."""
    scene, _, _ = small_scene
    fb = recording_feedback()
    res = run(
        "fers:detect",
        {
            "INPUT": scene,
            "ENHANCER": "none",
            "DETECTOR": "rx",
            "DEVICE": "cuda",
            "OUTPUT": str(tmp_path / "o.tif"),
        },
        fb,
    )
    assert res["DEVICE"] == expected_device("cuda")
    cuda_warnings = [w for w in fb.warnings if "cuda" in w]
    if cuda_available():
        assert not cuda_warnings, fb.log
    else:
        assert len(cuda_warnings) == 1, fb.log  # said once, not once by the engine and again by the plugin


def test_detect_dialog_opens_offscreen(provider, qgis_iface, monkeypatch, small_scene, tmp_path):
    """The Processing dialog builds a widget for every parameter (offscreen, pytest-qgis iface)."""
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from processing.tools import dataobjects
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

    # pytest-qgis' iface mock returns a MagicMock here; the dialog wants a real model or None
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: None, raising=False)
    layer = QgsRasterLayer(small_scene[0], "scene")
    QgsProject.instance().addMapLayer(layer)
    try:
        alg = QgsApplication.processingRegistry().createAlgorithmById("fers:detect")
        dialog = AlgorithmDialog(alg, False, None)
        context = dataobjects.createContext()
        dialog.mainWidget().wrappers["INPUT"].setParameterValue(layer, context)
        dialog.show()
        wrappers = dialog.mainWidget().wrappers
        for param in alg.parameterDefinitions():
            assert param.name() in wrappers, param.name()
        params = dialog.mainWidget().createProcessingParameters()
        assert params["ENHANCER"] == DEFAULT_ENHANCER and params["DETECTOR"] == DEFAULT_DETECTOR
        # what the dialog hands over (the empty file widget included) runs as it is
        params.update(ENHANCER="none", OUTPUT=str(tmp_path / "from_dialog.tif"))
        ok, message = alg.checkParameterValues(params, context)
        assert ok, message
        assert run("fers:detect", params)["OUTPUT"] == str(tmp_path / "from_dialog.tif")
        dialog.close()
    finally:
        QgsProject.instance().removeAllMapLayers()


def test_cancelled_threshold_and_evaluate_leave_no_output(provider, tmp_path, recording_feedback):
    from qgis.core import QgsProcessingException

    scores = np.random.default_rng(1).random((12, 10)).astype(np.float32)
    src = write_tif(tmp_path / "scores.tif", scores)
    truth = write_tif(tmp_path / "truth.tif", (scores > 0.9).astype(np.uint8))
    for alg_id, params, out in (
        ("fers:threshold", {"INPUT": src, "OUTPUT": str(tmp_path / "mask.tif")}, tmp_path / "mask.tif"),
        (
            "fers:evaluate",
            {"SCORE": src, "GROUND_TRUTH": truth, "OUTPUT_HTML": str(tmp_path / "r.html")},
            tmp_path / "r.html",
        ),
    ):
        fb = recording_feedback()
        fb.cancel()
        with pytest.raises(QgsProcessingException, match="cancel"):
            run(alg_id, params, fb)
        assert not out.exists(), alg_id


def test_shipped_model_runs_from_the_toolbox(provider, small_scene, tmp_path):
    """The .model3 as the provider lists it (what the Toolbox and the modeler run)."""
    from osgeo import ogr

    scene, _, truth = small_scene
    polys = str(tmp_path / "anomalies.gpkg")
    res = run(
        "fers:detect_threshold_polygonize",
        {
            "INPUT": scene,
            "ENHANCER": "none",
            "DETECTOR": "rx",
            "THRESHOLD_METHOD": "false_alarm_rate",
            "THRESHOLD_VALUE": 0.005,
            "fers_detect_1:SCORE": str(tmp_path / "score.tif"),
            "fers_threshold_1:MASK": str(tmp_path / "mask.tif"),
            "native_extractbyattribute_1:POLYGONS": polys,
        },
    )
    assert res["fers_detect_1:SCORE"] == str(tmp_path / "score.tif")
    mask, _ = read_band(tmp_path / "mask.tif")
    assert (mask == 1).sum() >= 1
    ds = ogr.Open(polys)  # keep the dataset referenced while its layer is used (GDAL segfaults otherwise)
    layer = ds.GetLayer(0)
    assert layer.GetFeatureCount() >= 1 and {f.GetField("DN") for f in layer} == {1}
    ds = None


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_outputs_follow_the_umask(provider, small_scene, tmp_path, umask):
    """Colleagues and map servers read what FERS writes: outputs get any new file's mode."""
    import stat

    scene, _, _ = small_scene
    out, mask = tmp_path / "score.tif", tmp_path / "mask.tif"
    previous = os.umask(umask)
    try:
        run(
            "fers:detect",
            {
                "INPUT": scene,
                "ENHANCER": "none",
                "DETECTOR": "rx",
                "OUTPUT": str(out),
                "OUTPUT_MASK": str(mask),
            },
        )
    finally:
        os.umask(previous)
    for path in (out, mask):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name


def test_detect_dialog_offers_the_selected_layer(provider, qgis_iface, monkeypatch, small_scene):
    """Found in QGIS desktop: Detect anomalies opened from the Toolbox with the scene loaded and selected
    had an empty layer field (QGIS preselects the active layer only for mandatory layer parameters)."""
    import qgis.utils
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

    monkeypatch.setattr(qgis_iface, "browserModel", lambda: None, raising=False)
    monkeypatch.setattr(qgis.utils, "iface", qgis_iface)
    layer = QgsRasterLayer(small_scene[0], "scene")
    QgsProject.instance().addMapLayer(layer)
    try:
        qgis_iface.setActiveLayer(layer)
        alg = QgsApplication.processingRegistry().createAlgorithmById("fers:detect")
        dialog = AlgorithmDialog(alg, False, None)
        offered = dialog.mainWidget().createProcessingParameters()["INPUT"]
        dialog.close()
        assert offered in (layer.id(), layer.source(), layer), offered
        assert alg.parameterDefinition("INPUT").defaultValue() is None  # not a default the model would copy
    finally:
        QgsProject.instance().removeAllMapLayers()
