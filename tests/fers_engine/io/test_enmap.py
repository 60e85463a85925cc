"""EnMAP L2A: METADATA.XML + SPECTRAL_IMAGE (folder, lower-case .xml, ZIP) and the 18 real
EnMAP-Box-exported tiles of ``enmap-l2a-potsdam-tiles``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr
from products.checks import run_rx, same_crs, top_pixel
from products.common import reflectance
from products.enmap import GAIN, NAME, NODATA, TRANSFORM, metadata_xml, write_product, write_zip

from fers_engine.errors import InputError
from fers_engine.io import open_scene

TILES = "enmap-l2a-potsdam-tiles/images"


def _real_grid(shared_data: Path):
    """The 224 EnMAP L2A band centres and FWHMs, as the real tiles carry them."""
    ds = gdal.Open(str(next((shared_data / TILES).glob("*.tif"))))
    meta = [ds.GetRasterBand(b + 1).GetMetadata() for b in range(ds.RasterCount)]
    return (np.array([float(m["wavelength"]) for m in meta]), np.array([float(m["fwhm"]) for m in meta]))


@pytest.fixture
def product(tmp_path, shared_data):
    wl, fwhm = _real_grid(shared_data)
    vnir = list(range(1, 92))  # EnMAP: 91 VNIR channels up to ~1000 nm, then SWIR
    swir = list(range(92, 225))
    empty = [129, 130, 131]  # 0-based no-data bands in the 1.4 um water window
    scene = reflectance(50, 48, wl, anomaly=(12, 30))
    dn = np.round(np.moveaxis(scene.cube, 2, 0) / GAIN).astype(np.int16)
    dn[empty] = NODATA
    dn[:, :, :2] = NODATA  # a nodata collar on the west edge
    meta = write_product(tmp_path / "prod", dn, metadata_xml(wl, fwhm, vnir, swir, empty))
    return dict(meta=meta, wl=wl, fwhm=fwhm, vnir=vnir, swir=swir, empty=empty, dn=dn, scene=scene)


def _expected_good(p):
    good = np.ones(224, bool)
    good[p["empty"]] = False
    swir_start = p["wl"][p["swir"][0] - 1]
    good[[b - 1 for b in p["vnir"] if p["wl"][b - 1] >= swir_start]] = False
    return good


def test_metadata_xml_reads_back_exactly(product):
    with open_scene(product["meta"]) as scene:
        info = scene.info
        block, valid = scene.read(0, 4, [0, 50])
    assert info.product == "EnMAP L2A" and info.count == 224
    np.testing.assert_allclose(info.wavelengths, product["wl"], atol=5e-4)  # XML holds 3 decimals
    np.testing.assert_allclose(info.fwhm, product["fwhm"], atol=5e-4)
    np.testing.assert_array_equal(info.bad_bands, _expected_good(product))
    assert info.nodata == NODATA and np.all(info.scale == GAIN) and info.offset is None
    assert info.transform == TRANSFORM and "32633" in info.crs
    np.testing.assert_allclose(block[1, :, 2:], product["dn"][50, :4, 2:] * np.float32(GAIN), rtol=1e-6)
    assert not valid[:, :2].any() and valid[:, 2:].all()


@pytest.mark.parametrize("variant", ["lower-case xml", "image", "zip"])
def test_every_way_users_open_a_product_gives_the_same_scene(product, tmp_path, variant):
    folder = product["meta"].parent
    if variant == "lower-case xml":
        path = product["meta"].rename(folder / f"{NAME}-METADATA.xml")
    elif variant == "image":
        path = folder / f"{NAME}-SPECTRAL_IMAGE.TIF"
    else:
        path = write_zip(tmp_path / f"{NAME}.ZIP", folder)
    with open_scene(path) as scene:
        assert scene.info.product == "EnMAP L2A"
        np.testing.assert_array_equal(scene.info.bad_bands, _expected_good(product))
        block, _ = scene.read(0, 2, [10])
    np.testing.assert_allclose(block[0][:, 2:], product["dn"][10, :2, 2:] * np.float32(GAIN), rtol=1e-6)


def test_anomaly_found_and_map_georeferenced(product, tmp_path):
    scores, gt, wkt = run_rx(product["meta"], tmp_path / "score.tif")
    r, c = top_pixel(scores)
    ar, ac = product["scene"].anomaly
    assert ar <= r < ar + 2 and ac <= c < ac + 2
    assert gt == TRANSFORM
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    assert same_crs(wkt, srs.ExportToWkt())
    assert np.isnan(scores[:, :2]).all() and np.isfinite(scores[:, 2:]).all()
    blocked, _, _ = run_rx(product["meta"], tmp_path / "blocked.tif", block_rows=3)
    np.testing.assert_allclose(blocked, scores, rtol=1e-6)  # float64 sums in another order


@pytest.mark.parametrize(
    "break_it, message",
    [
        ("no image", "no ENMAP01"),
        ("bad xml", "not valid XML"),
        ("short xml", "223 wavelengths for 224 bands"),
    ],
)
def test_malformed_product_is_one_line_and_no_output(product, tmp_path, break_it, message):
    meta, folder = product["meta"], product["meta"].parent
    if break_it == "no image":
        (folder / f"{NAME}-SPECTRAL_IMAGE.TIF").unlink()
    elif break_it == "bad xml":
        meta.write_text(meta.read_text()[:500])
    else:
        p = product
        meta.write_text(metadata_xml(p["wl"][:-1], p["fwhm"][:-1], p["vnir"], p["swir"][:-1]))
    with pytest.raises(InputError) as err:
        run_rx(meta, tmp_path / "out.tif")
    assert message in str(err.value) and meta.name in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.tif").exists()


def test_real_tiles_read_as_enmap_box_exports(shared_data):
    tiles = sorted((shared_data / TILES).glob("*.tif"))
    assert len(tiles) == 18
    for tile in tiles:
        with open_scene(tile) as scene:
            info = scene.info
        assert info.product == "EnMAP L2A (EnMAP-Box export)" and info.count == 224
        assert info.nodata == -32768 and np.allclose(info.scale, 1e-4) and info.offset is None
        assert info.wavelengths[0] == pytest.approx(418.24)
        assert info.wavelengths[-1] == pytest.approx(2445.53, abs=0.1)
        assert np.flatnonzero(~info.bad_bands).tolist() == list(range(129, 135))  # bbl = 0: bands 130-135
        assert info.transform[1] == 30.0 and info.transform[5] == -30.0


def test_nodata_bands_an_export_does_not_flag_are_found_by_the_sampled_scan(shared_data, tmp_path):
    copy = tmp_path / "enmap_tile_bbl_all_good.tif"
    gdal.Translate(str(copy), str(shared_data / TILES / "enmap_potsdam_tile_96_32.tif"))
    ds = gdal.Open(str(copy), gdal.GA_Update)
    for b in range(ds.RasterCount):
        ds.GetRasterBand(b + 1).SetMetadataItem("bbl", "1")
    ds = None
    with open_scene(copy) as scene:
        info = scene.info
    assert np.flatnonzero(~info.bad_bands).tolist() == list(range(129, 135))
    assert any("hold only nodata" in n and "130-135" in n for n in info.notes)


def test_fers_detect_on_a_real_tile_is_georeferenced_with_the_right_bands(shared_data, tmp_path):
    tile = shared_data / TILES / "enmap_potsdam_tile_128_0.tif"
    from fers_engine.pipeline import DetectOptions, detect

    result = detect(tile, tmp_path / "score.tif", DetectOptions(enhancer="none", detector="rx"))
    assert result.bands_used == 218 and any("EnMAP L2A" in m for m in result.messages)
    src, out = gdal.Open(str(tile)), gdal.Open(str(tmp_path / "score.tif"))
    assert out.GetGeoTransform() == src.GetGeoTransform()
    assert same_crs(out.GetProjection(), src.GetProjection())
    scores = out.GetRasterBand(1).ReadAsArray()
    assert scores.shape == (32, 32) and np.isfinite(scores).all()
