"""GdalScene: GeoTIFF and ENVI metadata (CRS, transform, nodata, wavelengths, fwhm, bbl), reads."""

from __future__ import annotations

import os

import numpy as np
import pytest
from osgeo import gdal, osr

from fers_engine.errors import InputError
from fers_engine.io import open_scene
from fers_engine.io.gdal_scene import GdalScene

ENVI_EXTRA = """data ignore value = -9999
map info = {UTM, 1.000, 1.000, 500000.0, 4600000.0, 2.5, 2.5, 33, North, WGS-84, units=Meters}
wavelength units = Micrometers
wavelength = {0.45, 0.55, 0.65, 0.85}
fwhm = {0.01, 0.01, 0.02, 0.02}
bbl = {1, 0, 1, 1}
band names = {blue, green, red, nir}
"""


def test_geotiff_keeps_crs_transform_wavelengths(tmp_path, cube, make_geotiff, utm33):
    path = make_geotiff(
        tmp_path / "s.tif", cube, wavelengths=[0.45, 0.55, 0.65, 0.85], wavelength_units="Micrometers"
    )
    with GdalScene(path) as scene:
        info = scene.info
        assert (info.height, info.width, info.count, info.dtype) == (7, 5, 4, "int16")
        assert "32633" in info.crs or "UTM zone 33N" in info.crs
        assert info.transform == pytest.approx(utm33)
        np.testing.assert_allclose(info.wavelengths, [450, 550, 650, 850])
        assert info.wavelength_units == "Micrometers"
        assert info.nodata is None and info.bad_bands is None
        assert len(info.band_names) == 4


def test_geotiff_without_crs_is_fine(tmp_path, cube, make_geotiff):
    path = make_geotiff(tmp_path / "plain.tif", cube, crs=None, transform=None)
    with open_scene(path) as scene:
        assert scene.info.crs is None
        assert scene.info.transform is None
        block, valid = scene.read_all()
    assert valid.all()
    np.testing.assert_array_equal(block, cube.astype(np.float32))


def test_wavelength_units_guessed_when_missing(tmp_path, cube, make_geotiff):
    path = make_geotiff(tmp_path / "g.tif", cube, wavelengths=[0.45, 0.55, 0.65, 0.85])
    with open_scene(path) as scene:
        np.testing.assert_allclose(scene.info.wavelengths, [450, 550, 650, 850])
        assert any("guessed as micrometres" in n for n in scene.info.notes)
    path = make_geotiff(tmp_path / "n.tif", cube, wavelengths=[450, 550, 650, 850])
    with open_scene(path) as scene:
        np.testing.assert_allclose(scene.info.wavelengths, [450, 550, 650, 850])


def test_nodata_and_nan_pixels_are_invalid(tmp_path, cube, make_geotiff):
    data = cube.astype(np.float32)
    data[2, 1, 1] = -9999  # nodata in one band only is enough
    data[0, 3, 4] = np.nan
    data[3, 6, 0] = np.inf
    path = make_geotiff(tmp_path / "nd.tif", data, nodata=-9999)
    with open_scene(path) as scene:
        assert scene.info.nodata == -9999
        block, valid = scene.read_all()
    expected = np.ones((7, 5), bool)
    expected[1, 1] = expected[3, 4] = expected[6, 0] = False
    np.testing.assert_array_equal(valid, expected)
    assert np.isfinite(block).all(), "invalid pixels are zero-filled so maths stays finite"
    assert (block[:, ~valid] == 0).all()
    np.testing.assert_array_equal(block[:, valid], data[:, valid])


def test_internal_dataset_mask_makes_pixels_invalid(tmp_path, cube, make_geotiff):
    path = make_geotiff(tmp_path / "m.tif", cube)
    gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES")
    try:
        ds = gdal.Open(str(path), gdal.GA_Update)
        ds.CreateMaskBand(gdal.GMF_PER_DATASET)
        mask = np.full((7, 5), 255, np.uint8)
        mask[0, 0] = 0
        ds.GetRasterBand(1).GetMaskBand().WriteArray(mask)
        ds = None  # closes the file
    finally:
        gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", None)
    assert not (tmp_path / "m.tif.msk").exists(), "the mask is inside the TIFF"
    with open_scene(path) as scene:
        _, valid = scene.read_all()
    assert not valid[0, 0] and valid.sum() == 34


def test_block_reads_equal_whole_read(tmp_path, cube, make_geotiff):
    path = make_geotiff(tmp_path / "b.tif", cube)
    with open_scene(path) as scene:
        whole, _ = scene.read_all()
        parts = [scene.read(r0, min(r0 + 3, 7))[0] for r0 in range(0, 7, 3)]
        np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
        sub, _ = scene.read(2, 5, bands=[3, 1])
        np.testing.assert_array_equal(sub, whole[[3, 1], 2:5])
        dup, _ = scene.read(0, 7, bands=np.array([2, 2, 0]))
        np.testing.assert_array_equal(dup, whole[[2, 2, 0]])
    assert whole.dtype == np.float32 and whole.shape == (4, 7, 5)


@pytest.mark.parametrize(
    "rows, bands, words",
    [
        ((0, 8), None, "row range"),
        ((3, 3), None, "row range"),
        ((0, 7), [4], "band index 4 out of range"),
        ((0, 7), [-1], "out of range"),
        ((0, 7), [], "empty"),
    ],
)
def test_bad_read_requests(tmp_path, cube, rows, bands, words, make_geotiff):
    path = make_geotiff(tmp_path / "r.tif", cube)
    with open_scene(path) as scene:
        with pytest.raises(InputError, match=words):
            scene.read(*rows, bands=bands)


@pytest.mark.parametrize("via_header", [False, True])
def test_envi_header_metadata(tmp_path, cube, via_header, make_envi):
    data = cube.copy()
    data[:, 2, 3] = -9999
    path = make_envi(tmp_path / "scene", data, ENVI_EXTRA)
    with open_scene(tmp_path / "scene.hdr" if via_header else path) as scene:
        info = scene.info
        assert info.path == str(path)
        assert info.nodata == -9999, "ENVI 'data ignore value' becomes nodata"
        np.testing.assert_allclose(info.wavelengths, [450, 550, 650, 850])
        np.testing.assert_allclose(info.fwhm, [10, 10, 20, 20])
        np.testing.assert_array_equal(info.bad_bands, [True, False, True, True])
        assert info.band_names == ["blue", "green", "red", "nir"]
        assert osr.SpatialReference(wkt=info.crs).GetUTMZone() == 33
        assert info.transform == pytest.approx((500000.0, 2.5, 0.0, 4600000.0, 0.0, -2.5))
        block, valid = scene.read_all()
    assert not valid[2, 3] and valid.sum() == 34
    np.testing.assert_array_equal(block[:, valid], cube[:, valid])


@pytest.mark.parametrize("interleave", ["bil", "bip"])
def test_envi_interleaves_read_the_same(tmp_path, cube, interleave, make_envi):
    path = make_envi(tmp_path / "cube.img", cube, "", interleave=interleave)
    with open_scene(path) as scene:
        block, _ = scene.read_all()
        assert scene.info.crs is None and scene.info.transform is None
    np.testing.assert_array_equal(block, cube)


def test_envi_header_without_data_file(tmp_path):
    (tmp_path / "lonely.hdr").write_text("ENVI\nsamples = 2\nlines = 2\nbands = 1\n")
    with pytest.raises(InputError, match="no data file"):
        open_scene(tmp_path / "lonely.hdr")


# -- the real ENVI scenes ----------------------------------------------------------------------
def test_sddata_georeference_and_spectra(shared_data):
    folder = shared_data / "san-diego-envi-90x90"
    before = sorted(os.listdir(folder))
    with open_scene(folder / "SDData") as scene:
        info = scene.info
        assert (info.height, info.width, info.count, info.dtype) == (90, 90, 189, "int16")
        srs = osr.SpatialReference(wkt=info.crs)
        assert srs.IsProjected() and srs.GetUTMZone() == 11, "UTM zone 11 North"
        x0, dx, rx, y0, ry, dy = info.transform
        assert (dx, dy, rx, ry) == (3.5, -3.5, 0.0, 0.0)
        assert (x0, y0) == pytest.approx((480805.4, 3618830.5))
        wl = info.wavelengths
        assert wl.shape == (189,) and wl.dtype == np.float64
        assert wl[0] == pytest.approx(429.41) and wl[-1] == pytest.approx(2470.46)
        assert info.wavelength_units == "Nanometers"
        assert info.fwhm.shape == (189,) and 5 < info.fwhm.mean() < 15
        assert info.bad_bands.shape == (189,) and info.bad_bands.all(), "bbl is all 1 in this header"
        assert info.band_names[0] == "Resize (Band 7:sandiego_reflectance.img)"
        block, valid = scene.read_all()
    assert block.shape == (189, 90, 90) and valid.all()
    assert sorted(os.listdir(folder)) == before, "reading must never write .aux.xml beside the data"


def test_sddata_equals_the_mat_version_of_the_same_window(shared_data):
    """ENVI BSQ and .mat readers agree on axis order: SDData = AVIRIS-I[0:90, 27:117, :]."""
    with open_scene(shared_data / "san-diego-envi-90x90" / "SDData.hdr") as envi:
        a, _ = envi.read(10, 30)
    with open_scene(shared_data / "san-diego" / "AVIRIS-I__CNND_120x120x189.mat") as mat:
        b, _ = mat.read(10, 30)
    np.testing.assert_array_equal(a, b[:, :, 27:117])


def test_lhdata_bil_without_georeference(shared_data):
    with open_scene(shared_data / "lhdata-envi-100x100" / "LHData") as scene:
        info = scene.info
        assert (info.height, info.width, info.count, info.dtype) == (100, 100, 186, "uint16")
        assert info.crs is None and info.transform is None
        assert info.wavelengths[0] == pytest.approx(390.19) and info.wavelengths[-1] == pytest.approx(856.45)
        top, _ = scene.read(0, 50)
        bottom, _ = scene.read(50, 100)
        whole, _ = scene.read_all()
    np.testing.assert_array_equal(np.concatenate([top, bottom], axis=1), whole)


def test_aux_xml_beside_envi_is_reported(tmp_path, cube, make_envi):
    """A stale .aux.xml can silently override the header (EnMAP-Box bitbucket #943)."""
    path = make_envi(tmp_path / "e", cube)
    (tmp_path / "e.aux.xml").write_text(
        '<PAMDataset><PAMRasterBand band="1"><NoDataValue>0</NoDataValue></PAMRasterBand></PAMDataset>'
    )
    with open_scene(path) as scene:
        assert any("e.aux.xml" in n for n in scene.info.notes)
        assert tmp_path / "e.aux.xml" in scene.files
