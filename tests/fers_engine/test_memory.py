"""The memory plan: every share of a run's budget, and blocks sized from it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fers_engine.memory import MIB, MIN_GDAL_CACHE, MemoryPlan


@pytest.mark.parametrize("mb", [16, 64, 256, 1024, 8192])
def test_shares_stay_within_the_budget(mb):
    for feature_bytes in (0, mb * MIB // 3, mb * MIB):
        plan = MemoryPlan.for_run(mb, feature_bytes)
        total = plan.gdal_cache + plan.feature_cache + plan.working
        # below 64 MiB GDAL's floor and the working set's floor may add a few MiB
        assert total <= plan.budget or (mb < 64 and total <= plan.budget + MIN_GDAL_CACHE)
        assert plan.raw_chunk <= max(MIB, plan.working) and plan.enhancer_batch <= max(4 * MIB, plan.working)
        assert plan.score_chunk(200) * 200 * 8 <= max(1024 * 200 * 8, plan.working // 8)


def test_features_are_cached_only_when_the_whole_scene_fits_in_half():
    assert MemoryPlan.for_run(1024, 512 * MIB).feature_cache == 512 * MIB
    assert MemoryPlan.for_run(1024, 512 * MIB + 1).feature_cache == 0
    assert MemoryPlan.for_run(1024, 0).feature_cache == 0
    cached, uncached = MemoryPlan.for_run(1024, 100 * MIB), MemoryPlan.for_run(1024)
    assert cached.working == uncached.working - 512 * MIB  # the cache comes out of the working set


def test_gdal_cache_is_a_sixteenth_with_a_floor():
    assert MemoryPlan.for_run(1024).gdal_cache == 64 * MIB
    assert MemoryPlan.for_run(16).gdal_cache == MIN_GDAL_CACHE


def test_block_rows_fill_the_working_set():
    plan = MemoryPlan.for_run(256)
    rows = plan.block_rows(1000, 200 * 4 * 6)
    assert rows * 1000 * 200 * 4 * 6 <= plan.working < (rows + 1) * 1000 * 200 * 4 * 6
    assert plan.block_rows(10**9, 10**6) == 1  # a huge row still gives one row per block


_HEAP_PROBE = """
import sys
import numpy as np
from fers_engine.memory import map_large_arrays

def rss_mib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

if sys.argv[1] == "set":
    assert map_large_arrays()
a = np.ones(12 * 2**20 // 8)  # glibc raises its threshold to a freed block's size: 12 MiB
del a
block = np.ones(6 * 2**20 // 8)
above = np.ones(2**20 // 8)  # a live allocation after it, so the heap cannot shrink from its top
before = rss_mib()
del block
print(before - rss_mib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator (Linux)")
def test_large_arrays_leave_the_process_when_freed():
    """The CLI's allocator setting for the enhanced path: a freed 6 MiB array leaves the process
    at once. Without it glibc serves the array from its heap, where it stays resident when freed
    (in a fresh interpreter; after the whole test suite the child's heap may behave otherwise, so
    only the setting's effect is asserted: a no-op setting fails this in a fresh interpreter)."""
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(repo)}
    out = subprocess.run(
        [sys.executable, "-c", _HEAP_PROBE, "set"], capture_output=True, text=True, check=True, env=env
    )
    assert float(out.stdout.strip()) > 5


def test_the_gdal_cache_holds_one_row_of_tiles_when_it_fits():
    """A row of 256-row tiles of 4096 x 224 int16 bands (420 MiB) is decoded again for every block
    by a 64 MiB cache; at 1024 MiB the plan gives the cache that row and an eighth more, out of
    the working set; at 256 MiB it does not fit in half the budget and nothing changes."""
    row = 256 * 4096 * 224 * 2
    plan = MemoryPlan.for_run(1024, 0, row, 256)
    assert plan.gdal_cache == plan.read_cache == row + row // 8
    assert plan.working == plan.budget - plan.gdal_cache
    small = MemoryPlan.for_run(256, 0, row, 256)
    assert small.read_cache == 0 and small.gdal_cache == 16 * MIB
    # a row of tiles smaller than the sixteenth needs nothing; nor do scanlines
    assert MemoryPlan.for_run(1024, 0, 10 * MIB, 16).read_cache == 0
    assert MemoryPlan.for_run(1024, 0, row, 1).read_cache == 0
    # the feature cache keeps its half; the row of tiles must fit in half of what is left
    assert MemoryPlan.for_run(1024, 512 * MIB, 200 * MIB, 256).read_cache == 225 * MIB
    assert MemoryPlan.for_run(1024, 512 * MIB, row, 256).read_cache == 0


@pytest.mark.parametrize("rows,aligned", [(45, 32), (256, 256), (300, 256), (700, 512), (1, 1), (3, 2)])
def test_blocks_start_on_the_rows_of_tiles_the_cache_holds(rows, aligned):
    plan = MemoryPlan.for_run(1024, 0, 256 * 4096 * 224 * 2, 256)
    assert plan.aligned_rows(rows) == aligned
    assert MemoryPlan.for_run(1024).aligned_rows(rows) == rows  # no read cache: unchanged
