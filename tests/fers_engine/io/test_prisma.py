"""PRISMA L2D HE5: fixture in the ASI layout (h5py), read through GDAL's HDF5 driver."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import osr
from products.checks import run_rx, same_crs, top_pixel
from products.common import band_table, reflectance
from products.prisma import SCALE, write_prisma

from fers_engine.errors import InputError
from fers_engine.io import open_scene

NAME = "PRS_L2D_STD_20201107101404_20201107101408_0001.he5"


@pytest.fixture
def prisma(tmp_path, shared_data):
    pytest.importorskip("h5py")
    wl, fwhm = band_table(shared_data, "prisma")
    scene = reflectance(56, 50, wl, anomaly=(30, 12))
    expected = write_prisma(tmp_path / NAME, scene.cube, wl, fwhm, collar=2)
    return dict(path=tmp_path / NAME, wl=wl, fwhm=fwhm, scene=scene, expected=expected)


def test_bands_joined_ascending_with_unused_slots_and_overlap_dropped(prisma):
    with open_scene(prisma["path"]) as scene:
        info = scene.info
        block, valid = scene.read(10, 12)
    assert info.product == "PRISMA L2D"
    np.testing.assert_allclose(info.wavelengths, prisma["expected"]["wavelengths"], rtol=1e-6)
    assert np.all(np.diff(info.wavelengths) > 0) and 0 not in info.wavelengths
    assert any("overlap" in n for n in info.notes)
    assert info.transform == prisma["expected"]["transform"]
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32632)
    assert same_crs(info.crs, srs.ExportToWkt())
    # scale per the ASI formula: Min + DN * (Max - Min) / 65535, per detector
    swir = info.wavelengths > 1100
    lo, hi = SCALE["Swir"]
    np.testing.assert_allclose(info.scale[swir], (hi - lo) / 65535, rtol=1e-6)
    np.testing.assert_allclose(info.offset[swir], lo)
    k = int(np.argmin(np.abs(prisma["wl"] - info.wavelengths[100])))
    np.testing.assert_allclose(block[100, :, 2:-2], prisma["scene"].cube[10:12, 2:-2, k], atol=2e-5)
    assert not valid[:, :2].any() and valid[:, 2:-2].all()  # the DN-0 collar is no data


def test_anomaly_found_on_the_utm_grid_whatever_the_blocking(prisma, tmp_path):
    scores, gt, _ = run_rx(prisma["path"], tmp_path / "a.tif")
    r, c = top_pixel(scores)
    ar, ac = prisma["scene"].anomaly
    assert ar <= r < ar + 2 and ac <= c < ac + 2
    assert gt == prisma["expected"]["transform"] and np.isnan(scores[:2]).all()
    blocked, _, _ = run_rx(prisma["path"], tmp_path / "b.tif", block_rows=5)
    np.testing.assert_allclose(blocked, scores, rtol=1e-6)


def test_truncated_download_is_named_before_hdf5_prints_anything(prisma, tmp_path, capfd):
    cut = tmp_path / "PRS_L2D_STD_cut.he5"
    cut.write_bytes(prisma["path"].read_bytes()[:4096])
    with pytest.raises(InputError, match=r"PRS_L2D_STD_cut.he5 .*truncated \(4096 of \d+ bytes"):
        open_scene(cut)
    assert "HDF5-DIAG" not in capfd.readouterr().err


def test_missing_cube_or_wrong_band_list_is_one_line_and_no_output(prisma, tmp_path):
    import h5py

    broken = tmp_path / "PRS_L2D_STD_broken.he5"
    write_prisma(broken, prisma["scene"].cube, prisma["wl"], prisma["fwhm"], skip=("SWIR_Cube",))
    with pytest.raises(InputError, match=r"PRS_L2D_STD_broken.he5: missing .*SWIR_Cube"):
        run_rx(broken, tmp_path / "out.tif")
    write_prisma(broken, prisma["scene"].cube, prisma["wl"], prisma["fwhm"])
    with h5py.File(broken, "a") as f:
        f.attrs["List_Cw_Vnir"] = f.attrs["List_Cw_Vnir"][:-1]
    with pytest.raises(InputError, match=r"List_Cw_Vnir has \d+ values but the VNIR cube has \d+ bands"):
        run_rx(broken, tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()
