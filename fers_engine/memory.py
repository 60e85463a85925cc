"""How one run spends its memory budget (``--memory-mb``), so that the budget is a limit.

A run's peak resident memory is a fixed overhead (the interpreter and its libraries: numpy,
GDAL, and torch with the model when the enhancers run; ``bench/speed.py`` measures it as the
peak of the same command on a tiny scene) plus what the run holds for the scene. ``MemoryPlan``
gives every holder of the second part its share of the budget M, so that together they stay
within it; the bench checks ``peak <= 1.2 M + overhead``, the 0.2 M being allocator slack and
the small buffers numpy, GDAL and torch keep beyond the arrays sized here (``fers detect`` with
the enhancers also keeps glibc from holding freed blocks: ``map_large_arrays``):

* GDAL's block cache: M / 16 (at least 8 MiB). GDAL counts it in the process, and its default
  (5 % of the machine's RAM, 1.2 GB on 24 GB) alone exceeds most budgets. A file stored in tiles
  (or strips) holding every band decodes a whole row of tiles for any row read from it, so a
  cache smaller than one row of tiles decodes each tile again for every block that touches it
  (a 4096 x 4096 x 224 int16 GeoTIFF in 256 x 256 pixel-interleaved tiles took 19.7x its GDAL
  read for RX at M = 1024 MiB, a 420 MiB row of tiles against a 64 MiB cache). The cache then
  holds one row of tiles (and an eighth more), when that fits in half of what the feature cache
  leaves, and blocks are aligned to the tile rows (``aligned_rows``), so each tile is decoded
  once per pass (plain detectors only: ``pipeline._plan``);
* the enhanced-feature cache, which spares the networks a second pass over the scene: up to
  M / 2, and only when the features of the whole scene fit in it;
* the working set, everything else: rows per block, raw rows resampled at once, the enhancers'
  tile batches and the RX scoring chunk are all sized from it.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass

MIB = 2**20
#: GDAL's cache never goes below this: the writer needs a few of its 256 x 256 tiles.
MIN_GDAL_CACHE = 8 * MIB
#: Allocations from this size up get their own mapping, returned to the system when freed.
MMAP_THRESHOLD = 4 * MIB
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def map_large_arrays() -> bool:
    """Give every allocation of ``MMAP_THRESHOLD`` or more its own mapping, so a freed array
    leaves the process at once (Linux with glibc; elsewhere nothing). Returns whether it was set.

    glibc raises its mmap threshold to the size of each large block freed, up to 32 MiB, so after
    the first blocks the enhanced path's arrays (a few to 30 MiB each: the block, its strips, the
    networks' layers) come from the heap, which fragments: at ``--memory-mb 256`` on
    1024 x 1024 x 200 the full method peaked at 461-482 MiB that way and at 388 MiB with the fixed
    threshold (``malloc_trim`` between blocks changed nothing). The price is a fresh mapping per
    large array: about 4 % on the full method, 10-20 % on plain RX, whose run is all allocation
    and BLAS, so ``fers detect`` sets it only when the enhancers run. The setting is
    process-wide and permanent, so only processes the engine owns may call it (the CLI), never
    the engine inside QGIS.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


@dataclass(frozen=True)
class MemoryPlan:
    """The shares of one run's budget (bytes); build it with ``for_run``."""

    budget: int
    feature_cache: int = 0  #: bytes of enhanced blocks kept between passes (0 = none kept)
    read_cache: int = 0  #: bytes of GDAL cache that hold one row of the file's tiles (0 = none)
    read_unit_rows: int = 1  #: rows of that row of tiles

    @classmethod
    def for_run(
        cls, memory_mb: int, feature_bytes: int = 0, read_unit_bytes: int = 0, read_unit_rows: int = 1
    ) -> MemoryPlan:
        """The plan for a ``memory_mb`` budget.

        Args:
            memory_mb: the budget M.
            feature_bytes: the size of the whole scene's enhanced features (0 without
                enhancers), cached only when it fits in M / 2.
            read_unit_bytes: bytes of one row of the file's tiles, every band (0: not known);
                the GDAL cache holds it (and an eighth more) when that is more than M / 16 and
                at most half of what the feature cache leaves.
            read_unit_rows: the rows of that row of tiles.
        """
        budget = int(memory_mb) * MIB
        cache = budget // 2 if 0 < feature_bytes <= budget // 2 else 0
        want = int(read_unit_bytes) + int(read_unit_bytes) // 8
        if budget // 16 < want <= (budget - cache) // 2 and read_unit_rows > 1:
            return cls(budget, cache, want, int(read_unit_rows))
        return cls(budget, cache)

    @property
    def gdal_cache(self) -> int:
        return max(MIN_GDAL_CACHE, self.budget // 16, self.read_cache)

    def aligned_rows(self, rows: int) -> int:
        """``rows`` per block, lowered so that blocks start on the rows of tiles the cache holds
        (a multiple of their height, or the largest divisor of it); unchanged without a read
        cache."""
        unit = self.read_unit_rows
        if not self.read_cache or unit <= 1:
            return rows
        if rows >= unit:
            return rows // unit * unit
        return max(d for d in range(1, rows + 1) if unit % d == 0)

    @property
    def working(self) -> int:
        """Bytes for one block and its temporaries (never below a quarter of the budget)."""
        return max(self.budget // 4, self.budget - self.gdal_cache - self.feature_cache)

    def block_rows(self, width: int, bytes_per_pixel: int) -> int:
        """Rows whose working arrays, ``bytes_per_pixel`` per pixel in all, fill the working set."""
        return max(1, self.working // max(1, int(width) * int(bytes_per_pixel)))

    @property
    def raw_chunk(self) -> int:
        """Bytes of full-band float32 rows read at once before resampling to a model's grid (the
        read also holds the raw samples and the product: about twice this while it runs)."""
        return max(MIB, self.working // 16)

    @property
    def enhancer_batch(self) -> int:
        """Bytes the enhancers' activations may take for one batch of tiles."""
        return max(4 * MIB, self.working // 4)

    def score_chunk(self, bands: int) -> int:
        """Pixels RX scores per matrix product (the centred block and its projection)."""
        return max(1024, self.working // 16 // (8 * max(1, int(bands))))


def activation_bytes_per_pixel(bands: int, parts: int) -> int:
    """Bytes the enhancers' activations take per pixel of a tile: twice the estimate
    ``Enhancer.features`` batches tiles by (4 bytes x bands x (2 + 4 per network)), for what the
    networks hold while they run and what torch's CPU allocator keeps after; the memory rows of
    ``bench/speed.py`` check the result end to end."""
    return 4 * int(bands) * (2 + 4 * int(parts)) * 2
