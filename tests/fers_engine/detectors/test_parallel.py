"""Worker counts, chunk plans and cancellable chunked runs (``detectors/parallel.py``)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from fers_engine.detectors import parallel
from fers_engine.errors import Cancelled, InputError
from fers_engine.progress import Reporter


def test_available_cores_follow_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 5}, raising=False)
    assert parallel.available_cores() == 2  # what taskset or a batch scheduler granted, not 64
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # Windows, macOS
    assert parallel.available_cores() == 64


def test_workers_default_to_the_available_cores_and_a_caller_overrides(monkeypatch):
    monkeypatch.setattr(parallel, "available_cores", lambda: 3)
    assert parallel.resolve_workers(None) == 3
    assert parallel.resolve_workers(1) == 1
    assert parallel.resolve_workers(8) == 8


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2", "abc", float("nan"), float("inf"), [2]])
def test_nonsense_worker_counts_are_one_clear_error(bad):
    with pytest.raises(InputError, match="workers must be a whole number"):
        parallel.resolve_workers(bad)


@pytest.mark.parametrize(
    "rows,width,pixels,workers,strip",
    [
        (7, 10, 25, 1, 1),
        (7, 10, 25, 4, 1),
        (7, 10, 1000, 3, 1),
        (3, 100, 7, 2, 1),
        (1, 5, 1, 1, 1),
        (5, 9, 9, 1, 1),
        (40, 50, 300, 1, 7),
        (40, 50, 300, 2, 7),
        (4, 50, 100, 1, 7),
        (9, 30, 5, 1, 8),
    ],
)
def test_chunks_tile_the_grid_once_in_strips_within_the_budget(rows, width, pixels, workers, strip):
    chunks = parallel.pixel_chunks(rows, width, pixels, workers, strip)
    seen = [[0] * width for _ in range(rows)]
    for r0, r1, c0, c1 in chunks:
        assert (r1 - r0) * (c1 - c0) <= max(pixels, strip)
        assert c0 % strip == 0  # tiles start on strip boundaries
        for r in range(r0, r1):
            for c in range(c0, c1):
                seen[r][c] += 1
    assert all(v == 1 for row in seen for v in row)
    if strip == 1 and rows * width >= workers:
        assert len(chunks) >= workers  # every worker gets something, even on a small block


def test_tiles_are_tall_strips_so_sliding_kernels_restart_rarely():
    chunks = parallel.pixel_chunks(1000, 4000, 20000, 2, strip=40)
    assert {c1 - c0 for _, _, c0, c1 in chunks} == {40} and {r1 - r0 for r0, r1, _, _ in chunks} == {500}
    # the plan of a large block does not depend on the worker count (nor, then, the rounding)
    assert chunks == parallel.pixel_chunks(1000, 4000, 20000, 1, strip=40)


def test_chunk_size_follows_the_work_per_pixel(monkeypatch):
    monkeypatch.setattr(parallel, "WORK_PER_CHUNK", 1000.0)
    assert parallel.pixels_per_chunk(10.0) == 100
    assert parallel.pixels_per_chunk(1e9) == 1  # never zero


@pytest.mark.parametrize("workers", [1, 3])
def test_every_chunk_runs_and_progress_comes_from_the_calling_thread(workers):
    done, steps, callers = [], [], set()

    def progress(fraction):
        steps.append(fraction)
        callers.add(threading.get_ident())

    parallel.run_chunks(done.append, list(range(10)), workers, Reporter(on_progress=progress))
    assert sorted(done) == list(range(10))
    assert steps == sorted(steps) and steps[-1] == pytest.approx(1.0)
    assert callers == {threading.get_ident()}


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_stops_queued_chunks(workers):
    started = []
    stop = threading.Event()

    def work(chunk):
        started.append(chunk)
        if len(started) >= 3:
            stop.set()
        time.sleep(0.02)

    with pytest.raises(Cancelled):
        parallel.run_chunks(work, list(range(200)), workers, Reporter(should_stop=stop.is_set))
    assert len(started) <= 3 + workers  # at most the chunks already running


def test_an_error_in_a_chunk_stops_the_others():
    started = []

    def work(chunk):
        started.append(chunk)
        if chunk == 1:
            raise RuntimeError("boom")
        time.sleep(0.02)

    with pytest.raises(RuntimeError, match="boom"):
        parallel.run_chunks(work, list(range(200)), 2, Reporter())
    assert len(started) < 20


def test_an_interrupt_in_the_calling_thread_stops_the_workers_within_a_chunk():
    """Ctrl-C lands in the main thread while workers compute: queued chunks must not run (a
    plain ``with ThreadPoolExecutor`` waits for the whole queue, which took minutes)."""
    started = []

    def progress(fraction):
        raise KeyboardInterrupt  # what the signal handler raises in the calling thread

    def work(chunk):
        started.append(chunk)
        time.sleep(0.05)

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        parallel.run_chunks(work, list(range(100)), 2, Reporter(on_progress=progress))
    assert time.perf_counter() - t0 < 1.0  # 100 chunks x 50 ms would be 2.5 s on 2 workers
    assert len(started) <= 4
