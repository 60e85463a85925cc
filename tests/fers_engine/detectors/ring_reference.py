"""Each pixel's ring, built the obvious way: the per-pixel test references of local RX and CRD."""

from __future__ import annotations

from typing import Callable

import numpy as np

from fers_engine.detectors.windows import window_starts


def ring_mask(i: int, j: int, rows: int, cols: int, inner, outer) -> np.ndarray:
    """bool (rows, cols): the outer window of pixel (i, j) minus its guard window, both shifted
    inside the image (SPy's edge rule); ``inner``/``outer`` are (height, width)."""
    (hi, wi), (ho, wo) = inner, outer
    ring = np.zeros((rows, cols), bool)
    r, c = window_starts(i, ho, rows), window_starts(j, wo, cols)
    ring[r : r + ho, c : c + wo] = True
    r, c = window_starts(i, hi, rows), window_starts(j, wi, cols)
    ring[r : r + hi, c : c + wi] = False
    return ring


def per_pixel(
    cube: np.ndarray,
    valid: np.ndarray,
    inner,
    outer,
    min_ring: int,
    score: Callable[[np.ndarray, np.ndarray], float],
) -> np.ndarray:
    """(rows, cols) ``score(y, x)`` of every valid pixel y (float64, (B,)) against its valid ring
    pixels x (float64, (B, n)), in a plain Python loop; NaN where the pixel is invalid or its ring
    holds fewer than ``min_ring`` valid pixels."""
    _, rows, cols = cube.shape
    out = np.full((rows, cols), np.nan)
    for i in range(rows):
        for j in range(cols):
            if not valid[i, j]:
                continue
            x = cube[:, ring_mask(i, j, rows, cols, inner, outer) & valid].astype(np.float64)
            if x.shape[1] >= min_ring:
                out[i, j] = score(cube[:, i, j].astype(np.float64), x)
    return out
