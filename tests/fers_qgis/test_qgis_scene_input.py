"""Scenes QGIS cannot open as layers (.mat cubes, sensor products) go to the engine as a file path."""

from __future__ import annotations

import numpy as np
import pytest
from qgis_helpers import raster_geometry, read_band, synthetic_cube


def run(alg_id, params, feedback=None):
    import processing

    return processing.run(alg_id, params, feedback=feedback)


@pytest.fixture
def mat_scene(tmp_path):
    """A benchmark-style .mat cube (rows x cols x bands, no georeference) with two implanted targets."""
    import scipy.io

    cube, truth = synthetic_cube(bands=8, rows=24, cols=20, seed=2)
    path = tmp_path / "tiny_scene.mat"
    scipy.io.savemat(str(path), {"data": np.transpose(cube, (1, 2, 0))})
    return str(path), truth


def check(alg_id, params):
    from qgis.core import QgsApplication, QgsProcessingContext

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    return alg.checkParameterValues(params, QgsProcessingContext())


def test_mat_scene_runs_through_the_file_parameter(provider, mat_scene, tmp_path, recording_feedback):
    path, truth = mat_scene
    fb = recording_feedback()
    res = run(
        "fers:detect",
        {"INPUT_FILE": path, "ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": str(tmp_path / "s.tif")},
        fb,
    )
    _, width, height, _, count = raster_geometry(res["OUTPUT"])
    assert (height, width, count) == truth.shape + (1,)
    scores, _ = read_band(res["OUTPUT"])
    top = np.argsort(scores.ravel())[::-1][: int(truth.sum())]
    assert set(top) == set(np.flatnonzero(truth.ravel()))
    assert any("no CRS" in w for w in fb.warnings), fb.log  # said, not silently ungeoreferenced


def test_product_path_keeps_its_georeference(provider, shared_data, tmp_path):
    """A scene file given by path is read by the engine, which supplies the georeference."""
    scene = shared_data / "san-diego-envi-90x90" / "SDData"
    res = run(
        "fers:detect",
        {"INPUT_FILE": str(scene), "ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": str(tmp_path / "s.tif")},
    )
    from osgeo import gdal, osr

    out, src = gdal.Open(res["OUTPUT"]), gdal.Open(str(scene))
    assert (out.RasterXSize, out.RasterYSize) == (src.RasterXSize, src.RasterYSize)
    assert np.allclose(out.GetGeoTransform(), src.GetGeoTransform())
    assert out.GetProjection() and osr.SpatialReference(wkt=out.GetProjection()).IsSame(
        osr.SpatialReference(wkt=src.GetProjection())
    )


def test_a_missing_input_is_checked_before_the_run(provider):
    ok, message = check("fers:detect", {"ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": "TEMPORARY_OUTPUT"})
    assert not ok and "give the scene to search" in message


def test_a_scene_file_is_read_instead_of_the_preselected_layer(
    provider, mat_scene, small_scene, tmp_path, recording_feedback
):
    """The dialog preselects the active raster layer; a user who then picks a scene file means the file."""
    path, _ = mat_scene
    params = {
        "INPUT": small_scene[0],
        "INPUT_FILE": path,
        "ENHANCER": "none",
        "DETECTOR": "rx",
        "OUTPUT": str(tmp_path / "s.tif"),
    }
    ok, message = check("fers:detect", params)
    assert ok, message
    fb = recording_feedback()
    res = run("fers:detect", params, fb)
    assert raster_geometry(res["OUTPUT"])[0] is None  # the .mat has no CRS; the layer is in UTM 11N
    assert any(
        "Reading the scene file tiny_scene.mat (INPUT_FILE); the raster layer (INPUT) is not used" in m
        for m in fb.infos
    ), fb.infos


def test_dialogs_accept_a_mat_scene(provider, mat_scene):
    ok, message = check("fers:detect", {"INPUT_FILE": mat_scene[0], "OUTPUT": "TEMPORARY_OUTPUT"})
    assert ok, message
    ok, message = check("fers:train", {"INPUTS": [mat_scene[0]], "OUTPUT": "TEMPORARY_OUTPUT"})
    assert ok, message


@pytest.mark.parametrize(
    "path, name",
    [
        (
            "/data/L2A/ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z-METADATA.XML",
            "ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z",
        ),
        (
            "/data/L2A/ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z-SPECTRAL_IMAGE.TIF",
            "ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z",
        ),
        ("/data/PRODUCT_X/METADATA.XML", "PRODUCT_X"),
        (
            "/data/ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z.ZIP",
            "ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z",
        ),
        (
            "/data/EMIT_L2A_RFL_001_20230316T045211_2307503_006.nc",
            "EMIT_L2A_RFL_001_20230316T045211_2307503_006",
        ),
        ("/data/san-diego-envi-90x90/SDData", "SDData"),
        ("/data/scene.hdr", "scene"),
    ],
)
def test_scene_names(path, name):
    from fers_qgis.scene_input import scene_name

    assert scene_name(path) == name


def test_dialog_values_for_an_unset_file(provider, small_scene, tmp_path):
    """The dialog hands an empty file widget over as NULL (a null QVariant), not None: still unset."""
    from qgis.core import NULL

    res = run(
        "fers:detect",
        {
            "INPUT": small_scene[0],
            "INPUT_FILE": NULL,
            "ENHANCER": "none",
            "DETECTOR": "rx",
            "OUTPUT": str(tmp_path / "s.tif"),
        },
    )
    assert raster_geometry(res["OUTPUT"])[1:3] == raster_geometry(small_scene[0])[1:3]
