"""Dual-window geometry shared by the windowed detectors (local RX, CRD).

Each pixel is compared with the *ring* between an inner guard window and an outer window, both
centred on it. Local RX's edge rule (SPy's ``inner_outer_window_mask_creator``): windows never
leave the image; where a window would cross an edge it is shifted back inside at full size, so
every ring holds (outer area - inner area) pixels, the guard window always contains the pixel itself and
always lies inside the outer window. CRD keeps its windows centred instead (``crd.py``), the
outside counting as nodata, and reads only the rows they reach (``halo_rows(..., centred=True)``),
whatever the image's size. Row numbers here are absolute image rows, so a detector fed
row blocks with the halo ``halo_rows`` names gives the same result as on the whole image.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from .stats import usable_pixels

Window = Union[int, Sequence[int]]


def window_shape(window: Window, name: str) -> Tuple[int, int]:
    """(height, width) of a window given as an odd int or an (h, w) pair of odd ints."""
    if isinstance(window, (int, np.integer)):
        pair = (int(window), int(window))
    else:
        given = tuple(int(v) for v in window)
        if len(given) != 2:
            raise InputError(f"{name} window must be an int or (height, width), got {window!r}")
        pair = (given[0], given[1])
    if min(pair) < 1 or pair[0] % 2 == 0 or pair[1] % 2 == 0:
        raise InputError(f"{name} window sizes must be odd and positive, got {pair}")
    return pair


def check_windows(inner: Window, outer: Window) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Validated (inner, outer) shapes: odd, and inner strictly smaller in both directions."""
    inner_hw, outer_hw = window_shape(inner, "inner"), window_shape(outer, "outer")
    if inner_hw[0] >= outer_hw[0] or inner_hw[1] >= outer_hw[1]:
        raise InputError(f"inner window {inner_hw} must be smaller than outer window {outer_hw}")
    return inner_hw, outer_hw


def ring_size(inner: Window, outer: Window) -> int:
    """Pixels in every ring (outer area minus guard area), edges included."""
    (hi, wi), (ho, wo) = check_windows(inner, outer)
    return ho * wo - hi * wi


def window_starts(positions, size: int, length: int):
    """First index of a ``size`` window centred on each position, shifted inside [0, length)."""
    return np.clip(np.asarray(positions) - size // 2, 0, length - size)


def halo_rows(
    core_row0: int, core_row1: int, image_height: int, outer: Window, centred: bool = False
) -> Tuple[int, int]:
    """Rows [row0, row1) a streaming reader must supply to score core rows [core_row0, core_row1).

    At most ``outer // 2`` rows either side; fewer near the image's top and bottom, where the
    shifted windows stay inside the image. ``centred`` (CRD's edge rule): the rows the centred
    windows reach inside the image, whatever the image's size.
    """
    height = window_shape(outer, "outer")[0]
    if not 0 <= core_row0 < core_row1 <= image_height:
        raise InputError(f"core rows [{core_row0}, {core_row1}) outside image of {image_height}")
    if centred:
        return max(0, core_row0 - height // 2), min(image_height, core_row1 + height // 2)
    if height > image_height:
        raise InputError(f"outer window height {height} exceeds image height {image_height}")
    first = window_starts(core_row0, height, image_height)
    last = window_starts(core_row1 - 1, height, image_height) + height
    return int(first), int(last)


class BlockRows(NamedTuple):
    """The rows of a block a windowed detector needs, validated (see ``needed_rows``)."""

    data: np.ndarray  # (B, rows, cols): image rows [row0, row0 + rows) of the block
    mask: np.ndarray  # bool (rows, cols): valid and finite in every band
    row0: int
    inner: Tuple[int, int]
    outer: Tuple[int, int]


def needed_rows(
    block: np.ndarray,
    valid,
    block_row0: int,
    core_row0: int,
    core_row1: int,
    image_height: int,
    inner: Window,
    outer: Window,
    centred: bool = False,
) -> BlockRows:
    """Validate a windowed detector's row-block call and keep only the rows it needs.

    The block must cover ``halo_rows(core_row0, core_row1, image_height, outer, centred)`` and,
    with shifted windows, the image must be at least as wide as the outer window (columns are
    always whole). Only those rows are kept, so whatever a detector derives from the block
    (local RX's whitening) does not depend on how far the caller padded it.
    """
    block = np.asarray(block)
    if block.ndim != 3:
        raise InputError(f"expected a bands-first block (B, rows, cols), got shape {block.shape}")
    inner_hw, outer_hw = check_windows(inner, outer)
    _, rows, width = block.shape
    if outer_hw[1] > width and not centred:
        raise InputError(f"outer window width {outer_hw[1]} exceeds image width {width}")
    need0, need1 = halo_rows(core_row0, core_row1, image_height, outer_hw, centred)
    if need0 < block_row0 or need1 > block_row0 + rows:
        raise InputError(
            f"block rows [{block_row0}, {block_row0 + rows}) do not cover the rows "
            f"[{need0}, {need1}) needed for core rows [{core_row0}, {core_row1})"
        )
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (rows, width):
            raise InputError(f"valid mask shape {valid.shape} does not match block {(rows, width)}")
    sub = slice(need0 - block_row0, need1 - block_row0)
    data = block[:, sub]
    return BlockRows(
        data, usable_pixels(data, None if valid is None else valid[sub]), need0, inner_hw, outer_hw
    )


def score_by_row_chunks(
    cube: np.ndarray,
    valid,
    outer_hw: Tuple[int, int],
    row_chunk,
    reporter,
    score_block,
    centred: bool = False,
) -> np.ndarray:
    """float32 (H, W) scores of a whole (B, H, W) cube from a windowed detector's block function.

    ``score_block(block, valid, block_row0, core_row0, core_row1, reporter)`` scores core rows
    [core_row0, core_row1) from a block that starts at image row block_row0, reporting into the
    given sub-range of ``reporter``; it is called per ``row_chunk`` output rows (default 64) with
    exactly the halo those rows need, so memory stays bounded. ``centred``: CRD's edge rule, as in
    ``halo_rows``.
    """
    _, height, width = cube.shape
    if (outer_hw[0] > height or outer_hw[1] > width) and not centred:
        raise InputError(f"outer window {outer_hw} is larger than the image {(height, width)}")
    chunk = int(row_chunk) if row_chunk else 64
    if chunk < 1:
        raise InputError(f"row_chunk must be at least 1, got {row_chunk}")
    out = np.empty((height, width), dtype=np.float32)
    for r0 in range(0, height, chunk):
        r1 = min(height, r0 + chunk)
        h0, h1 = halo_rows(r0, r1, height, outer_hw, centred)
        out[r0:r1] = score_block(
            cube[:, h0:h1],
            None if valid is None else valid[h0:h1],
            h0,
            r0,
            r1,
            reporter.stage(r0 / height, r1 / height),
        )
        reporter.step(r1 / height)
    return out
