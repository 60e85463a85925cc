"""``fers info`` and ``fers detect --no-ortho/--north-up`` on sensor products."""

from __future__ import annotations

import json

import numpy as np
from osgeo import gdal
from products.aviris import rotated_geotransform, write_envi
from products.common import band_table, reflectance
from products.emit import GEOTRANSFORM, small_product

from fers_engine.cli import main as fers


def _emit(tmp_path, shared_data):
    return small_product(tmp_path, shared_data)


def test_info_prints_product_grid_good_bands_scale_nodata_and_georeference(tmp_path, shared_data, capsys):
    path, wl, good, (oh, ow) = _emit(tmp_path, shared_data)
    assert fers(["info", str(path)]) == 0
    text = capsys.readouterr().out
    for expected in (
        "product: EMIT L2A RFL",
        f"size: {ow} x {oh} px (map grid; read as 30 x 40 px)",
        f"band grid: 285 bands, {wl.min():.1f}-{wl.max():.1f} nm",
        f"good bands: {int(good.sum())} of 285",
        "scale: none",
        "nodata: -9999.0",
        "crs: WGS 84 (EPSG:4326)",
        f"geotransform: {list(GEOTRANSFORM)}",
    ):
        assert expected in text, expected
    assert fers(["info", str(path), "--json", "--no-ortho"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["size"] == [30, 40] and info["geotransform"] is None and info["crs"] is None
    assert info["good_bands"] == [bool(g) for g in good]


def test_info_on_a_real_enmap_tile_names_its_bad_bands_and_scale(shared_data, capsys):
    tile = shared_data / "enmap-l2a-potsdam-tiles" / "images" / "enmap_potsdam_tile_96_96.tif"
    assert fers(["info", str(tile)]) == 0
    text = capsys.readouterr().out
    assert "product: EnMAP L2A (EnMAP-Box export)" in text
    assert "good bands: 218 of 224; bad: 130-135" in text
    assert "scale: 0.0001 (all bands)" in text and "nodata: -32768.0" in text
    assert "EPSG:32633" in text


def test_detect_flags_choose_the_output_geometry(tmp_path, shared_data, capsys):
    path, *_ = _emit(tmp_path, shared_data)
    rx = ["--enhancer", "none", "--detector", "rx", "-q"]
    assert fers(["detect", str(path), str(tmp_path / "swath.tif"), "--no-ortho", *rx]) == 0
    swath = gdal.Open(str(tmp_path / "swath.tif"))
    assert (swath.RasterYSize, swath.RasterXSize) == (40, 30)
    wl, fwhm = band_table(shared_data, "emit")
    data = write_envi(tmp_path, reflectance(30, 20, wl).cube, wl, fwhm, np.ones(wl.size, int))
    assert fers(["detect", str(data), str(tmp_path / "north.tif"), "--north-up", *rx]) == 0
    gt = gdal.Open(str(tmp_path / "north.tif")).GetGeoTransform()
    assert gt[2] == gt[4] == 0.0 and gt[1] > 0 > gt[5]
    assert fers(["detect", str(data), str(tmp_path / "rot.tif"), *rx]) == 0
    np.testing.assert_allclose(gdal.Open(str(tmp_path / "rot.tif")).GetGeoTransform(), rotated_geotransform())


def test_file_filters_offered_to_dialogs_match_the_names_the_readers_recognise(tmp_path):
    """Every product name a dialog offers is one ``detect_product`` recognises by name."""
    import fnmatch

    from products.desis import NAME as DESIS
    from products.enmap import NAME as ENMAP

    from fers_engine.io import PRODUCT_FILE_FILTERS
    from fers_engine.io.desis import is_desis_name
    from fers_engine.io.enmap import is_enmap_name

    names = {"EnMAP L2A": [f"{ENMAP}-METADATA.XML", f"{ENMAP}.ZIP"], "DESIS L2A": [f"{DESIS}-METADATA.xml"]}
    filters = dict(PRODUCT_FILE_FILTERS)
    for product, examples in names.items():
        for name in examples:
            assert any(fnmatch.fnmatch(name, pat) for pat in filters[product].split()), name
            assert (is_enmap_name if product.startswith("EnMAP") else is_desis_name)(tmp_path / name)
