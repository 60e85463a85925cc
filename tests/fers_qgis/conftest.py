"""Fixtures for the plugin tests: the registered FERS provider, small rasters, headless env."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qgis_helpers import (  # noqa: E402
    RecordingFeedback,
    synthetic_cube,
    write_tif,
)


@pytest.fixture(scope="session")
def fers_plugin(qgis_app, qgis_processing):
    """The plugin as QGIS loads it (classFactory(None) + initProcessing), provider registered."""
    import fers_qgis

    plugin = fers_qgis.classFactory(None)
    plugin.initProcessing()
    yield plugin
    plugin.unload()


@pytest.fixture
def provider(fers_plugin):
    from qgis.core import QgsApplication

    prov = QgsApplication.processingRegistry().providerById("fers")
    assert prov is not None
    return prov


@pytest.fixture
def small_scene(tmp_path):
    cube, truth = synthetic_cube()
    path = write_tif(tmp_path / "scene.tif", cube)
    gt = write_tif(tmp_path / "truth.tif", truth)
    return path, gt, truth


@pytest.fixture(scope="session")
def real_scene(shared_data, tmp_path_factory):
    """The AVIRIS San Diego ENVI scene (UTM 11N) converted to GeoTIFF, and its ground truth."""
    from osgeo import gdal

    src = shared_data / "san-diego-envi-90x90" / "SDData"
    if not src.is_file():
        pytest.skip(f"{src} not found")
    out = tmp_path_factory.mktemp("real") / "sandiego.tif"
    gdal.Translate(str(out), str(src), format="GTiff")
    return str(out), str(src.parent / "SDDataGt.bmp")


@pytest.fixture
def recording_feedback():
    return RecordingFeedback.make
