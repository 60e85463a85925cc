"""RasterWriter: GeoTIFF layout, georeference round trip, atomic output, input protection."""

from __future__ import annotations

import os

import numpy as np
import pytest
from osgeo import gdal, osr

from fers_engine.errors import Cancelled, OutputError
from fers_engine.io import RasterWriter, open_scene, write_array

GT = (600000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0)


def _listing(folder):
    return sorted(os.listdir(folder))


def _epsg(ds) -> str:
    return osr.SpatialReference(wkt=ds.GetProjection()).GetAuthorityCode(None)


def _structure(ds) -> dict:
    return ds.GetMetadata_Dict("IMAGE_STRUCTURE")


def test_round_trip_keeps_crs_transform_size(tmp_path):
    data = np.arange(3 * 300 * 270, dtype=np.float32).reshape(3, 300, 270)
    out = tmp_path / "score.tif"
    with RasterWriter(
        out, 300, 270, count=3, crs="EPSG:32611", transform=GT, band_descriptions=["a", "b", "c"]
    ) as w:
        for r0 in range(0, 300, 128):  # blocks do not align with the 256 tiles on purpose
            w.write(r0, data[:, r0 : r0 + 128])
    assert _listing(tmp_path) == ["score.tif"], "no temporary file left behind"
    g = gdal.Open(str(out))
    assert (g.RasterXSize, g.RasterYSize, g.RasterCount) == (270, 300, 3)
    assert g.GetGeoTransform() == GT
    srs = osr.SpatialReference(wkt=g.GetProjection())
    assert srs.GetUTMZone() == 11 and srs.GetAuthorityCode(None) == "32611"
    bands = [g.GetRasterBand(b) for b in (1, 2, 3)]
    assert all(b.GetBlockSize() == [256, 256] for b in bands), "tiled 256 x 256"
    assert _structure(g).get("COMPRESSION") == "DEFLATE"
    assert _structure(g).get("PREDICTOR") == "3"
    assert _structure(g).get("INTERLEAVE") == "BAND"
    assert all(np.isnan(b.GetNoDataValue()) for b in bands)
    assert [b.GetDescription() for b in bands] == ["a", "b", "c"]
    np.testing.assert_array_equal(g.ReadAsArray(), data)
    bands = g = None


def test_read_back_through_our_reader(tmp_path):
    data = np.ones((2, 10, 8), np.float32)
    data[0, 4, 4] = np.nan
    out = write_array(tmp_path / "x.tif", data, crs="EPSG:4326", transform=(10, 0.1, 0, 50, 0, -0.1))
    with open_scene(out) as scene:
        assert scene.info.transform == pytest.approx((10, 0.1, 0, 50, 0, -0.1))
        assert osr.SpatialReference(wkt=scene.info.crs).GetAuthorityCode(None) == "4326"
        _, valid = scene.read_all()
    assert not valid[4, 4] and valid.sum() == 79


def test_uint8_output_and_no_crs(tmp_path):
    mask = np.zeros((20, 30), bool)
    mask[5, 6] = True
    out = write_array(tmp_path / "mask.tif", mask)
    ds = gdal.Open(str(out))
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() is None and ds.GetProjection() == ""
    assert _structure(ds).get("PREDICTOR") == "2"
    assert band.ReadAsArray().sum() == 1 and band.ReadAsArray()[5, 6] == 1


def test_like_input_supplies_georeference(tmp_path, cube, make_geotiff, utm33):
    src = make_geotiff(tmp_path / "in.tif", cube)
    with open_scene(src) as scene:
        with RasterWriter(tmp_path / "out.tif", 7, 5, like_input=scene) as w:
            w.write(0, np.zeros((7, 5), np.float32))
    ds = gdal.Open(str(tmp_path / "out.tif"))
    assert _epsg(ds) == "32633" and ds.GetGeoTransform() == pytest.approx(utm33)


def test_replaces_an_older_output(tmp_path):
    out = tmp_path / "r.tif"
    write_array(out, np.zeros((4, 4), np.float32))
    write_array(out, np.full((4, 4), 7, np.float32))
    assert (gdal.Open(str(out)).ReadAsArray() == 7).all()
    assert _listing(tmp_path) == ["r.tif"]


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), Cancelled("cancelled by the user"), KeyboardInterrupt()]
)
def test_exception_inside_with_leaves_nothing(tmp_path, error):
    out = tmp_path / "partial.tif"
    with pytest.raises(type(error)):
        with RasterWriter(out, 600, 10, crs="EPSG:32611", transform=GT) as w:
            w.write(0, np.ones((300, 10), np.float32))
            assert len(_listing(tmp_path)) == 1 and _listing(tmp_path)[0].startswith(".partial.tif.partial-")
            raise error
    assert _listing(tmp_path) == []


def test_failed_rewrite_keeps_the_previous_output(tmp_path):
    out = tmp_path / "keep.tif"
    write_array(out, np.full((4, 4), 3, np.float32))
    with pytest.raises(OutputError, match="does not fit"):
        with RasterWriter(out, 4, 4) as w:
            w.write(0, np.zeros((4, 5), np.float32))
    assert _listing(tmp_path) == ["keep.tif"]
    assert (gdal.Open(str(out)).ReadAsArray() == 3).all()


def test_output_equal_to_input_is_refused(tmp_path, cube, make_geotiff, make_envi):
    src = make_geotiff(tmp_path / "in.tif", cube)
    before = src.read_bytes()
    with pytest.raises(OutputError, match="would overwrite the input"):
        RasterWriter(src, 7, 5, like_input=src)
    with pytest.raises(OutputError, match="would overwrite"):
        RasterWriter(tmp_path / "sub" / ".." / "in.tif", 7, 5, like_input=str(src))
    os.symlink(src, tmp_path / "link.tif")
    with pytest.raises(OutputError, match="would overwrite"):
        write_array(tmp_path / "link.tif", np.zeros((7, 5)), like_input=src)
    assert src.read_bytes() == before
    assert _listing(tmp_path) == ["in.tif", "link.tif"]


@pytest.mark.parametrize("target", ["scene", "scene.hdr"])
@pytest.mark.parametrize("given", ["scene", "scene.hdr", "opened"])
def test_output_onto_any_file_of_an_envi_input_is_refused(tmp_path, cube, make_envi, target, given):
    make_envi(tmp_path / "scene", cube)
    before = _listing(tmp_path)
    if given == "opened":
        with open_scene(tmp_path / "scene.hdr") as scene:
            with pytest.raises(OutputError, match="would overwrite"):
                RasterWriter(tmp_path / target, 7, 5, like_input=scene)
    else:
        with pytest.raises(OutputError, match="would overwrite"):
            RasterWriter(tmp_path / target, 7, 5, like_input=tmp_path / given)
    assert _listing(tmp_path) == before


def test_output_location_errors(tmp_path):
    with pytest.raises(OutputError, match="output folder does not exist"):
        RasterWriter(tmp_path / "nope" / "x.tif", 4, 4)
    with pytest.raises(OutputError, match="output path is a folder"):
        RasterWriter(tmp_path, 4, 4)
    w = RasterWriter(tmp_path / "x.tif", 4, 4)
    with pytest.raises(OutputError, match="not open"):
        w.write(0, np.zeros((4, 4)))
    with pytest.raises(OutputError, match="rows 2:6 outside"):
        with RasterWriter(tmp_path / "y.tif", 4, 4) as w:
            w.write(2, np.zeros((4, 4)))
    with pytest.raises(OutputError, match="not supported"):
        RasterWriter(tmp_path / "z.tif", 4, 4, dtype="complex64")
    assert _listing(tmp_path) == []


def test_unwritable_folder(tmp_path, monkeypatch):
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # root ignores chmod, so simulate it
    with pytest.raises(OutputError, match="cannot write in .*Permission denied"):
        with RasterWriter(tmp_path / "x.tif", 4, 4) as w:
            w.write(0, np.zeros((4, 4)))
    assert _listing(tmp_path) == []


def test_band_metadata_round_trips_as_wavelengths(tmp_path):
    data = np.zeros((3, 4, 4), np.int16)
    meta = [{"wavelength": f"{w:.1f}", "wavelength_units": "Nanometers"} for w in (450, 550, 650)]
    out = tmp_path / "wl.tif"
    with RasterWriter(
        out, 4, 4, count=3, dtype="int16", nodata=None, band_metadata=meta, tags={"FERS_DETECTOR": "rx"}
    ) as w:
        w.write(0, data)
    with open_scene(out) as scene:
        np.testing.assert_allclose(scene.info.wavelengths, [450, 550, 650])
        assert scene.info.nodata is None
    assert gdal.Open(str(out)).GetMetadata_Dict()["FERS_DETECTOR"] == "rx"
    with pytest.raises(OutputError, match="2 band metadata entries for 3 bands"):
        RasterWriter(tmp_path / "bad.tif", 4, 4, count=3, band_metadata=meta[:2])


# A full disk for real: the child lowers its own file-size limit so that writes beyond it fail
# (EFBIG, like ENOSPC), with SIGXFSZ ignored. A small GDAL cache makes GDAL write tiles during
# write() ("during"), a large one only when the file is finished ("at commit").
FULL_DISK_RASTER = r"""
import resource, signal, sys
import numpy as np
from osgeo import gdal
from fers_engine.errors import OutputError
from fers_engine.io import RasterWriter
target, when, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "exceptions":
    gdal.UseExceptions()
gdal.SetCacheMax(1 if when == "during" else 512 * 2**20)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
data = np.random.default_rng(0).random((2, 1024, 700), dtype=np.float32)
stage = "open"
try:
    with RasterWriter(target, 1024, 700, count=2) as w:
        stage = "write"
        for r0 in range(0, 1024, 64):
            w.write(r0, data[:, r0:r0 + 64])
        stage = "commit"
    print("no error")
except OutputError as exc:
    print(stage, "|", exc)
"""


@pytest.mark.parametrize("mode", ["plain", "exceptions"])
@pytest.mark.parametrize("when", ["during", "at commit"])
def test_full_disk_is_an_output_error_and_keeps_the_previous_output(tmp_path, when, mode):
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "score.tif"
    write_array(out, np.full((4, 4), 3, np.float32))
    before = out.read_bytes()
    repo = Path(__file__).resolve().parents[3]
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK_RASTER, str(out), when.split()[0], mode],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(repo)),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    stage, _, message = proc.stdout.strip().partition(" | ")
    assert stage == ("write" if when == "during" else "commit"), proc.stdout
    assert message.startswith("cannot ") and "score.tif" in message and "File too large" in message
    assert "\n" not in message
    assert out.read_bytes() == before and _listing(tmp_path) == ["score.tif"]
