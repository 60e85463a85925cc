"""Each pixel's ring, built the obvious way: the per-pixel test references of local RX and CRD."""

from __future__ import annotations

from typing import Callable

import numpy as np

from fers_engine.detectors.windows import window_starts


def ring_mask(i: int, j: int, rows: int, cols: int, inner, outer, centred: bool = False) -> np.ndarray:
    """bool (rows, cols): the outer window of pixel (i, j) minus its guard window, both shifted
    inside the image (local RX's edge rule, SPy's), or with ``centred`` both centred on the
    pixel and cut at the image's edges (CRD's rule); ``inner``/``outer`` are (height, width)."""
    (hi, wi), (ho, wo) = inner, outer

    def start(p: int, size: int, length: int) -> int:
        return p - size // 2 if centred else int(window_starts(p, size, length))

    ring = np.zeros((rows + 2 * ho, cols + 2 * wo), bool)  # room for centred windows at edges
    r, c = start(i, ho, rows) + ho, start(j, wo, cols) + wo
    ring[r : r + ho, c : c + wo] = True
    r, c = start(i, hi, rows) + ho, start(j, wi, cols) + wo
    ring[r : r + hi, c : c + wi] = False
    return ring[ho : ho + rows, wo : wo + cols]


def per_pixel(
    cube: np.ndarray,
    valid: np.ndarray,
    inner,
    outer,
    min_ring: int,
    score: Callable[[np.ndarray, np.ndarray], float],
    centred: bool = False,
) -> np.ndarray:
    """(rows, cols) ``score(y, x)`` of every valid pixel y (float64, (B,)) against its valid ring
    pixels x (float64, (B, n)), in a plain Python loop; NaN where the pixel is invalid or its ring
    holds fewer than ``min_ring`` valid pixels. ``centred``: ``ring_mask``'s edge rule."""
    _, rows, cols = cube.shape
    out = np.full((rows, cols), np.nan)
    for i in range(rows):
        for j in range(cols):
            if not valid[i, j]:
                continue
            x = cube[:, ring_mask(i, j, rows, cols, inner, outer, centred) & valid].astype(np.float64)
            if x.shape[1] >= min_ring:
                out[i, j] = score(cube[:, i, j].astype(np.float64), x)
    return out
