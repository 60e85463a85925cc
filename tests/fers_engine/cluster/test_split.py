"""One scene's pipeline blocks spread over the workers: the single-process scores, at any grouping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from fers_engine.cluster import detect_split
from fers_engine.errors import InputError
from fers_engine.io import open_scene
from fers_engine.pipeline import DetectOptions, detect, scores_source

CASES = [  # (scene, options): every detector and enhancer path, block heights that do not divide
    ("abu-beach-1/abu-beach-1.mat", DetectOptions(enhancer="none", detector="rx", block_rows=11)),
    (
        "hydice-urban/hydice__OT-AD.mat",
        DetectOptions(
            enhancer="none", detector="lrx", inner=3, outer=9, local_covariance="scene", block_rows=13
        ),
    ),
    (
        "hydice-urban/hydice__OT-AD.mat",
        DetectOptions(enhancer="none", detector="crd", inner=1, outer=5, block_rows=13),
    ),
    (
        "hydice-urban/hydice__OT-AD.mat",
        DetectOptions(enhancer="none", detector="crd+rx", inner=1, outer=5, block_rows=13),
    ),
    pytest.param(
        "san-diego-envi-90x90/SDData",
        DetectOptions(enhancer="full", detector="rx", block_rows=30),
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "abu-airport-2/abu-airport-2.mat",
        DetectOptions(enhancer="spectral", detector="lrx", inner=5, outer=15, block_rows=17),
        marks=pytest.mark.slow,
    ),
]


def scores(path: Path) -> np.ndarray:
    with open_scene(path) as scene:
        block, valid = scene.read_all()
    out = block[0].astype(np.float64)
    out[~valid] = np.nan
    return out


@pytest.mark.parametrize(
    "name,options",
    CASES,
    ids=[
        "beach1-rx",
        "hydice-lrx-scene",
        "hydice-crd",
        "hydice-crd+rx",
        "sandiego-full-rx",
        "airport2-spectral-lrx",
    ],
)
def test_split_equals_the_single_process_path_at_two_groupings(client, shared_data, tmp_path, name, options):
    """The enhancers run through the numpy forward pass on the workers and in ``detect``: no torch."""
    path = shared_data / name
    with threadpool_limits(1):  # the workers' BLAS thread count (see cluster_client)
        detect(path, tmp_path / "single.tif", options)
    single = scores(tmp_path / "single.tif")
    for per in (1, 3):
        result = detect_split(path, tmp_path / f"split{per}.tif", options, client, blocks_per_task=per)
        split = scores(tmp_path / f"split{per}.tif")
        assert np.array_equal(np.isnan(split), np.isnan(single))
        rel = np.abs(split - single) / np.abs(single)
        assert np.nanmax(rel) < 1e-5, (per, np.nanmax(rel))
        assert (result.height, result.width) == single.shape
        assert (
            scores_source(tmp_path / f"split{per}.tif") == scores_source(tmp_path / "single.tif") == path.name
        )


@pytest.mark.slow
def test_hadamard_fusion_is_split_too(client, shared_data, tmp_path):
    """Fused maps are products of min-max normalised maps: compared against their range."""
    path = shared_data / "san-diego-envi-90x90/SDData"
    options = DetectOptions(enhancer="full", detector="rx", fusion="hadamard", block_rows=20)
    with threadpool_limits(1):
        detect(path, tmp_path / "single.tif", options)
    detect_split(path, tmp_path / "split.tif", options, client, blocks_per_task=2)
    single, split = scores(tmp_path / "single.tif"), scores(tmp_path / "split.tif")
    assert np.nanmax(np.abs(split - single)) < 1e-5 * np.nanmax(single)


def test_split_reports_bad_input_in_one_line(client, tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_text("text")
    with pytest.raises(InputError, match="text file"):
        detect_split(bad, tmp_path / "o.tif", DetectOptions(enhancer="none", detector="rx"), client)
    assert not (tmp_path / "o.tif").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.tif"]


def test_split_runs_the_detect_guard_before_any_work(client, scenes, tmp_path):
    """The same checks as ``detect`` before the first task: a mask onto the input scene, or a
    threshold request out of range, is one line and nothing is written or replaced."""
    from fers_engine.errors import OutputError

    path = scenes(1)[0]
    before = path.read_bytes()
    with pytest.raises(OutputError, match="the mask scene0.tif would overwrite the input scene0.tif"):
        detect_split(
            path, tmp_path / "s.tif", DetectOptions(enhancer="none", detector="rx"), client, mask_output=path
        )
    with pytest.raises(InputError, match="percentile"):
        detect_split(
            path,
            tmp_path / "s.tif",
            DetectOptions(enhancer="none", detector="rx"),
            client,
            mask_output=tmp_path / "m.tif",
            threshold_value=150,
        )
    assert path.read_bytes() == before
    assert not (tmp_path / "s.tif").exists() and not (tmp_path / "m.tif").exists()


def test_blocks_read_twice_when_the_scene_does_not_fit_the_workers(
    client, shared_data, tmp_path, monkeypatch
):
    """Global RX keeps each block in a worker between the passes when the cluster's memory allows;
    otherwise each pass reads it again: the same scores either way."""
    from fers_engine.cluster import split

    path = shared_data / "abu-beach-1/abu-beach-1.mat"
    options = DetectOptions(enhancer="none", detector="rx", block_rows=11)
    maps = {}
    for fits in (True, False):
        monkeypatch.setattr(split, "_fits_cluster_memory", lambda client, plan, fits=fits: fits)
        result = detect_split(path, tmp_path / f"{fits}.tif", options, client, blocks_per_task=2)
        assert any("kept in the workers' memory" in m for m in result.messages) == fits
        maps[fits] = scores(tmp_path / f"{fits}.tif")
    assert np.array_equal(maps[True], maps[False], equal_nan=True)


def test_a_product_with_a_map_grid_is_split_and_written_on_that_grid(client, shared_data, tmp_path):
    """An EMIT granule: detection in the swath, scores written on its GLT's north-up grid, as
    ``detect`` writes them."""
    import sys

    from osgeo import gdal

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))  # the product fixture builders
    from products.common import band_table, reflectance
    from products.emit import rotated_glt, write_emit

    wl, fwhm = band_table(shared_data, "emit")
    good = (((wl < 1320) | (wl > 1440)) & ((wl < 1770) | (wl > 1960))).astype(np.uint8)
    gx, gy = rotated_glt(40, 30)
    path = write_emit(
        tmp_path / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc",
        reflectance(40, 30, wl).cube,
        wl,
        fwhm,
        good,
        gx,
        gy,
    )
    options = DetectOptions(enhancer="none", detector="rx", block_rows=7)
    with threadpool_limits(1):
        single = detect(path, tmp_path / "single.tif", options)
    split = detect_split(path, tmp_path / "split.tif", options, client, blocks_per_task=2)
    assert (split.height, split.width) == (single.height, single.width) == gx.shape
    a, b = gdal.Open(str(tmp_path / "single.tif")), gdal.Open(str(tmp_path / "split.tif"))
    assert b.GetGeoTransform() == a.GetGeoTransform() and b.GetProjection() == a.GetProjection()
    x, y = a.ReadAsArray().astype(np.float64), b.ReadAsArray().astype(np.float64)
    assert np.array_equal(np.isnan(x), np.isnan(y)) and np.isfinite(x).any()
    assert np.nanmax(np.abs(y - x) / np.abs(x)) < 1e-5
