"""AVIRIS-NG ENVI with a rotated map info (kept, or north-up on request) and AVIRIS-3 RFL_ORT.nc."""

from __future__ import annotations

import numpy as np
import pytest
from products.aviris import AV3_NAME, ORIGIN, PIXEL, rotated_geotransform, write_aviris3, write_envi
from products.checks import run_rx, top_pixel
from products.common import band_table, reflectance

from fers_engine.errors import InputError
from fers_engine.io import ReaderOptions, open_scene


@pytest.fixture
def grid(shared_data):
    # AVIRIS-NG's 425-band table is not in sensor-band-tables; EMIT's grid (same JPL design,
    # 381-2493 nm) stands in for it, with the water windows marked bad in bbl.
    wl, fwhm = band_table(shared_data, "emit")
    bbl = (((wl < 1340) | (wl > 1450)) & ((wl < 1800) | (wl > 1960))).astype(int)
    return wl, fwhm, bbl


def test_rotated_envi_keeps_its_rotated_geotransform(grid, tmp_path):
    wl, fwhm, bbl = grid
    scene = reflectance(60, 50, wl, anomaly=(10, 40))
    data = write_envi(tmp_path, scene.cube, wl, fwhm, bbl)
    with open_scene(data) as s:
        info = s.info
    assert info.product == "AVIRIS-NG" and info.nodata == -9999
    np.testing.assert_allclose(info.wavelengths, wl, atol=1e-6)
    np.testing.assert_array_equal(info.bad_bands, bbl == 1)
    np.testing.assert_allclose(info.transform, rotated_geotransform(), atol=1e-6)
    scores, gt, _ = run_rx(data, tmp_path / "score.tif")
    np.testing.assert_allclose(gt, rotated_geotransform(), atol=1e-6)
    r, c = top_pixel(scores)
    assert 10 <= r < 12 and 40 <= c < 42


def test_north_up_map_equals_the_rotated_scores_under_each_pixel_centre(grid, tmp_path):
    wl, fwhm, bbl = grid
    scene = reflectance(60, 50, wl, anomaly=(10, 40))
    data = write_envi(tmp_path, scene.cube, wl, fwhm, bbl)
    rotated, gt_rot, _ = run_rx(data, tmp_path / "rot.tif")
    north, gt, _ = run_rx(data, tmp_path / "north.tif", reader=ReaderOptions(north_up=True), block_rows=4)
    assert gt[2] == gt[4] == 0.0 and gt[1] == pytest.approx(PIXEL) and gt[5] == pytest.approx(-PIXEL)
    inv = np.linalg.inv([[gt_rot[1], gt_rot[2]], [gt_rot[4], gt_rot[5]]])
    checked = 0
    for r, c in np.argwhere(np.isfinite(north))[::11]:
        x, y = gt[0] + (c + 0.5) * gt[1], gt[3] + (r + 0.5) * gt[5]
        col, row = np.floor(inv @ [x - gt_rot[0], y - gt_rot[3]]).astype(int)
        assert north[r, c] == pytest.approx(rotated[row, col], rel=1e-6)  # blocked differently
        checked += 1
    assert checked > 50
    assert np.nanmax(north) == np.nanmax(rotated)  # the anomaly is on the north-up map too


def test_aviris3_netcdf(grid, tmp_path):
    wl, fwhm, _ = grid
    scene = reflectance(50, 60, wl, anomaly=(5, 5))
    path = write_aviris3(tmp_path / AV3_NAME, scene.cube, wl, fwhm)
    with open_scene(path) as s:
        info = s.info
    assert info.product == "AVIRIS-3 L2A RFL_ORT" and info.nodata == -9999
    assert info.transform == (ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL) and "32611" in info.crs
    np.testing.assert_allclose(info.wavelengths, wl.astype(np.float32))
    scores, gt, _ = run_rx(path, tmp_path / "score.tif")
    assert top_pixel(scores) in [(5, 5), (5, 6), (6, 5), (6, 6)] and gt == info.transform


def test_header_with_the_wrong_number_of_wavelengths_is_one_line(grid, tmp_path):
    wl, fwhm, bbl = grid
    scene = reflectance(20, 20, wl)
    data = write_envi(tmp_path, scene.cube, wl[:-1], fwhm[:-1], bbl[:-1])
    with pytest.raises(InputError) as err:
        run_rx(data, tmp_path / "out.tif")
    assert data.name in str(err.value) and "wavelength" in str(err.value)
    assert not (tmp_path / "out.tif").exists()
