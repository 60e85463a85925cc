"""osgeo.gdal in the engine: errors in either binding mode, the block cache left to the host in
worker threads, a truncated file as one line, and no rasterio anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from fers_engine.errors import InputError
from fers_engine.io import open_scene, write_array
from fers_engine.io.gdal_runtime import GdalErrors, limit_gdal_cache

REPO = Path(__file__).resolve().parents[3]


def test_gdal_errors_records_failures_in_either_mode(tmp_path):
    missing = str(tmp_path / "missing.tif")
    for exceptions in (False, True):
        was = gdal.GetUseExceptions()
        (gdal.UseExceptions if exceptions else gdal.DontUseExceptions)()
        try:
            with GdalErrors() as errors:
                assert errors.call(gdal.Open, missing) is None
                problem = errors.take()
            assert problem and "missing.tif" in problem, (exceptions, problem)
            assert errors.take() is None, "take() clears the record"
        finally:
            (gdal.UseExceptions if was else gdal.DontUseExceptions)()


def test_cache_cap_from_the_main_thread_is_restored():
    before = gdal.GetCacheMax()
    with limit_gdal_cache(20 * 2**20):
        assert gdal.GetCacheMax() == min(before, 20 * 2**20)
    assert gdal.GetCacheMax() == before


def test_cache_cap_leaves_the_host_setting_alone_in_a_worker_thread():
    """A QGIS Processing task runs in a worker thread: the process-wide cache is QGIS's."""
    before = gdal.GetCacheMax()
    seen = []

    def job():
        with limit_gdal_cache(20 * 2**20):
            seen.append(gdal.GetCacheMax())

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    assert seen == [before] and gdal.GetCacheMax() == before


def test_cache_cap_keeps_a_change_made_by_someone_else():
    before = gdal.GetCacheMax()
    try:
        with limit_gdal_cache(20 * 2**20):
            gdal.SetCacheMax(30 * 2**20)  # the host changed its mind while the job ran
        assert gdal.GetCacheMax() == 30 * 2**20
    finally:
        gdal.SetCacheMax(before)


def test_truncated_geotiff_is_one_line(tmp_path):
    path = tmp_path / "cut.tif"
    write_array(path, np.random.default_rng(0).random((3, 200, 300), dtype=np.float32))
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with open_scene(path) as scene:
        with pytest.raises(
            InputError, match=r"cannot read rows 0:200 of cut.tif \(.*\); is the file truncated"
        ):
            scene.read_all()


# Runs in a fresh interpreter where rasterio and affine cannot be imported, with GDAL's
# exception mode on (as some hosts set it): write, read back, detect, threshold.
NO_RASTERIO = r"""
import sys
sys.modules["rasterio"] = None
sys.modules["affine"] = None
from osgeo import gdal
gdal.UseExceptions()
import numpy as np
from fers_engine.io import open_scene, write_array
from fers_engine.pipeline import DetectOptions, detect, threshold_raster
from fers_engine.synthetic import make_scene, write_scene
folder = sys.argv[1]
scene = make_scene(rows=30, cols=20, bands=12, seed=1, n_targets=2)
write_scene(scene, folder + "/cube.tif", folder + "/truth.tif")
with open_scene(folder + "/cube.tif") as s:
    block, valid = s.read_all()
assert np.array_equal(block, scene.cube.astype(np.float32)) and valid.all()
detect(folder + "/cube.tif", folder + "/score.tif", DetectOptions(enhancer="none", detector="rx"))
threshold_raster(folder + "/score.tif", folder + "/mask.tif")
try:
    open_scene(folder + "/truth.tif").read(0, 99)
except Exception as exc:
    print(type(exc).__name__)
print("ok", "rasterio" in sys.modules and sys.modules["rasterio"] is not None)
"""


def test_engine_io_runs_without_rasterio_and_with_gdal_exceptions(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", NO_RASTERIO, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["InputError", "ok", "False"], proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.tif", "mask.tif", "score.tif", "truth.tif"]


def test_a_run_may_move_its_cap_within_the_host_setting():
    """``detect`` raises the cap to one row of the file's tiles once it knows the file; never
    above what the host had, and the host's value comes back at the end."""
    before = gdal.GetCacheMax()
    try:
        gdal.SetCacheMax(200 * 2**20)
        with limit_gdal_cache(20 * 2**20) as cap:
            assert gdal.GetCacheMax() == 20 * 2**20
            cap.set(120 * 2**20)
            assert gdal.GetCacheMax() == 120 * 2**20
            cap.set(500 * 2**20)
            assert gdal.GetCacheMax() == 200 * 2**20
        assert gdal.GetCacheMax() == 200 * 2**20
    finally:
        gdal.SetCacheMax(before)
