"""open_scene / read_ground_truth / find_ground_truth: every real scene, and every bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from osgeo import gdal

from fers_engine.errors import FersError, InputError
from fers_engine.io import find_ground_truth, open_scene, read_ground_truth
from fers_engine.io.gdal_scene import GdalScene
from fers_engine.io.mat_scene import MatScene

# CATALOG.md, sections A and B: (file, rows, cols, bands, source dtype, anomaly px or None)
CATALOG = [
    ("abu-airport-1/abu-airport-1.mat", 100, 100, 205, "uint16", 144),
    ("abu-airport-2/abu-airport-2.mat", 100, 100, 205, "uint16", 87),
    ("abu-airport-3/abu-airport-3.mat", 100, 100, 205, "int16", 170),
    ("abu-airport-4/abu-airport-4.mat", 100, 100, 191, "uint16", 60),
    ("abu-beach-1/abu-beach-1.mat", 150, 150, 188, "int16", 19),
    ("abu-beach-2/abu-beach-2.mat", 100, 100, 193, "int16", 202),
    ("abu-beach-3/abu-beach-3.mat", 100, 100, 188, "int16", 11),
    ("abu-urban-1/abu-urban-1.mat", 100, 100, 204, "int16", 67),
    ("abu-urban-2/abu-urban-2.mat", 100, 100, 207, "int16", 155),
    ("abu-urban-2/abu-urban-2__LREN_198band.mat", 100, 100, 198, "int16", 155),
    ("san-diego/AVIRIS-I__CNND_120x120x189.mat", 120, 120, 189, "uint16", 58),
    ("san-diego/sandiego__OT-AD_100x100x189.mat", 100, 100, 189, "uint16", 58),
    ("san-diego/Sandiego__DSC_100x100x224.mat", 100, 100, 224, "int16", 57),
    ("san-diego-envi-90x90/SDData", 90, 90, 189, "int16", 77),
    ("hydice-urban/hydice__OT-AD.mat", 80, 100, 162, "uint16", 17),
    ("hydice-urban/HYDICE__DSC.mat", 80, 100, 162, "uint16", 19),
    ("hydice-urban/HYDICE_data__LREN.mat", 100, 80, 162, "uint16", 19),
    ("hydice-urban/HYDICE__DFAN-HAD_175band_norm.mat", 80, 100, 175, "float64", 21),
    ("pavia-centre-100x100/abu-beach-4__LREN_100x100.mat", 100, 100, 102, "float64", 68),
    ("pavia-centre-100x100/Pavia__lzw-lzw.mat", 100, 100, 102, "float64", 71),
    ("lhdata-envi-100x100/LHData", 100, 100, 186, "uint16", 32),
    ("muufl-gulfport-crops/an_hsi_img_for_tgt_det_demo.mat", 36, 36, 72, "float32", 3),
    ("bg-aviris-santa-barbara-90x90/a_hsi_img_for_VI_demo.mat", 90, 90, 224, "int16", None),
    ("bg-jasper-ridge-100x100/jasperRidge2_R198.mat", 100, 100, 198, "uint16", None),
    ("muufl-gulfport-crops/an_hsi_image_sub_for_demo.mat", 51, 88, 72, "float32", None),
]


@pytest.mark.parametrize(
    "rel, rows, cols, bands, dtype, anomalies", CATALOG, ids=[Path(c[0]).name for c in CATALOG]
)
def test_every_shared_scene_loads(shared_data, rel, rows, cols, bands, dtype, anomalies):
    path = shared_data / rel
    with open_scene(path) as scene:
        info = scene.info
        assert (info.height, info.width, info.count, info.dtype) == (rows, cols, bands, dtype)
        block, valid = scene.read_all()
    assert block.shape == (bands, rows, cols) and block.dtype == np.float32
    assert valid.shape == (rows, cols) and valid.dtype == bool
    assert np.isfinite(block).all()
    if anomalies is None:
        assert find_ground_truth(path) is None
        with pytest.raises(InputError, match="no ground-truth"):
            read_ground_truth(path)
    else:
        assert find_ground_truth(path) is not None
        gt = read_ground_truth(path, expected_shape=(rows, cols))
        assert gt.dtype == bool and int(gt.sum()) == anomalies


def test_catalog_covers_every_shared_file(shared_data):
    """A file added to the shared folder without a row above fails here, not silently."""
    listed = {c[0] for c in CATALOG}
    found = set()
    for p in shared_data.rglob("*"):
        if p.suffix.lower() == ".mat" or (p.is_file() and p.suffix == "" and p.with_suffix(".hdr").exists()):
            found.add(p.relative_to(shared_data).as_posix())
    assert found == listed


def test_reading_leaves_the_data_folders_untouched(shared_data):
    before = {p: p.stat().st_mtime for p in shared_data.rglob("*")}
    for rel, *_ in CATALOG[:1] + CATALOG[13:14] + CATALOG[20:21]:
        with open_scene(shared_data / rel) as scene:
            scene.read(0, 10)
        find_ground_truth(shared_data / rel)
    after = {p: p.stat().st_mtime for p in shared_data.rglob("*")}
    assert after == before


def test_envi_ground_truth_found_from_data_or_header(shared_data):
    folder = shared_data / "san-diego-envi-90x90"
    assert find_ground_truth(folder / "SDData") == folder / "SDDataGt.bmp"
    assert find_ground_truth(folder / "SDData.hdr") == folder / "SDDataGt.bmp"
    direct = read_ground_truth(folder / "SDDataGt.bmp")
    np.testing.assert_array_equal(direct, read_ground_truth(folder / "SDData.hdr"))
    with pytest.raises(InputError, match="ground truth is 90x90 but the scene is 100x100"):
        read_ground_truth(folder / "SDDataGt.bmp", expected_shape=(100, 100))


# -- dispatch ----------------------------------------------------------------------------------
def test_dispatch_by_format(tmp_path, cube, make_geotiff):
    scipy.io.savemat(tmp_path / "a.mat", {"data": np.moveaxis(cube, 0, 2)})
    with open_scene(tmp_path / "a.mat") as s:
        assert isinstance(s, MatScene)
    os.rename(tmp_path / "a.mat", tmp_path / "renamed.bin")  # MATLAB header sniffed, not suffix
    with open_scene(tmp_path / "renamed.bin") as s:
        assert isinstance(s, MatScene)
    with open_scene(make_geotiff(tmp_path / "b.tif", cube)) as s:
        assert isinstance(s, GdalScene)
        block, _ = s.read_all()
    np.testing.assert_array_equal(block, cube)


# -- bad inputs: each a FersError subclass naming the problem ---------------------------------
def _zero_band_container(path: Path) -> Path:
    """A GeoPackage with two raster tables: GDAL opens it with 0 bands and 2 subdatasets."""
    from osgeo import gdal

    for i, table in enumerate(("a", "b")):
        mem = gdal.GetDriverByName("MEM").Create("", 4, 3, 1, gdal.GDT_Byte)
        mem.SetGeoTransform((0, 1, 0, 0, 0, -1))
        mem.GetRasterBand(1).WriteArray(np.full((3, 4), i + 1, np.uint8))
        opts = [f"RASTER_TABLE={table}"] + (["APPEND_SUBDATASET=YES"] if i else [])
        gdal.Translate(str(path), mem, format="GPKG", creationOptions=opts)
    return path


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "missing.tif", "input not found"),
        (lambda d: (d / "empty.tif").write_bytes(b"") and d / "empty.tif" or d / "empty.tif", "empty"),
        (
            lambda d: (d / "notes.txt").write_text("hello\nworld\n") and d / "notes.txt",
            "notes.txt is a text file",
        ),
        (
            lambda d: (d / "fake.tif").write_text("not really a tiff") and d / "fake.tif",
            "fake.tif is a text file",
        ),
        (
            lambda d: (d / "junk.tif").write_bytes(bytes(range(256)) * 8) and d / "junk.tif",
            "cannot read junk.tif",
        ),
        (lambda d: (d / "junk.mat").write_text("plain text") and d / "junk.mat", "junk.mat"),
        (lambda d: _zero_band_container(d / "zero.gpkg"), "zero.gpkg has no bands: it holds 2 subdatasets"),
        (lambda d: d, "folder"),
    ],
)
def test_bad_inputs(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(InputError, match=words) as err:
        open_scene(path)
    assert isinstance(err.value, FersError)
    assert "\n" not in str(err.value), "one-line messages"


def test_subdataset_name_opens(tmp_path):
    path = _zero_band_container(tmp_path / "two.gpkg")
    with open_scene(f"GPKG:{path}:b") as scene:
        assert scene.info.count >= 1
        block, _ = scene.read(0, 3, bands=[0])
    assert (block[0] == 2).all()


def test_empty_path_is_refused():
    with pytest.raises(InputError, match="no input"):
        open_scene("")


# -- ground truth ------------------------------------------------------------------------------
def test_single_band_raster_is_a_mask(tmp_path, make_geotiff):
    m = np.zeros((7, 5), np.uint8)
    m[2, 2] = 255
    m[6, 4] = 1
    path = make_geotiff(tmp_path / "mask.tif", m)
    gt = read_ground_truth(path)
    assert gt.dtype == bool and gt.sum() == 2 and gt[2, 2] and gt[6, 4]


def test_ground_truth_found_beside_a_scene(tmp_path, cube, make_envi, make_geotiff):
    make_envi(tmp_path / "Scene", cube)
    assert find_ground_truth(tmp_path / "Scene") is None
    with pytest.raises(InputError, match="has 4 bands, so it is not a mask"):
        read_ground_truth(tmp_path / "Scene")
    m = np.zeros((7, 5), np.uint8)
    m[3, 3] = 1
    ds = gdal.GetDriverByName("BMP").Create(str(tmp_path / "scene_GT.bmp"), 5, 7, 1, gdal.GDT_Byte)
    ds.GetRasterBand(1).WriteArray(m)
    ds = None  # closes the file
    assert find_ground_truth(tmp_path / "Scene.hdr") == tmp_path / "scene_GT.bmp"
    gt = read_ground_truth(tmp_path / "Scene", expected_shape=(7, 5))
    assert gt.sum() == 1 and gt[3, 3]


def test_ground_truth_mat_beside_a_geotiff(tmp_path, cube, make_geotiff):
    make_geotiff(tmp_path / "img.tif", cube)
    m = np.zeros((7, 5), np.uint8)
    m[0, 1] = 1
    scipy.io.savemat(tmp_path / "img_gt.mat", {"whatever": m})
    assert find_ground_truth(tmp_path / "img.tif") == tmp_path / "img_gt.mat"
    assert read_ground_truth(tmp_path / "img.tif")[0, 1]


def test_mat_scene_is_its_own_ground_truth(tmp_path, cube):
    m = np.zeros((7, 5), np.uint8)
    m[1, 1] = 1
    scipy.io.savemat(tmp_path / "s.mat", {"data": np.moveaxis(cube, 0, 2), "map": m})
    assert find_ground_truth(tmp_path / "s.mat") == tmp_path / "s.mat"
    assert read_ground_truth(tmp_path / "s.mat").sum() == 1


def test_missing_ground_truth(tmp_path):
    with pytest.raises(InputError, match="input not found"):
        read_ground_truth(tmp_path / "nothing.bmp")
    assert find_ground_truth(tmp_path / "nothing.tif") is None
