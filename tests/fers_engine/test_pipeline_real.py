"""`fers detect` on every real scene of ../shared/data, against an independent whole-image RX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_helpers import PLAIN_RX
from osgeo import gdal, osr

from fers_engine.cli import main as fers
from fers_engine.io import open_scene, read_ground_truth
from fers_engine.metrics import roc_auc

MAT_SCENES = [
    "abu-airport-1/abu-airport-1.mat",
    "abu-airport-2/abu-airport-2.mat",
    "abu-airport-3/abu-airport-3.mat",
    "abu-airport-4/abu-airport-4.mat",
    "abu-beach-1/abu-beach-1.mat",
    "abu-beach-2/abu-beach-2.mat",
    "abu-beach-3/abu-beach-3.mat",
    "abu-urban-1/abu-urban-1.mat",
    "abu-urban-2/abu-urban-2.mat",
    "abu-urban-2/abu-urban-2__LREN_198band.mat",
    "san-diego/AVIRIS-I__CNND_120x120x189.mat",
    "san-diego/sandiego__OT-AD_100x100x189.mat",
    "san-diego/Sandiego__DSC_100x100x224.mat",
    "hydice-urban/hydice__OT-AD.mat",
    "hydice-urban/HYDICE__DSC.mat",
    "hydice-urban/HYDICE_data__LREN.mat",
    "hydice-urban/HYDICE__DFAN-HAD_175band_norm.mat",
    "pavia-centre-100x100/abu-beach-4__LREN_100x100.mat",
    "pavia-centre-100x100/Pavia__lzw-lzw.mat",
    "muufl-gulfport-crops/an_hsi_img_for_tgt_det_demo.mat",
]


def _band1(path) -> np.ndarray:
    """The first band of a raster, read with osgeo.gdal (not the engine's reader)."""
    ds = gdal.Open(str(path))  # kept referenced while its band is read
    return ds.GetRasterBand(1).ReadAsArray()


def direct_rx(cube: np.ndarray) -> np.ndarray:
    """Textbook whole-image RX in float64 with a pseudo-inverse (independent of the engine)."""
    b, h, w = cube.shape
    x = cube.reshape(b, -1).astype(np.float64)
    xc = x - x.mean(axis=1, keepdims=True)
    inv = np.linalg.pinv(np.cov(x))
    return np.einsum("ij,ij->j", inv @ xc, xc).reshape(h, w)


@pytest.mark.parametrize("name", MAT_SCENES)
def test_cli_detect_on_every_mat_scene_matches_direct_rx(shared_data: Path, tmp_path, name, capsys):
    path = shared_data / name
    out = tmp_path / "score.tif"
    assert fers(["detect", str(path), str(out), *PLAIN_RX, "-q"]) == 0
    scores = _band1(out)
    with open_scene(path) as scene:
        cube, valid = scene.read_all()
    truth = read_ground_truth(path)
    assert scores.shape == truth.shape == cube.shape[1:]
    assert valid.all()
    ours = roc_auc(scores, truth)
    reference = roc_auc(direct_rx(cube), truth)
    assert abs(ours - reference) < 1e-3, (ours, reference)


# Plain-RX AUCs measured independently in ../shared/docs/peer-baseline.md (all bands).
PEER_GRX = {
    "abu-airport-1/abu-airport-1.mat": 0.8221,
    "abu-beach-2/abu-beach-2.mat": 0.9106,
    "hydice-urban/hydice__OT-AD.mat": 0.9932,
    "san-diego/AVIRIS-I__CNND_120x120x189.mat": 0.9111,
}


@pytest.mark.parametrize("name,expected", sorted(PEER_GRX.items()))
def test_rx_reproduces_the_peer_baseline(shared_data: Path, tmp_path, name, expected):
    out = tmp_path / "score.tif"
    assert fers(["detect", str(shared_data / name), str(out), *PLAIN_RX, "-q"]) == 0
    scores = _band1(out)
    assert abs(roc_auc(scores, read_ground_truth(shared_data / name)) - expected) < 1e-3


def test_envi_scene_keeps_utm_georeference(shared_data: Path, tmp_path):
    src_path = shared_data / "san-diego-envi-90x90" / "SDData"
    out = tmp_path / "score.tif"
    assert fers(["detect", str(src_path), str(out), *PLAIN_RX, "-q"]) == 0
    src, dst = gdal.Open(str(src_path)), gdal.Open(str(out))
    assert osr.SpatialReference(wkt=dst.GetProjection()).IsSame(osr.SpatialReference(wkt=src.GetProjection()))
    assert dst.GetGeoTransform() == src.GetGeoTransform()
    assert (dst.RasterXSize, dst.RasterYSize) == (src.RasterXSize, src.RasterYSize) == (90, 90)
    assert "UTM" in dst.GetProjection() and abs(dst.GetGeoTransform()[1] - 3.5) < 1e-9


@pytest.mark.parametrize(
    "name", ["abu-beach-1/abu-beach-1.mat", "hydice-urban/hydice__OT-AD.mat", "san-diego-envi-90x90/SDData"]
)
def test_full_method_does_not_depend_on_the_block_size(shared_data: Path, tmp_path, name):
    """Overlapping row blocks (halo) + scene-wide normalisation and RX statistics: tiled == whole."""
    pytest.importorskip("torch")
    from fers_engine.pipeline import DetectOptions, detect

    path = shared_data / name
    maps = {}
    for rows in (9, 10_000):
        out = tmp_path / f"full_{rows}.tif"
        detect(path, out, DetectOptions(enhancer="full", detector="rx", block_rows=rows, memory_mb=1))
        maps[rows] = _band1(out)
    tiled, whole = maps[9], maps[10_000]
    truth = read_ground_truth(path)
    assert np.corrcoef(tiled.ravel(), whole.ravel())[0, 1] > 0.99
    assert abs(roc_auc(tiled, truth) - roc_auc(whole, truth)) < 0.002
    # Float32 features through an ill-conditioned covariance (condition ~1e7) leave a few pixels
    # off by up to ~2 %; the bulk of the map agrees far closer than that.
    assert float(np.median(np.abs(tiled - whole) / np.abs(whole))) < 1e-3
