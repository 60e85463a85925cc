"""The full method on product data: reflectance or DN gives the same detection, and a product's
band grid is fitted to the model's by wavelength."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal
from products.checks import same_crs

from fers_engine.io import open_scene
from fers_engine.metrics import evaluate
from fers_engine.pipeline import DetectOptions, detect


def _geotiff(path, cube):
    bands, rows, cols = cube.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, bands, gdal.GDT_Float32)
    for b in range(bands):
        ds.GetRasterBand(b + 1).WriteArray(cube[b])
    ds = None
    return path


def test_reflectance_and_dn_give_the_same_auc_with_the_full_method(shared_data, tmp_path):
    """Issue 11: scores equal up to the scale, AUC within 0.002 when the cube is multiplied by a
    constant (DN -> reflectance x 1e-4)."""
    pytest.importorskip("torch")
    with open_scene(shared_data / "san-diego" / "sandiego__OT-AD_100x100x189.mat") as scene:
        cube, _ = scene.read_all()
        truth = scene.ground_truth
    aucs = []
    for name, factor in (("dn", 1.0), ("reflectance", 1e-4)):
        src = _geotiff(tmp_path / f"{name}.tif", cube * np.float32(factor))
        detect(src, tmp_path / f"{name}_score.tif", DetectOptions(enhancer="full", detector="rx"))
        scores = gdal.Open(str(tmp_path / f"{name}_score.tif")).ReadAsArray()
        aucs.append(evaluate(scores, truth)["auc_pd_pf"])
    assert aucs[0] > 0.9 and abs(aucs[0] - aucs[1]) <= 0.002


def test_full_method_on_a_real_enmap_tile_uses_good_bands_and_keeps_georeference(shared_data, tmp_path):
    """The 218 good bands (bbl drops 130-135) are fitted to the model's grid; the shipped model has
    no wavelengths, so along the band axis, and the log says so."""
    pytest.importorskip("torch")
    tile = shared_data / "enmap-l2a-potsdam-tiles" / "images" / "enmap_potsdam_tile_160_96.tif"
    result = detect(tile, tmp_path / "score.tif", DetectOptions(enhancer="full", detector="rx"))
    assert "using 218 bands" in " ".join(result.messages)
    assert any(m.startswith("218 input bands resampled") for m in result.messages), result.messages
    src, out = gdal.Open(str(tile)), gdal.Open(str(tmp_path / "score.tif"))
    assert out.GetGeoTransform() == src.GetGeoTransform()
    assert same_crs(out.GetProjection(), src.GetProjection())
    assert np.isfinite(out.GetRasterBand(1).ReadAsArray()).all()
