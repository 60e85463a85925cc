"""Compiled CRD kernel: each pixel's ring gathered, weighted, and its ridge system solved, fused.

Why compiled: every pixel has its own weights (they depend on the pixel itself), so nothing can
be slid from a neighbour; each pixel costs one weighted Gram and one Cholesky of a 100-200
square matrix. numba keeps the ring, the Gram and the factor in cache and loops over pixels
without Python in between; ``crd_numpy`` is the batched numpy path for when numba is absent.

Layout: ``x`` is (rows, cols, B) float64 with invalid pixels zeroed and flagged in ``valid``.
The maths (the scaled ridge form, the dual/primal choice, the weight cap) is in ``crd.py``.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from .compiled import back_substitute, cholesky_rows, dot, gram_plus_identity, jit


@jit
def _gather_ring(x, valid, y, r_out, c_out, r_in, c_in, outer, inner, lam, cap, ring):
    """Copy the valid ring pixels of one pixel into ``ring`` rows, each scaled by its weight
    ``1 / sqrt(lam d_i)`` (``d_i`` the squared distance to ``y``, floored so that no scaled
    pixel's squared norm exceeds ``cap``); returns how many there are."""
    ho, wo = outer
    hi, wi = inner
    bands = y.shape[0]
    n = 0
    for rr in range(r_out, r_out + ho):
        in_rows = r_in <= rr < r_in + hi
        for cc in range(c_out, c_out + wo):
            if in_rows and c_in <= cc < c_in + wi:
                continue
            if not valid[rr, cc]:
                continue
            xi = x[rr, cc]
            dist = 0.0
            norm = 0.0
            for b in range(bands):
                v = xi[b]
                diff = v - y[b]
                dist += diff * diff
                norm += v * v
            floor = norm / (lam * cap)
            if dist < floor:
                dist = floor
            scale = 1.0 / math.sqrt(lam * dist) if dist > 0.0 else 0.0
            row = ring[n]
            for b in range(bands):
                row[b] = scale * xi[b]
            n += 1
    return n


@jit
def _score(y, ring, n, dual, ringt, low, sol, res):
    """||residual|| of ``y`` against ``n`` scaled ring pixels (rows of ``ring``)."""
    bands = y.shape[0]
    if dual:  # (I + R^T R) r = y, in band space
        for i in range(n):
            row = ring[i]
            for b in range(bands):
                ringt[b, i] = row[b]
        gram_plus_identity(ringt, bands, n, low)
        for b in range(bands):
            low[bands, b] = y[b]
        if not cholesky_rows(low, bands, 0.0):
            return np.nan
        back_substitute(low, bands, sol)
        return math.sqrt(dot(sol, sol, bands))
    # (I + R R^T) beta = R y, in ring space; residual y - R^T beta
    gram_plus_identity(ring, n, bands, low)
    for i in range(n):
        low[n, i] = dot(ring[i], y, bands)
    if not cholesky_rows(low, n, 0.0):
        return np.nan
    back_substitute(low, n, sol)
    for b in range(bands):
        res[b] = y[b]
    for i in range(n):
        row = ring[i]
        v = sol[i]
        for b in range(bands):
            res[b] -= v * row[b]
    return math.sqrt(dot(res, res, bands))


@jit
def crd_scores(
    x,
    valid,
    rows,
    col0,
    col1,
    outer_rows,
    inner_rows,
    outer_cols,
    inner_cols,
    outer,
    inner,
    lam,
    cap,
    dual,
    min_ring,
    out,
):
    """Fill ``out[r, j - col0]`` for x rows ``rows[r]`` and columns col0 <= j < col1.

    ``outer_rows[r]``/``inner_rows[r]`` are the first x rows of pixel row r's windows and
    ``outer_cols[j]``/``inner_cols[j]`` their first columns (edge-shifted); NaN where the pixel is
    invalid or fewer than ``min_ring`` ring pixels are valid.
    """
    bands = x.shape[2]
    ho, wo = outer
    hi, wi = inner
    n_max = ho * wo - hi * wi
    k = bands if dual else n_max
    ring = np.empty((n_max, bands))
    ringt = np.empty((bands, n_max))
    low = np.empty((k + 1, k))
    sol = np.empty(k)
    res = np.empty(bands)
    for r in range(rows.shape[0]):
        i = rows[r]
        for j in range(col0, col1):
            if not valid[i, j]:
                out[r, j - col0] = np.nan
                continue
            y = x[i, j]
            n = _gather_ring(
                x,
                valid,
                y,
                outer_rows[r],
                outer_cols[j],
                inner_rows[r],
                inner_cols[j],
                outer,
                inner,
                lam,
                cap,
                ring,
            )
            if n < min_ring:
                out[r, j - col0] = np.nan
                continue
            out[r, j - col0] = _score(y, ring, n, dual, ringt, low, sol, res)


def scores(
    x: np.ndarray,
    valid: np.ndarray,
    rows: np.ndarray,
    cols: Tuple[int, int],
    outer_rows: np.ndarray,
    inner_rows: np.ndarray,
    outer_cols: np.ndarray,
    inner_cols: np.ndarray,
    outer: Tuple[int, int],
    inner: Tuple[int, int],
    lam: float,
    cap: float,
    dual: bool,
    min_ring: int,
) -> np.ndarray:
    """float64 (len(rows), cols[1] - cols[0]) CRD scores; see ``crd_scores``."""
    col0, col1 = int(cols[0]), int(cols[1])
    out = np.empty((len(rows), col1 - col0))
    idx = [
        np.ascontiguousarray(a, dtype=np.int64)
        for a in (rows, outer_rows, inner_rows, outer_cols, inner_cols)
    ]
    crd_scores(
        x,
        valid,
        idx[0],
        col0,
        col1,
        *idx[1:],
        (int(outer[0]), int(outer[1])),
        (int(inner[0]), int(inner[1])),
        float(lam),
        float(cap),
        bool(dual),
        int(min_ring),
        out,
    )
    return out
