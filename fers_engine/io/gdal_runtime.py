"""osgeo.gdal for the engine: the import, GDAL's errors as one line, and GDAL's block cache.

All raster I/O goes through ``osgeo.gdal``, the GDAL that QGIS itself ships, so inside QGIS one
GDAL serves the whole process (no second copy from a wheel). Two things in the bindings are
process-wide and belong to whoever embeds the engine (QGIS, another plugin, a script), so the
engine never changes them behind their back:

* the exception mode (``gdal.UseExceptions``): ``GdalErrors`` works in both modes. It pushes a
  handler for the calling thread only (GDAL's handler stack is per thread) that records every
  failure, and ``call`` turns the RuntimeError of the exception mode into the same record, so a
  failed read or write is seen whichever way the bindings report it;
* the block cache size (``gdal.SetCacheMax``): ``limit_gdal_cache`` changes it only when called
  from the main thread, and restores it only if nobody changed it meanwhile.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Literal, Optional

from .. import hints
from ..errors import DependencyError


def import_gdal():
    """The ``osgeo.gdal`` module, or a ``DependencyError`` that says how to get it."""
    try:
        from osgeo import gdal
    except ImportError:
        raise DependencyError(hints.GDAL) from None
    return gdal


class GdalErrors:
    """Failures GDAL reported while the ``with`` block ran, in this thread, in either binding mode.

    Use ``call(fn, ...)`` for every GDAL call whose failure matters: in the exception mode it
    catches the RuntimeError and records its text; otherwise the pushed handler records what GDAL
    emitted. ``take()`` returns the first failure since the last ``take`` (or None) and clears
    the record, so a caller can check after each write. Warnings are kept apart in ``warnings``
    and never printed: the caller decides what the user sees.
    """

    def __init__(self) -> None:
        self.gdal = import_gdal()
        self.failures: List[str] = []
        self.warnings: List[str] = []

    def _handler(self, err_class: int, err_no: int, message: str) -> None:
        text = " ".join(str(message).split())
        if err_class >= self.gdal.CE_Failure:
            self.failures.append(text or f"GDAL error {err_no}")
        elif err_class == self.gdal.CE_Warning:
            self.warnings.append(text)

    def __enter__(self) -> GdalErrors:
        self.gdal.PushErrorHandler(self._handler)
        return self

    def __exit__(self, *exc) -> Literal[False]:
        self.gdal.PopErrorHandler()
        return False

    def call(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """``fn(*args, **kwargs)``; None when it raised GDAL's RuntimeError (recorded)."""
        try:
            return fn(*args, **kwargs)
        except RuntimeError as exc:
            self.failures.append(" ".join(str(exc).split()) or type(exc).__name__)
            return None

    def take(self) -> Optional[str]:
        """The first failure recorded since the last call, or None; the record is cleared."""
        first = self.failures[0] if self.failures else None
        self.failures.clear()
        return first


_cache_lock = threading.Lock()


class CacheLimit:
    """The cap ``limit_gdal_cache`` set, which a run may move once it knows its file (``set``);
    never above the host's own setting, and inert outside the main thread."""

    def __init__(self, gdal: Any = None, host: int = 0) -> None:
        self._gdal, self._host, self.current = gdal, host, 0

    def set(self, max_bytes: int) -> None:
        """Cap the cache at ``max_bytes`` (at least 16 MiB, at most the host's setting), unless
        someone else changed the setting since this run set it."""
        if self._gdal is None:
            return
        with _cache_lock:
            if self.current and self._gdal.GetCacheMax() != self.current:
                return  # another caller owns the setting now
            self.current = int(min(self._host, max(16 * 2**20, max_bytes)))
            self._gdal.SetCacheMax(self.current)

    def restore(self) -> None:
        """Give the host its setting back, unless someone else changed it since this run did."""
        if self._gdal is None:
            return
        with _cache_lock:
            if self._gdal.GetCacheMax() == self.current:
                self._gdal.SetCacheMax(self._host)


@contextmanager
def limit_gdal_cache(max_bytes: int) -> Iterator[CacheLimit]:
    """Cap GDAL's block cache while a job runs, then restore it.

    GDAL's default cache is 5 % of the machine's RAM (1.2 GB on 24 GB) and counts in the
    process's resident memory, so streaming a large raster under a memory budget must bound it
    too. The cache is one setting for the whole process and GDAL has no per-dataset size, so it
    is changed only from the main thread (the CLI, a script); in a worker thread, such as a QGIS
    Processing task, the host's setting is left alone. The ``CacheLimit`` yielded moves the cap
    within the host's setting (``pipeline.detect`` raises it to one row of the file's tiles when
    the memory plan holds one). On exit the previous size comes back unless someone else
    changed the setting meanwhile.
    """
    if threading.current_thread() is not threading.main_thread():
        yield CacheLimit()
        return
    gdal = import_gdal()
    limit = CacheLimit(gdal, gdal.GetCacheMax())
    limit.set(max_bytes)
    try:
        yield limit
    finally:
        limit.restore()
