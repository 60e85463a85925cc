"""Row blocks sized from a memory budget, with halos for local (windowed) detectors.

Scenes are streamed in full-width row blocks so memory stays flat whatever the image height.
Local detectors need neighbours above and below each block: ``iter_row_blocks`` reads a halo
around each core and the caller keeps only the core rows of its result, so block borders never
show in the output.
"""

from __future__ import annotations

from typing import Iterator, Tuple

DEFAULT_BUDGET_BYTES = 256 * 1024 * 1024


def default_block_rows(
    width: int,
    bands: int,
    bytes_per_value: int = 4,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    copies: int = 4,
) -> int:
    """Rows per block so that ``copies`` working copies of a block fit in ``budget_bytes``.

    ``copies`` accounts for the raw read, the float32 block and the temporaries a detector makes;
    the answer is at least 1 row, so a huge width degrades to row-by-row rather than failing.
    """
    if width < 1 or bands < 1 or bytes_per_value < 1 or copies < 1:
        raise ValueError("width, bands, bytes_per_value and copies must all be >= 1")
    per_row = int(width) * int(bands) * int(bytes_per_value) * int(copies)
    return max(1, int(budget_bytes) // per_row)


def iter_row_blocks(height: int, block_rows: int, halo: int = 0) -> Iterator[Tuple[int, int, int, int]]:
    """Yield ``(core_row0, core_row1, read_row0, read_row1)`` covering ``0..height`` once.

    Cores tile the image without overlap; the read range adds ``halo`` rows on each side,
    clamped at the image edges. The core sits at ``core_row0 - read_row0`` inside the read block.
    """
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    if halo < 0:
        raise ValueError(f"halo must be >= 0, got {halo}")
    for core0 in range(0, int(height), int(block_rows)):
        core1 = min(core0 + int(block_rows), int(height))
        yield core0, core1, max(0, core0 - halo), min(int(height), core1 + halo)


def count_blocks(height: int, block_rows: int) -> int:
    """How many blocks ``iter_row_blocks`` yields: for progress fractions."""
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    return -(-int(height) // int(block_rows))
