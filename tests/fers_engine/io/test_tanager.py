"""Planet Tanager HDF5-EOS basic (swath) and ortho (grid) products."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import osr
from products.checks import run_rx, same_crs, top_pixel
from products.common import reflectance
from products.tanager import EPSG, FILL, PIXEL, UL, write_tanager

from fers_engine.errors import InputError
from fers_engine.io import open_scene

# Tanager samples 380-2500 nm every ~5 nm; its band table is not in sensor-band-tables, so the
# fixture uses a 5 nm grid over that range with the water windows marked bad.
WL = np.arange(380.0, 2500.0, 5.0)
FWHM = np.full(WL.size, 5.5)
GOOD = (((WL < 1340) | (WL > 1450)) & ((WL < 1800) | (WL > 1960))).astype(np.uint8)


@pytest.fixture
def scene():
    pytest.importorskip("h5py")
    return reflectance(60, 56, WL, anomaly=(40, 20))


@pytest.mark.parametrize("ortho", [True, False])
def test_reads_back_and_finds_the_anomaly(scene, tmp_path, ortho):
    mask = np.zeros(scene.cube.shape[:2], bool)
    mask[:, -3:] = True  # outside the acquisition
    path = write_tanager(tmp_path / "20250101_tanager.h5", scene.cube, WL, FWHM, GOOD, ortho, mask)
    with open_scene(path) as s:
        info = s.info
        _, valid = s.read(0, 2)
    assert info.product == f"Tanager {'ortho' if ortho else 'basic'} surface reflectance"
    np.testing.assert_allclose(info.wavelengths, WL)
    np.testing.assert_allclose(info.fwhm, FWHM)
    np.testing.assert_array_equal(info.bad_bands, GOOD == 1)
    assert info.nodata == FILL and info.scale is None
    assert not valid[:, -3:].any() and valid[:, :-3].all()
    scores, gt, wkt = run_rx(path, tmp_path / "score.tif")
    r, c = top_pixel(scores)
    ar, ac = scene.anomaly
    assert ar <= r < ar + 2 and ac <= c < ac + 2 and np.isnan(scores[:, -3:]).all()
    if ortho:
        assert gt == (UL[0], PIXEL, 0.0, UL[1], 0.0, -PIXEL)
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(EPSG)
        assert same_crs(wkt, srs.ExportToWkt())
    else:
        assert info.crs is None and any("swath" in n for n in info.notes)


def test_missing_cube_or_short_wavelengths_is_one_line(scene, tmp_path):
    import h5py

    path = write_tanager(tmp_path / "t.h5", scene.cube, WL, FWHM, GOOD, True, skip=("surface_reflectance",))
    with pytest.raises(InputError, match=r"t.h5: .*surface_reflectance"):
        open_scene(path)
    path = write_tanager(tmp_path / "t2.h5", scene.cube, WL, FWHM, GOOD, True)
    with h5py.File(path, "a") as f:
        f["HDFEOS/GRIDS/HYP/Data Fields/surface_reflectance"].attrs["wavelengths"] = WL[:-1]
    with pytest.raises(InputError, match=rf"t2.h5: wavelengths has {WL.size - 1} values for {WL.size} bands"):
        run_rx(path, tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()
