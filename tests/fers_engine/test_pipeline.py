"""The streamed detect/threshold/evaluate pipeline, checked against whole-image references."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import small_scene, write_cube
from osgeo import gdal

from fers_engine.detectors import global_rx
from fers_engine.detectors.crd import crd
from fers_engine.detectors.crd_rx import crd_rx
from fers_engine.detectors.device import choose_device
from fers_engine.detectors.lrx import local_rx
from fers_engine.errors import Cancelled, FersError, InputError, OutputError
from fers_engine.io import open_scene
from fers_engine.metrics import roc_auc
from fers_engine.pipeline import DetectOptions, detect, evaluate_rasters, scores_source, threshold_raster
from fers_engine.progress import Reporter

RX = DetectOptions(enhancer="none", detector="rx")


def _read(path):
    """(first band, WKT, geotransform, (width, height)) read with osgeo.gdal, not our reader."""
    ds = gdal.Open(str(path))
    return (
        ds.GetRasterBand(1).ReadAsArray(),
        ds.GetProjection(),
        ds.GetGeoTransform(),
        (ds.RasterXSize, ds.RasterYSize),
    )


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name)


def test_detect_keeps_georeference_and_equals_whole_image_rx(tmp_path):
    cube_path, truth_path, scene = small_scene(tmp_path)
    out = tmp_path / "score.tif"
    result = detect(cube_path, out, DetectOptions(enhancer="none", detector="rx", block_rows=7))
    scores, crs, transform, size = _read(out)
    _, src_crs, src_transform, src_size = _read(cube_path)
    assert crs == src_crs and transform == src_transform and size == src_size
    reference = global_rx(scene.cube.astype(np.float32))
    np.testing.assert_allclose(scores, reference, rtol=1e-5, atol=1e-5)
    assert roc_auc(scores, scene.truth) > 0.7  # subtle sub-pixel targets
    # the default device is "auto": the GPU where torch sees one (device-neutral: ask the policy)
    assert result.device == choose_device("auto") and result.bands_used == scene.cube.shape[0]


def test_block_size_does_not_change_scores(tmp_path):
    cube_path, _, _ = small_scene(tmp_path)
    detect(cube_path, tmp_path / "a.tif", DetectOptions(enhancer="none", detector="rx", block_rows=5))
    detect(cube_path, tmp_path / "b.tif", DetectOptions(enhancer="none", detector="rx", block_rows=1000))
    np.testing.assert_allclose(_read(tmp_path / "a.tif")[0], _read(tmp_path / "b.tif")[0], rtol=1e-5)


def test_local_rx_streamed_equals_whole_image(tmp_path):
    cube_path, _, scene = small_scene(tmp_path, rows=30, cols=26, bands=8)
    detect(
        cube_path,
        tmp_path / "l.tif",
        DetectOptions(enhancer="none", detector="lrx", inner=3, outer=9, block_rows=4),
    )
    reference = local_rx(scene.cube.astype(np.float32), inner=3, outer=9)
    np.testing.assert_allclose(_read(tmp_path / "l.tif")[0], reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("compiled", [True, False])
def test_local_rx_log_names_the_engine_that_ran(tmp_path, monkeypatch, compiled):
    from fers_engine.detectors import compiled as kernels

    if compiled and not kernels.available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(kernels, "available", lambda: compiled)
    cube_path, _, _ = small_scene(tmp_path, rows=30, cols=26, bands=8)
    result = detect(
        cube_path, tmp_path / "l.tif", DetectOptions(enhancer="none", detector="lrx", inner=3, outer=9)
    )
    expected = "compiled kernel (numba)" if compiled else "numpy path"
    assert any(expected in line for line in result.messages), result.messages


def test_local_rx_scene_covariance_equals_whole_image(tmp_path):
    cube_path, _, scene = small_scene(tmp_path, rows=30, cols=26, bands=8)
    result = detect(
        cube_path,
        tmp_path / "l.tif",
        DetectOptions(
            enhancer="none", detector="lrx", inner=3, outer=9, local_covariance="scene", block_rows=4
        ),
    )
    cube = scene.cube.astype(np.float32)
    cov = np.cov(cube.reshape(cube.shape[0], -1).astype(np.float64))
    reference = local_rx(cube, inner=3, outer=9, cov=cov)
    np.testing.assert_allclose(_read(tmp_path / "l.tif")[0], reference, rtol=1e-4, atol=1e-4)
    assert any("local RX covariance: scene" in m for m in result.messages), result.messages


def test_local_rx_auto_covariance_uses_the_scene_for_many_bands(tmp_path):
    cube_path, _, scene = small_scene(tmp_path, rows=30, cols=26, bands=30)  # 48 ring px < 2 x 30
    result = detect(
        cube_path, tmp_path / "l.tif", DetectOptions(enhancer="none", detector="lrx", inner=1, outer=7)
    )
    line = next(m for m in result.messages if "local RX covariance" in m)
    assert "scene" in line and "48 ring pixels for 30 bands" in line
    cube = scene.cube.astype(np.float32)
    cov = np.cov(cube.reshape(cube.shape[0], -1).astype(np.float64))
    reference = local_rx(cube, inner=1, outer=7, cov=cov)
    np.testing.assert_allclose(_read(tmp_path / "l.tif")[0], reference, rtol=1e-4, atol=1e-4)


def test_forced_ring_covariance_on_singular_rings_is_a_warning(tmp_path):
    cube_path, _, _ = small_scene(tmp_path, rows=30, cols=26, bands=8)  # 8 ring px for 8 bands
    result = detect(
        cube_path,
        tmp_path / "l.tif",
        DetectOptions(enhancer="none", detector="lrx", inner=1, outer=3, local_covariance="ring"),
    )
    assert any(
        m.startswith("WARNING: local RX covariance: ring") and "singular" in m for m in result.messages
    ), result.messages


def test_crd_streamed_equals_whole_image_bit_for_bit(tmp_path):
    cube_path, truth_path, scene = small_scene(tmp_path, rows=30, cols=26, bands=8)
    result = detect(
        cube_path,
        tmp_path / "c.tif",
        DetectOptions(enhancer="none", detector="crd", inner=3, outer=9, crd_lambda=0.3, block_rows=4),
    )
    reference = crd(scene.cube.astype(np.float32), inner=3, outer=9, lam=0.3)
    np.testing.assert_array_equal(_read(tmp_path / "c.tif")[0], reference)
    assert any("CRD: windows 3/9, lambda 0.3" in m for m in result.messages), result.messages


@pytest.mark.parametrize("block_rows", [4, 7, 30])
def test_crd_rx_streamed_equals_the_whole_image(tmp_path, block_rows):
    """CRD+RX streams like CRD (its RX half from a first statistics pass): every blocking gives
    the whole-cube CRD+RX."""
    cube_path, _, scene = small_scene(tmp_path, rows=30, cols=26, bands=8)
    result = detect(
        cube_path,
        tmp_path / "c.tif",
        DetectOptions(enhancer="none", detector="crd+rx", inner=3, outer=9, block_rows=block_rows),
    )
    reference = crd_rx(scene.cube.astype(np.float32), inner=3, outer=9)
    np.testing.assert_allclose(_read(tmp_path / "c.tif")[0], reference, rtol=1e-5)
    assert any("CRD: windows 3/9" in m for m in result.messages), result.messages
    assert any(m.startswith("global RX: ") for m in result.messages), result.messages


@pytest.mark.parametrize("fusion", ["sum", "hadamard"])
def test_crd_pairs_with_the_enhancers(tmp_path, fusion):
    """CRD is one more detector on the enhanced source: the streamed result equals CRD on the
    whole enhanced cube (per variant, fused as the pipeline fuses RX maps)."""
    pytest.importorskip("torch")
    from fers_engine.io import select_bands
    from fers_engine.pipeline import _build_source, hadamard

    cube_path, _, _ = small_scene(tmp_path, rows=30, cols=26, bands=24)
    options = DetectOptions(
        enhancer="spectral", detector="crd", inner=3, outer=9, fusion=fusion, device="cpu", block_rows=6
    )
    detect(cube_path, tmp_path / "e.tif", options)
    with open_scene(cube_path) as scene:
        source, _ = _build_source(scene, select_bands(scene.info), options, Reporter())
        data, valid = source.read(0, scene.info.height)
        source.close()
    maps = [crd(data[v], valid, inner=3, outer=9) for v in source.variants]
    reference = maps[0] if len(maps) == 1 else hadamard(maps)
    np.testing.assert_allclose(_read(tmp_path / "e.tif")[0], reference, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    "options,match",
    [
        (dict(detector="crd", crd_lambda=0.0), "lambda"),
        (dict(detector="crd", inner=4, outer=9), "crd windows must be odd"),
        (dict(detector="lrx", workers=0), "workers"),
        (dict(detector="crd", workers=-1), "workers"),
        (dict(detector="crd+rx", crd_lambda=-1.0), "lambda"),
        (dict(detector="crd+rx", inner=9, outer=9), "crd\\+rx windows must be odd"),
    ],
)
def test_windowed_detector_options_are_checked_before_any_work(tmp_path, options, match):
    cube_path, _, _ = small_scene(tmp_path, rows=30, cols=26, bands=6)
    with pytest.raises(InputError, match=match):
        detect(cube_path, tmp_path / "x.tif", DetectOptions(enhancer="none", **options))
    assert not (tmp_path / "x.tif").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("detector", ["lrx", "crd", "crd+rx"])
def test_workers_option_reaches_the_kernels(tmp_path, monkeypatch, detector):
    from fers_engine.detectors import compiled, parallel

    if not compiled.available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(parallel, "available_cores", lambda: 5)
    cube_path, _, _ = small_scene(tmp_path, rows=30, cols=26, bands=6)
    default = detect(
        cube_path, tmp_path / "a.tif", DetectOptions(enhancer="none", detector=detector, inner=3, outer=9)
    )
    assert any("on 5 threads;" in m for m in default.messages), default.messages
    chosen = detect(
        cube_path,
        tmp_path / "b.tif",
        DetectOptions(enhancer="none", detector=detector, inner=3, outer=9, workers=1),
    )
    assert any("on 1 thread;" in m for m in chosen.messages), chosen.messages
    np.testing.assert_allclose(_read(tmp_path / "a.tif")[0], _read(tmp_path / "b.tif")[0], rtol=1e-6)


def test_band_subset(tmp_path):
    cube_path, _, scene = small_scene(tmp_path)
    detect(
        cube_path,
        tmp_path / "s.tif",
        DetectOptions(enhancer="none", detector="rx", bands=[0, 2, 4, 6, 8, 10]),
    )
    reference = global_rx(scene.cube[[0, 2, 4, 6, 8, 10]].astype(np.float32))
    np.testing.assert_allclose(_read(tmp_path / "s.tif")[0], reference, rtol=1e-5, atol=1e-5)


def test_nan_and_nodata_pixels_come_out_nodata(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(6, 20, 18)).astype(np.float32)
    cube[:, 3, 4] = np.nan
    cube[:, 10, 10] = -9999.0
    path = write_cube(tmp_path / "holes.tif", cube, nodata=-9999.0)
    detect(path, tmp_path / "o.tif", RX)
    scores = _read(tmp_path / "o.tif")[0]
    assert np.isnan(scores[3, 4]) and np.isnan(scores[10, 10])
    assert np.isfinite(np.delete(scores.ravel(), [3 * 18 + 4, 10 * 18 + 10])).all()
    valid = np.isfinite(cube).all(0) & (cube != -9999).all(0)
    reference = global_rx(np.where(valid, cube, 0), valid)
    np.testing.assert_allclose(scores[valid], reference[valid], rtol=1e-5)


def test_raster_without_crs_runs_with_a_warning(tmp_path):
    cube = np.random.default_rng(1).normal(size=(5, 12, 12)).astype(np.float32)
    path = write_cube(tmp_path / "nocrs.tif", cube, crs=None)
    warnings = []
    result = detect(path, tmp_path / "o.tif", RX, Reporter(on_warning=warnings.append))
    assert any("no CRS" in w for w in warnings)
    assert any("no CRS" in m for m in result.messages)
    assert (tmp_path / "o.tif").is_file()


@pytest.mark.parametrize("kind", ["text", "empty", "one_band", "all_nan", "same_path"])
def test_bad_inputs_give_clear_errors_and_no_output(tmp_path, kind):
    out = tmp_path / "out.tif"
    if kind == "text":
        src = tmp_path / "notes.tif"
        src.write_text("this is not a raster\n")
    elif kind == "empty":
        src = tmp_path / "empty.tif"
        src.write_bytes(b"")
    elif kind == "one_band":
        src = write_cube(tmp_path / "one.tif", np.ones((1, 8, 8), np.float32))
    elif kind == "all_nan":
        src = write_cube(tmp_path / "nan.tif", np.full((4, 8, 8), np.nan, np.float32))
    else:
        src = write_cube(
            tmp_path / "same.tif", np.random.default_rng(2).normal(size=(4, 8, 8)).astype(np.float32)
        )
        out = src
    before = src.read_bytes() if src.exists() else None
    with pytest.raises(FersError) as err:
        detect(src, out, RX)
    message = str(err.value)
    assert "\n" not in message and len(message) < 300
    expected = {
        "text": InputError,
        "empty": InputError,
        "one_band": InputError,
        "all_nan": InputError,
        "same_path": OutputError,
    }[kind]
    assert isinstance(err.value, expected), message
    if kind == "same_path":
        assert src.read_bytes() == before
    else:
        assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_cancel_leaves_no_output(tmp_path):
    cube_path, _, _ = small_scene(tmp_path)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        detect(
            cube_path,
            tmp_path / "c.tif",
            DetectOptions(enhancer="none", detector="rx", block_rows=4),
            Reporter(should_stop=stop),
        )
    assert not (tmp_path / "c.tif").exists() and _leftovers(tmp_path) == []


def test_the_default_method_runs_on_a_scene_smaller_than_its_window(tmp_path):
    """A 10 x 12 px crop under the default 15-pixel CRD window: scored, in blocks of 4 rows as
    whole (local RX, whose rings must be whole, still refuses it in one line)."""
    rng = np.random.default_rng(2)
    cube_path = write_cube(
        tmp_path / "small.tif", rng.normal(0.3, 0.02, size=(20, 10, 12)).astype(np.float32)
    )
    detect(cube_path, tmp_path / "whole.tif", DetectOptions(device="cpu"))
    whole = _read(tmp_path / "whole.tif")[0]
    assert whole.shape == (10, 12) and np.isfinite(whole).all()
    detect(cube_path, tmp_path / "blocks.tif", DetectOptions(device="cpu", block_rows=4))
    np.testing.assert_allclose(_read(tmp_path / "blocks.tif")[0], whole, rtol=1e-5)
    with pytest.raises(InputError, match="exceeds image"):
        detect(cube_path, tmp_path / "lrx.tif", DetectOptions(enhancer="none", detector="lrx"))


@pytest.mark.parametrize("with_mask", [False, True])
def test_a_stop_after_the_last_commit_does_not_turn_a_finished_run_into_a_cancelled_one(tmp_path, with_mask):
    """A stop that arrives once the last output is committed (a batch's Ctrl-C racing the end of
    a scene) returns the result: raising ``Cancelled`` there would say "no output written" beside
    a whole output."""
    cube_path, _, _ = small_scene(tmp_path)
    last = tmp_path / ("m.tif" if with_mask else "s.tif")
    result = detect(
        cube_path,
        tmp_path / "s.tif",
        RX,
        Reporter(should_stop=last.exists),
        mask_output=tmp_path / "m.tif" if with_mask else None,
    )
    assert result.output == tmp_path / "s.tif" and last.exists()


def test_progress_is_monotonic_and_ends_at_one(tmp_path):
    cube_path, _, _ = small_scene(tmp_path)
    seen = []
    detect(
        cube_path,
        tmp_path / "p.tif",
        DetectOptions(enhancer="none", detector="rx", block_rows=6),
        Reporter(on_progress=seen.append),
    )
    assert seen[-1] == pytest.approx(1.0) and all(b >= a - 1e-9 for a, b in zip(seen, seen[1:]))


def test_mask_output_and_threshold(tmp_path):
    cube_path, truth_path, scene = small_scene(tmp_path)
    result = detect(
        cube_path,
        tmp_path / "s.tif",
        RX,
        mask_output=tmp_path / "m.tif",
        threshold_method="percentile",
        threshold_value=98.0,
    )
    mask = _read(tmp_path / "m.tif")[0]
    assert set(np.unique(mask)) <= {0, 1}
    assert abs(mask.mean() - 0.02) < 0.01
    scores = _read(tmp_path / "s.tif")[0]
    assert np.array_equal(mask == 1, scores > result.threshold)


def test_scores_and_masks_name_their_scene(tmp_path):
    """A mask thresholded from a score file (a graphical model's next step) still knows the scene."""
    from pathlib import Path

    cube_path, _, _ = small_scene(tmp_path)
    detect(cube_path, tmp_path / "s.tif", RX, mask_output=tmp_path / "m.tif", threshold_method="percentile")
    threshold_raster(tmp_path / "s.tif", tmp_path / "m2.tif")
    for name in ("s.tif", "m.tif", "m2.tif"):
        assert scores_source(tmp_path / name) == Path(cube_path).name, name
    assert scores_source(cube_path) == "" and scores_source(tmp_path / "missing.tif") == ""


def test_threshold_keeps_nodata(tmp_path):
    scores = np.arange(100, dtype=np.float32).reshape(1, 10, 10)
    scores[0, 0, :3] = np.nan
    path = write_cube(tmp_path / "score.tif", scores)
    t = threshold_raster(path, tmp_path / "mask.tif", "value", 90.0)
    mask = _read(tmp_path / "mask.tif")[0]
    assert (
        t == 90.0 and (mask[0, :3] == 255).all() and mask.ravel()[91:].all() and not mask.ravel()[3:91].any()
    )


def test_evaluate_rasters(tmp_path):
    cube_path, truth_path, scene = small_scene(tmp_path)
    detect(cube_path, tmp_path / "s.tif", RX)
    result = evaluate_rasters(tmp_path / "s.tif", truth_path)
    assert result["auc"] == pytest.approx(roc_auc(_read(tmp_path / "s.tif")[0], scene.truth))
    for key in ("auc_pd_pf", "auc_pd_tau", "auc_pf_tau"):
        assert 0.0 <= result[key] <= 1.0
    pf, pd = result["roc"]
    assert pf[0] == 0 and pd[-1] == 1


def test_evaluate_rejects_mismatched_truth(tmp_path):
    scores = write_cube(tmp_path / "s.tif", np.ones((1, 10, 10), np.float32))
    truth = write_cube(tmp_path / "t.tif", np.ones((1, 8, 8), np.uint8))
    with pytest.raises(InputError, match="ground truth"):
        evaluate_rasters(scores, truth)


def test_full_method_progress_is_monotonic(tmp_path):
    pytest.importorskip("torch")
    cube_path, _, _ = small_scene(tmp_path)
    seen = []
    detect(
        cube_path,
        tmp_path / "f.tif",
        DetectOptions(enhancer="full", detector="rx", block_rows=8),
        Reporter(on_progress=seen.append),
    )
    assert seen[-1] == pytest.approx(1.0) and all(b >= a - 1e-9 for a, b in zip(seen, seen[1:]))


def test_column_strips_do_not_change_the_full_method(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import fers_engine.sources as sources

    cube_path, _, _ = small_scene(tmp_path)
    detect(cube_path, tmp_path / "wide.tif", DetectOptions(enhancer="full", detector="rx", fusion="hadamard"))
    monkeypatch.setattr(sources, "_STRIP_COLS", 7)
    detect(
        cube_path,
        tmp_path / "strips.tif",
        DetectOptions(enhancer="full", detector="rx", fusion="hadamard", block_rows=5),
    )
    wide, strips = _read(tmp_path / "wide.tif")[0], _read(tmp_path / "strips.tif")[0]
    np.testing.assert_allclose(strips, wide, rtol=1e-3, atol=1e-4)


def test_numba_is_imported_only_when_local_rx_runs():
    """numba costs ~100 MB of resident memory: global RX and the enhancers must not load it."""
    import subprocess
    import sys

    code = "import sys, fers_engine.pipeline, fers_engine.cli; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("max_bytes", [0, 10**9], ids=["maps on disk", "maps in memory"])
def test_hadamard_sink_fuses_blocks_like_the_whole_maps_and_leaves_no_file(tmp_path, max_bytes):
    from types import SimpleNamespace

    from fers_engine.pipeline import _ScoreSink, hadamard

    rng = np.random.default_rng(5)
    maps = {v: rng.chisquare(4, size=(50, 7)).astype(np.float32) for v in ("spe", "spa")}
    maps["spa"][3, 2] = np.nan
    written = np.full((50, 7), -1.0, np.float32)

    class Writer:
        def write(self, r0, block):
            written[r0 : r0 + block.shape[0]] = block

    source = SimpleNamespace(variants=("spe", "spa"), height=50, width=7)
    with _ScoreSink(source, Writer(), 8, max_bytes, tmp_path / "s.tif") as sink:
        for r0 in range(0, 50, 8):
            for v, m in maps.items():
                sink.put(v, r0, m[r0 : r0 + 8])
        assert len(list(tmp_path.iterdir())) == (2 if max_bytes == 0 else 0)
    np.testing.assert_array_equal(written, hadamard([maps["spe"], maps["spa"]]))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with _ScoreSink(source, Writer(), 8, max_bytes, tmp_path / "s.tif") as sink:
            raise RuntimeError("a cancelled run")
    assert list(tmp_path.iterdir()) == []


def test_small_budgets_narrow_the_enhancer_tiles_instead_of_overrunning():
    from types import SimpleNamespace

    from fers_engine.memory import MemoryPlan
    from fers_engine.pipeline import _enhanced_rows, _enhancer_tile

    source = SimpleNamespace(width=1024, count=128, halo=15, parts=("spectral", "spatial"), variants=("sum",))
    small, large = MemoryPlan.for_run(256), MemoryPlan.for_run(4096)
    floor = 2 * source.halo
    assert _enhanced_rows(source, small, 256) < floor  # 256-wide tiles do not fit beside a minimal block
    tile = _enhancer_tile(source, floor, small)
    assert tile < 256 and _enhanced_rows(source, small, tile) >= floor
    rows = max(_enhanced_rows(source, large, 256), floor)
    assert _enhancer_tile(source, rows, large) == 256


def test_a_tiled_file_gets_a_row_of_tiles_in_the_cache_and_blocks_aligned_to_it(tmp_path):
    """A pixel-interleaved file in 16-row tiles, 640 KiB per row of tiles, at an 8 MiB budget (whose
    sixteenth cannot hold one): plain RX gets the row of tiles in GDAL's cache and blocks that
    start on the tile rows, with the scores of any other blocking; the enhancers do not (their
    memory rule had no room for it)."""
    rng = np.random.default_rng(5)
    cube = (rng.normal(1000, 50, size=(80, 48, 256))).astype(np.int16)
    path = str(tmp_path / "tiled.tif")
    ds = gdal.GetDriverByName("GTiff").Create(
        path,
        256,
        48,
        80,
        gdal.GDT_Int16,
        ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=16", "INTERLEAVE=PIXEL"],
    )
    ds.WriteArray(cube)
    ds = None
    result = detect(
        path, tmp_path / "aligned.tif", DetectOptions(enhancer="none", detector="rx", memory_mb=8)
    )
    assert any("one row of the file's 16-row tiles" in m for m in result.messages), result.messages
    (line,) = [m for m in result.messages if m.startswith("detector rx")]
    rows = int(line.split("block ")[1].split()[0])
    assert rows < 48 and 16 % rows == 0, line
    detect(path, tmp_path / "other.tif", DetectOptions(enhancer="none", detector="rx", block_rows=7))
    np.testing.assert_allclose(
        _read(tmp_path / "aligned.tif")[0], _read(tmp_path / "other.tif")[0], rtol=1e-4
    )
    enhanced = detect(
        path, tmp_path / "e.tif", DetectOptions(enhancer="spectral", detector="rx", memory_mb=8)
    )
    assert not any("row of the file's" in m for m in enhanced.messages), enhanced.messages
