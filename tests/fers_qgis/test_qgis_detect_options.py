"""fers:detect offers what the engine has: CRD_LAMBDA, THREADS, the product reader options NO_ORTHO and
NORTH_UP, WAVELENGTHS and KEEP_BAD_BANDS, and a file picker that lists the sensor products; each reaches
the engine as the CLI's flag does."""

from __future__ import annotations

import fnmatch
import re
import sys

import numpy as np
import pytest
from qgis_helpers import REPO, read_band

sys.path.insert(0, str(REPO / "tests" / "fers_engine" / "io"))  # the product builders of the reader tests
from products.aviris import rotated_geotransform, write_envi  # noqa: E402
from products.common import band_table, reflectance  # noqa: E402
from products.emit import small_product  # noqa: E402

ADVANCED = ("CRD_LAMBDA", "THREADS", "NO_ORTHO", "NORTH_UP", "KEEP_BAD_BANDS")


def run(params, feedback=None):
    import processing

    return processing.run("fers:detect", params, feedback=feedback)


@pytest.fixture
def recorded_options(monkeypatch):
    """The DetectOptions each fers:detect run hands to the engine (the run itself still happens)."""
    import fers_engine.pipeline as pipeline

    seen = []
    real = pipeline.detect

    def recording(src, out, options, *args, **kwargs):
        seen.append(options)
        return real(src, out, options, *args, **kwargs)

    monkeypatch.setattr(pipeline, "detect", recording)
    return seen


@pytest.fixture
def processing_threads():
    """Set QGIS's Processing > General > Max Threads (None = never saved) for one test, then restore it."""
    from qgis.core import QgsSettings

    from fers_qgis.threads import PROCESSING_MAX_THREADS_KEY

    settings = QgsSettings()
    before = settings.value(PROCESSING_MAX_THREADS_KEY, None)

    def set_to(value):
        if value is None:
            settings.remove(PROCESSING_MAX_THREADS_KEY)
        else:
            settings.setValue(PROCESSING_MAX_THREADS_KEY, value)

    yield set_to
    set_to(before)


def test_new_parameters_are_advanced_with_the_engines_defaults(provider):
    from qgis.core import QgsProcessingParameterDefinition

    from fers_engine.choices import DEFAULT_CRD_LAMBDA
    from fers_engine.io.open import ReaderOptions
    from fers_engine.pipeline import DetectOptions

    alg = provider.algorithm("detect")
    for key in ADVANCED + ("WAVELENGTHS",):
        param = alg.parameterDefinition(key)
        assert param is not None, key
        assert param.flags() & QgsProcessingParameterDefinition.FlagAdvanced, key
    assert alg.parameterDefinition("CRD_LAMBDA").defaultValue() == DEFAULT_CRD_LAMBDA
    assert alg.parameterDefinition("THREADS").defaultValue() == 0
    assert alg.parameterDefinition("NO_ORTHO").defaultValue() is (not ReaderOptions().ortho)
    assert alg.parameterDefinition("NORTH_UP").defaultValue() is ReaderOptions().north_up
    assert alg.parameterDefinition("KEEP_BAD_BANDS").defaultValue() is (not DetectOptions().drop_bad_bands)
    assert alg.parameterDefinition("WAVELENGTHS").defaultValue() is None


def test_crd_lambda_reaches_the_engine(provider, small_scene, tmp_path):
    from fers_engine.choices import DEFAULT_CRD_LAMBDA
    from fers_engine.pipeline import DetectOptions, detect

    scene, _, _ = small_scene
    base = {"INPUT": scene, "ENHANCER": "none", "DETECTOR": "crd", "WINDOW_INNER": 3, "WINDOW_OUTER": 7}
    default = run({**base, "OUTPUT": str(tmp_path / "default.tif")})["OUTPUT"]
    strong = run({**base, "CRD_LAMBDA": 2.5, "OUTPUT": str(tmp_path / "strong.tif")})["OUTPUT"]
    for lam, path in ((DEFAULT_CRD_LAMBDA, default), (2.5, strong)):
        ref = tmp_path / f"engine_{lam}.tif"
        detect(scene, ref, DetectOptions(detector="crd", inner=3, outer=7, crd_lambda=lam, enhancer="none"))
        np.testing.assert_array_equal(read_band(path)[0], read_band(ref)[0])
    assert not np.allclose(read_band(default)[0], read_band(strong)[0])


def test_crd_rx_and_its_lambda_reach_the_engine(provider, small_scene, tmp_path):
    from fers_engine.pipeline import DetectOptions, detect

    scene, _, _ = small_scene
    params = {"INPUT": scene, "ENHANCER": "none", "DETECTOR": "crd+rx", "WINDOW_INNER": 3, "WINDOW_OUTER": 7}
    out = run({**params, "CRD_LAMBDA": 0.5, "OUTPUT": str(tmp_path / "fused.tif")})["OUTPUT"]
    ref = tmp_path / "engine.tif"
    detect(scene, ref, DetectOptions(detector="crd+rx", inner=3, outer=7, crd_lambda=0.5, enhancer="none"))
    np.testing.assert_array_equal(read_band(out)[0], read_band(ref)[0])
    crd_only = run({**params, "DETECTOR": "crd", "CRD_LAMBDA": 0.5, "OUTPUT": str(tmp_path / "crd.tif")})
    assert not np.allclose(read_band(out)[0], read_band(crd_only["OUTPUT"])[0], equal_nan=True)


def test_crd_lambda_of_zero_is_one_line_and_no_output(provider, small_scene, tmp_path):
    from qgis.core import QgsProcessingException

    out = tmp_path / "score.tif"
    with pytest.raises(QgsProcessingException) as err:
        run(
            {
                "INPUT": small_scene[0],
                "ENHANCER": "none",
                "DETECTOR": "crd",
                "CRD_LAMBDA": 0.0,
                "OUTPUT": str(out),
            }
        )
    assert "lambda" in str(err.value) and "\n" not in str(err.value).strip()
    assert not out.exists()


@pytest.mark.parametrize(
    "threads, setting, workers",
    [
        (3, 2, 3),  # a THREADS value wins over QGIS's setting
        (0, 2, 2),  # 0: QGIS's Processing Max Threads
        (0, "2", 2),  # as QgsSettings reads it back from QGIS3.ini
        (0, -1, None),  # -1: no limit, every core of the affinity mask (the engine's None)
    ],
)
def test_threads_follow_qgis_processing_setting(
    provider, small_scene, tmp_path, recorded_options, processing_threads, threads, setting, workers
):
    processing_threads(setting)
    run(
        {
            "INPUT": small_scene[0],
            "ENHANCER": "none",
            "DETECTOR": "lrx",
            "WINDOW_OUTER": 7,
            "THREADS": threads,
            "OUTPUT": str(tmp_path / "score.tif"),
        }
    )
    assert recorded_options[-1].workers == workers


def test_threads_unset_in_processing_fall_back_to_qgis_rendering_limit(
    provider, processing_threads, monkeypatch
):
    """Processing's own default for its setting is QGIS's "Max cores to use" (-1 = no limit)."""
    from qgis.core import QgsApplication

    from fers_qgis.threads import qgis_max_threads

    processing_threads(None)
    monkeypatch.setattr(QgsApplication, "maxThreads", staticmethod(lambda: 5))
    assert qgis_max_threads() == 5
    monkeypatch.setattr(QgsApplication, "maxThreads", staticmethod(lambda: -1))
    assert qgis_max_threads() is None


def test_threads_reach_the_kernel_through_qgis_process(qgis_process, small_scene, tmp_path):
    """What a headless user types; the compiled kernel's log line says how many threads ran (one more than
    this machine's cores, so that the engine's own default cannot pass for it)."""
    pytest.importorskip("numba")
    from fers_engine.detectors.parallel import available_cores

    threads = available_cores() + 1
    out = tmp_path / "score.tif"
    proc = qgis_process(
        "run",
        "fers:detect",
        "--",
        f"INPUT={small_scene[0]}",
        "ENHANCER=none",
        "DETECTOR=lrx",
        "WINDOW_OUTER=7",
        f"THREADS={threads}",
        f"OUTPUT={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"local RX: compiled kernel (numba) on {threads} threads" in proc.stdout, proc.stdout[-3000:]


@pytest.fixture
def emit_product(shared_data, tmp_path):
    path, _, _, ortho_shape = small_product(tmp_path, shared_data)
    return path, ortho_shape


def test_no_ortho_keeps_the_emit_swath(provider, emit_product, tmp_path):
    from osgeo import gdal

    path, ortho_shape = emit_product
    ortho = run(
        {"INPUT_FILE": str(path), "ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": str(tmp_path / "ortho.tif")}
    )["OUTPUT"]
    swath = run(
        {
            "INPUT_FILE": str(path),
            "ENHANCER": "none",
            "DETECTOR": "rx",
            "NO_ORTHO": True,
            "OUTPUT": str(tmp_path / "swath.tif"),
        }
    )["OUTPUT"]
    assert read_band(ortho)[0].shape == ortho_shape
    assert read_band(swath)[0].shape == (40, 30)
    assert gdal.Open(ortho).GetProjection() and not gdal.Open(swath).GetProjection()


def test_north_up_writes_an_axis_aligned_grid(provider, shared_data, tmp_path):
    from osgeo import gdal

    wl, fwhm = band_table(shared_data, "emit")
    data = write_envi(tmp_path, reflectance(30, 20, wl).cube, wl, fwhm, np.ones(wl.size, int))
    rotated = run(
        {"INPUT_FILE": str(data), "ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": str(tmp_path / "rot.tif")}
    )["OUTPUT"]
    north = run(
        {
            "INPUT_FILE": str(data),
            "ENHANCER": "none",
            "DETECTOR": "rx",
            "NORTH_UP": True,
            "OUTPUT": str(tmp_path / "north.tif"),
        }
    )["OUTPUT"]
    np.testing.assert_allclose(gdal.Open(rotated).GetGeoTransform(), rotated_geotransform())
    gt = gdal.Open(north).GetGeoTransform()
    assert gt[2] == gt[4] == 0.0 and gt[1] > 0 > gt[5]


def test_crd_lambda_through_qgis_process(qgis_process, small_scene, tmp_path):
    """CRD_LAMBDA typed on the command line gives the engine's scores for that lambda."""
    from fers_engine.pipeline import DetectOptions, detect

    scene = small_scene[0]
    base = {"INPUT": scene, "ENHANCER": "none", "DETECTOR": "crd", "WINDOW_INNER": 3, "WINDOW_OUTER": 7}
    ref = tmp_path / "engine.tif"
    detect(scene, ref, DetectOptions(detector="crd", inner=3, outer=7, crd_lambda=2.5, enhancer="none"))
    out = tmp_path / "cli.tif"
    proc = qgis_process(
        "run", "fers:detect", "--", *(f"{k}={v}" for k, v in base.items()), "CRD_LAMBDA=2.5", f"OUTPUT={out}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(read_band(out)[0], read_band(ref)[0])


def test_reader_options_through_qgis_process(qgis_process, emit_product, tmp_path):
    path, _ = emit_product
    out = tmp_path / "swath.tif"
    proc = qgis_process(
        "run",
        "fers:detect",
        "--",
        f"INPUT_FILE={path}",
        "ENHANCER=none",
        "DETECTOR=rx",
        "NO_ORTHO=true",
        f"OUTPUT={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_band(out)[0].shape == (40, 30)


def _filters(alg):
    """{label: [patterns]} of the INPUT_FILE picker, in the order the dialog lists them."""
    text = alg.parameterDefinition("INPUT_FILE").fileFilter()
    groups = [re.fullmatch(r"(.+) \((.+)\)", entry).groups() for entry in text.split(";;")]
    return {label: patterns.split() for label, patterns in groups}


@pytest.mark.parametrize(
    "name",
    [
        "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc",  # EMIT
        "PRS_L2D_STD_20230615101315_20230615101319_0001.he5",  # PRISMA
        "TNG_20240601_hyp_ortho.h5",  # Tanager
        "ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z-METADATA.XML",
        "ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z-SPECTRAL_IMAGE.TIF",
        "ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z.ZIP",
        "DESIS-HSI-L2A-DT0483366000_001-20200703T044212-V0210-SPECTRAL_IMAGE.tif",
        "DESIS-HSI-L2A-DT0483366000_001-20200703T044212-V0210-METADATA.xml",
        "ang20190624t230039_rfl_v2v2_img.hdr",  # ENVI header
        "scene.img",  # ENVI data file
        "scene.tif",
        "Sandiego.mat",
    ],
)
def test_file_picker_lists_the_products(provider, name):
    filters = _filters(provider.algorithm("detect"))
    first = next(iter(filters))
    assert any(fnmatch.fnmatchcase(name, p) for p in filters[first]), (name, first)
    assert sum(any(fnmatch.fnmatchcase(name, p) for p in patterns) for patterns in filters.values()) >= 3, (
        name
    )
    assert list(filters)[-1] == "All files" and filters["All files"] == ["*"]


def test_file_picker_has_a_line_per_product(provider):
    from fers_engine.io.open import PRODUCT_FILE_FILTERS

    filters = _filters(provider.algorithm("detect"))
    for label, patterns in PRODUCT_FILE_FILTERS:
        assert filters[label] == patterns.split(), label
    assert {"ENVI (header or data file)", "MATLAB cube", "GeoTIFF"} <= set(filters)


def test_graphical_model_fixes_the_new_parameters_at_detects_defaults(provider):
    """The shipped model passes THREADS=0 (QGIS's setting, not the build machine's core count)."""
    from qgis.core import QgsApplication

    model = QgsApplication.processingRegistry().createAlgorithmById("fers:detect_threshold_polygonize")
    sources = model.childAlgorithm("fers_detect_1").parameterSources()
    detect = provider.algorithm("detect")
    for key in ADVANCED:
        (source,) = sources[key]
        assert source.staticValue() == detect.parameterDefinition(key).defaultValue(), key


ENMAP_TILE = "enmap-l2a-potsdam-tiles/images/enmap_potsdam_tile_128_0.tif"


def _bands_used(feedback_or_messages):
    return [m for m in feedback_or_messages if m.startswith("input ")]


def test_wavelengths_choose_the_bands_of_a_scene_file(provider, shared_data, tmp_path, recording_feedback):
    """WAVELENGTHS works for a scene file (BANDS lists only a layer's bands): a real EnMAP tile given
    as a file uses exactly the bands, and gets the scores, of the engine's own run with those ranges."""
    from fers_engine.pipeline import DetectOptions, detect
    from fers_engine.progress import Reporter

    tile = shared_data / ENMAP_TILE
    fb = recording_feedback()
    run(
        {
            "INPUT_FILE": str(tile),
            "ENHANCER": "none",
            "DETECTOR": "rx",
            "WAVELENGTHS": "400-1340, 1450-1800",
            "OUTPUT": str(tmp_path / "qgis.tif"),
        },
        fb,
    )
    seen = []
    detect(
        tile,
        tmp_path / "engine.tif",
        DetectOptions(enhancer="none", detector="rx", wavelength_ranges=[(400.0, 1340.0), (1450.0, 1800.0)]),
        reporter=Reporter(on_info=seen.append),
    )
    assert _bands_used(fb.infos) == _bands_used(seen) == ["input 32 x 32 px, 224 bands; using 157 bands"]
    np.testing.assert_array_equal(read_band(tmp_path / "qgis.tif")[0], read_band(tmp_path / "engine.tif")[0])


def test_keep_bad_bands_uses_the_bands_the_header_flags(provider, shared_data, tmp_path, recording_feedback):
    wl, fwhm = band_table(shared_data, "emit")
    bbl = np.ones(wl.size, int)
    bbl[:5] = 0
    data = write_envi(tmp_path, reflectance(12, 10, wl).cube, wl, fwhm, bbl, rotation=0.0)
    logs = {}
    for keep in (False, True):
        fb = recording_feedback()
        run(
            {
                "INPUT_FILE": str(data),
                "ENHANCER": "none",
                "DETECTOR": "rx",
                "KEEP_BAD_BANDS": keep,
                "OUTPUT": str(tmp_path / f"keep{keep}.tif"),
            },
            fb,
        )
        logs[keep] = _bands_used(fb.infos)
    assert logs == {
        False: [f"input 10 x 12 px, {wl.size} bands; using {wl.size - 5} bands"],
        True: [f"input 10 x 12 px, {wl.size} bands; using {wl.size} bands"],
    }, logs


def test_a_malformed_wavelength_list_is_refused_in_the_dialog(provider, small_scene):
    from qgis.core import QgsProcessingContext

    alg = provider.algorithm("detect")
    ok, message = alg.checkParameterValues(
        {"INPUT": small_scene[0], "WAVELENGTHS": "400-x", "OUTPUT": "TEMPORARY_OUTPUT"},
        QgsProcessingContext(),
    )
    assert not ok and message.startswith("WAVELENGTHS: cannot read range '400-x'"), message
