"""EMIT L2A RFL: fixture in the product's NetCDF layout, read back, orthorectified, detected."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import osr
from products.checks import run_rx, same_crs, top_pixel
from products.common import band_table, reflectance
from products.emit import GEOTRANSFORM, brute_force_ortho, rotated_glt, write_emit

from fers_engine.errors import InputError
from fers_engine.io import ReaderOptions, open_scene

ROWS, COLS = 60, 50


@pytest.fixture
def emit(tmp_path, shared_data):
    wl, fwhm = band_table(shared_data, "emit")
    good = (((wl < 1320) | (wl > 1440)) & ((wl < 1770) | (wl > 1960))).astype(np.uint8)
    scene = reflectance(ROWS, COLS, wl, anomaly=(20, 30))
    cube = scene.cube.copy()
    cube[0, :5, :] = -9999.0  # fill values at the swath start, as in real granules
    gx, gy = rotated_glt(ROWS, COLS, angle_deg=20.0)
    name = "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc"
    path = write_emit(tmp_path / name, cube, wl, fwhm, good, gx, gy)
    return dict(path=path, cube=cube, wl=wl, fwhm=fwhm, good=good, gx=gx, gy=gy, scene=scene)


def test_metadata_reads_back_exactly(emit):
    with open_scene(emit["path"]) as scene:
        info, view = scene.info, scene.map_view
    assert info.product == "EMIT L2A RFL"
    assert (info.height, info.width, info.count) == (ROWS, COLS, emit["wl"].size)  # read as a swath
    assert (view.height, view.width) == emit["gx"].shape  # scored onto the ortho grid
    np.testing.assert_array_equal(info.wavelengths, emit["wl"].astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(info.fwhm, emit["fwhm"].astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(info.bad_bands, emit["good"] == 1)
    assert info.nodata == -9999.0 and info.scale is None and info.offset is None
    assert view.transform == GEOTRANSFORM
    assert view.crs == osr.SRS_WKT_WGS84_LAT_LONG


def test_swath_geometry_keeps_the_cube_and_has_no_georeference(emit):
    with open_scene(emit["path"], ReaderOptions(ortho=False)) as scene:
        assert (scene.info.height, scene.info.width) == (ROWS, COLS)
        assert scene.info.transform is None and scene.info.crs is None and scene.map_view is None
        block, valid = scene.read(0, 3, [0, 100])
    np.testing.assert_array_equal(block[1, 1:], emit["cube"][1:3, :, 100])
    assert not valid[0, :5].any() and valid[0, 5:].all()  # the -9999 fill is masked


@pytest.mark.parametrize("block_rows", [1, 7, 1000])
def test_ortho_equals_brute_force_glt_lookup_of_the_swath_scores(emit, tmp_path, block_rows):
    swath, _, _ = run_rx(emit["path"], tmp_path / "swath.tif", reader=ReaderOptions(ortho=False))
    ortho, gt, wkt = run_rx(emit["path"], tmp_path / "ortho.tif", block_rows=block_rows)
    expected = brute_force_ortho(swath, emit["gx"], emit["gy"])
    np.testing.assert_array_equal(np.isnan(ortho), np.isnan(expected))
    np.testing.assert_allclose(ortho[~np.isnan(ortho)], expected[~np.isnan(expected)], rtol=1e-5)
    assert gt == GEOTRANSFORM and same_crs(wkt, osr.SRS_WKT_WGS84_LAT_LONG)


def test_implanted_anomaly_is_the_top_score_on_the_map(emit, tmp_path):
    scores, _, _ = run_rx(emit["path"], tmp_path / "ortho.tif")
    r, c = top_pixel(scores)
    row, col = emit["gy"][r, c] - 1, emit["gx"][r, c] - 1
    ar, ac = emit["scene"].anomaly
    assert ar <= row < ar + 2 and ac <= col < ac + 2


def _broken(tmp_path, emit, **kw):
    path = tmp_path / "EMIT_L2A_RFL_broken.nc"
    args = dict(
        cube=emit["cube"],
        wavelengths=emit["wl"],
        fwhm=emit["fwhm"],
        good=emit["good"],
        glt_x=emit["gx"],
        glt_y=emit["gy"],
    )
    args.update(kw)
    return write_emit(path, **args)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(skip=("location",)), "missing /location/glt_x"),
        (dict(skip=("sensor_band_parameters",)), "missing /sensor_band_parameters/wavelengths"),
        (dict(skip=("reflectance",)), "missing /reflectance"),
        ("glt_out_of_range", "GLT out of range"),
        ("short_wavelengths", "wavelengths has 284 values for 285 bands"),
        (dict(geotransform=(1.0, 2.0)), "geotransform must hold 6 numbers"),
    ],
)
def test_malformed_product_is_one_line_naming_file_and_problem_and_no_output(emit, tmp_path, change, message):
    if change == "glt_out_of_range":
        gx = emit["gx"].copy()
        gx[gx > 0] = np.where(gx[gx > 0] == COLS, COLS + 3, gx[gx > 0])
        path = _broken(tmp_path, emit, glt_x=gx)
    elif change == "short_wavelengths":
        path = _broken(tmp_path, emit, wavelengths=emit["wl"][:-1])
    else:
        path = _broken(tmp_path, emit, **change)
    out = tmp_path / "out.tif"
    with pytest.raises(InputError) as err:
        run_rx(path, out)
    text = str(err.value)
    assert message in text and path.name in text and "\n" not in text
    assert not out.exists() and not list(tmp_path.glob(".out.tif*"))


def test_truncated_file_is_an_input_error(emit, tmp_path):
    data = emit["path"].read_bytes()
    cut = tmp_path / "EMIT_L2A_RFL_cut.nc"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match=r"EMIT_L2A_RFL_cut.nc .*the file is truncated \(\d+ of \d+ bytes"):
        run_rx(cut, tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()


def test_readers_behave_the_same_when_the_host_turned_gdal_exceptions_on(emit, tmp_path):
    """QGIS or another plugin may call gdal.UseExceptions(): a broken product is still one
    InputError line, a good one still reads (checked in a child process: the mode is global)."""
    import subprocess
    import sys

    broken = _broken(tmp_path, emit, skip=("location",))
    code = (
        "import sys; from osgeo import gdal; gdal.UseExceptions()\n"
        "from fers_engine.errors import InputError\nfrom fers_engine.io import open_scene\n"
        "s = open_scene(sys.argv[1]); print(s.map_view.width, s.read(0, 2)[0].shape); s.close()\n"
        "try:\n    open_scene(sys.argv[2])\nexcept InputError as e:\n    print('InputError:', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(emit["path"]), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"{emit['gx'].shape[1]} (285, 2, {COLS})"
    assert lines[1].startswith("InputError: EMIT_L2A_RFL_broken.nc: missing /location/glt_x")
