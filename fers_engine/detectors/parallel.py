"""How the windowed detectors share work: worker counts, chunk sizes and cancellable runs.

Local RX and CRD spend milliseconds per pixel, so a block can take minutes. Their kernels
therefore run in *chunks* sized by an estimate of the work per pixel, so that the caller's cancel
(QGIS's button, the CLI's Ctrl-C) is checked a few times a second whatever the band count,
window or image width; chunks are shared by worker threads (the kernels release the GIL).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence, Tuple, TypeVar

from ..errors import InputError
from ..progress import Reporter

T = TypeVar("T")

#: Multiply-adds per kernel call: about 0.1 s on one 2020s x86 core (the local-RX kernel runs
#: ~6e9 per second there), so a cancel is seen within a second even on a slow or
#: oversubscribed machine. Chunks are tall column strips, so the local-RX kernel's set-up per
#: call (its first window sums) is spread over ~100 rows and costs well under 1 %.
WORK_PER_CHUNK = 5e8
#: How much slower a numpy path is per multiply-add than its compiled kernel (measured 3-5x):
#: CRD's numpy chunks are smaller by this factor, so that a cancel is seen as soon (local RX's
#: numpy path checks once per row of a tile instead).
NUMPY_SLOWDOWN = 4.0


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity mask where the OS has one (Linux; a
    batch scheduler or ``taskset`` may grant fewer than the machine has), else every core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # Windows, macOS
        return max(1, os.cpu_count() or 1)


def resolve_workers(requested: Optional[int]) -> int:
    """Worker threads for a detector: ``requested`` when given (QGIS passes its own thread
    setting), else ``available_cores()``."""
    if requested is None:
        return available_cores()
    try:
        whole = not isinstance(requested, (bool, str)) and int(requested) == requested
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or requested < 1:
        raise InputError(f"workers must be a whole number of at least 1, got {requested!r}")
    return int(requested)


def pixels_per_chunk(work_per_pixel: float) -> int:
    """Pixels per kernel call so that one call is about ``WORK_PER_CHUNK`` multiply-adds."""
    return max(1, int(WORK_PER_CHUNK // max(1.0, work_per_pixel)))


def pixel_chunks(
    rows: int, width: int, pixels: int, workers: int = 1, strip: int = 1
) -> List[Tuple[int, int, int, int]]:
    """(r0, r1, c0, c1) tiles covering a rows x width grid, each of about ``pixels`` pixels.

    Tiles are column strips ``strip`` wide (or a whole number of strips), as tall as the budget
    allows: a kernel that slides its sums down a strip restarts them once per tile. A 224-band
    pixel can cost milliseconds, so a tile may be a fraction of one row's worth of pixels. When
    there are fewer tiles than ``workers`` (a small block), tiles shrink so that every worker
    gets one; otherwise the plan does not depend on ``workers``.
    """
    pixels = max(1, int(pixels))
    if workers > 1:
        pixels = max(1, min(pixels, -(-rows * width // int(workers))))
    strip = max(1, min(int(strip), width))
    if rows * strip <= pixels:  # whole columns, as many strips as fit
        tile_w, tile_h = strip * max(1, pixels // (rows * strip)), rows
    else:
        tile_w, tile_h = strip, max(1, pixels // strip)
    return [
        (r, min(rows, r + tile_h), c, min(width, c + tile_w))
        for c in range(0, width, tile_w)
        for r in range(0, rows, tile_h)
    ]


def run_chunks(work: Callable[[T], None], chunks: Sequence[T], workers: int, reporter: Reporter) -> None:
    """Call ``work(chunk)`` for every chunk on ``workers`` threads, checking cancel before each.

    Progress (``reporter.step``, the fraction of chunks done) is reported from the calling
    thread only, so front ends never see callbacks from worker threads. A cancel, an error in
    any chunk, or a KeyboardInterrupt in the calling thread stops every worker after the chunk
    it is on and starts no queued chunk, so the caller regains control within one chunk's time
    (a plain ``with ThreadPoolExecutor`` would run the whole queue first). ``work`` should
    release the GIL (compiled kernels, LAPACK) for threads to pay.
    """
    total = len(chunks)
    if workers <= 1 or total <= 1:
        for done, chunk in enumerate(chunks, 1):
            reporter.check()
            work(chunk)
            reporter.step(done / total)
        return
    stop = threading.Event()

    def guarded(chunk: T) -> None:
        if stop.is_set():
            return
        reporter.check()
        work(chunk)

    pool = ThreadPoolExecutor(max_workers=min(int(workers), total))
    futures = [pool.submit(guarded, chunk) for chunk in chunks]
    try:
        for done, future in enumerate(futures, 1):
            future.result()
            reporter.step(done / total)
    except BaseException:
        stop.set()
        for future in futures:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=True)
