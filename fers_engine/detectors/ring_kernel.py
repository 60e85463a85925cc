"""Compiled local-RX kernel: ring moments and one Cholesky per pixel, fused, with numba.

Why compiled: local RX needs, for every pixel, the exact covariance of its own ring and one
factorisation of it. In numpy every step is a separate pass over 80 KB matrices (100 bands) and
the factorisation goes through LAPACK one small matrix at a time, so memory traffic and call
overhead, not arithmetic, set the pace. Here each pixel's ring moments are slid from its
neighbour's, the centred covariance and the pixel's offset are built in one pass, and the
factorisation is ``compiled.cholesky_rows``, faster than LAPACK's ``dpotrf`` at this size
(``bench/cholesky.py``).

Layout: ``z`` is (rows, cols, s) float64 with ``z = [1, y]`` (0 where masked); the moments
``sum z z^T`` are kept as packed lower triangles (``s (s + 1) / 2`` values, row-major), per column
for the vertical window sums and per pixel for the box sums. Semantics (windows, ring, scores,
when a ring is left to the caller) are those of ``lrx.py``.

numba is optional: ``compiled.available()`` says whether it imported; ``lrx.py`` keeps its numpy
path (``lrx_numpy.py``).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .compiled import cholesky_rows, dot, jit


@jit
def _add_outer(v, e, leave):
    """Packed ``v += e e^T - leave leave^T``, or ``v += e e^T`` when ``leave`` is empty."""
    s = e.shape[0]
    p = 0
    if leave.shape[0] == 0:
        for a in range(s):
            ea = e[a]
            for b in range(a + 1):
                v[p + b] += ea * e[b]
            p += a + 1
    else:
        for a in range(s):
            ea = e[a]
            la = leave[a]
            for b in range(a + 1):
                v[p + b] += ea * e[b] - la * leave[b]
            p += a + 1


@jit
def _vertical_sums(vert, z, top, height, col0, prev):
    """``vert[c]`` = packed sum of z z^T over rows [top, top + height) of column col0 + c.

    A window one row lower than ``prev`` is slid (one row in, one out); an unmoved one is kept;
    anything else (``prev`` < 0: the first row of a call) is summed afresh.
    """
    if top == prev:
        return
    none = z[0, 0, :0]
    if prev >= 0 and top == prev + 1:
        for c in range(vert.shape[0]):
            _add_outer(vert[c], z[top + height - 1, col0 + c], z[prev, col0 + c])
        return
    vert[:] = 0.0
    for c in range(vert.shape[0]):
        for q in range(top, top + height):
            _add_outer(vert[c], z[q, col0 + c], none)


@jit
def _box_sums(box, vert, start, width, prev):
    """``box`` = sum of ``vert[start:start + width]``, slid from the box at ``prev`` when it
    moved one column right (edge windows stay put)."""
    if start == prev:
        return
    if prev >= 0 and start == prev + 1:
        enter = vert[start + width - 1]
        leave = vert[prev]
        for p in range(box.shape[0]):
            box[p] += enter[p] - leave[p]
        return
    box[:] = 0.0
    for c in range(start, start + width):
        v = vert[c]
        for p in range(box.shape[0]):
            box[p] += v[p]


@jit
def _ring_score(bo, bi, y, low, s1, rcond):
    """(score, ok) of pixel ``y`` = [1, x] against the ring moments ``bo - bi`` (packed).

    score = (n - 1) (x - m)^T S^-1 (x - m) with S the centred ring scatter, i.e. the squared
    Mahalanobis distance under the unbiased ring covariance; NaN with ok when the ring holds
    fewer than 2 pixels, NaN without ok when the factorisation is not trustworthy.
    """
    s = y.shape[0]
    k = s - 1
    n = bo[0] - bi[0]
    if n < 2.0:
        return np.nan, True
    inv_n = 1.0 / n
    for a in range(1, s):
        q = a * (a + 1) // 2
        s1[a] = bo[q] - bi[q]
    for a in range(1, s):
        q = a * (a + 1) // 2
        row = low[a - 1]
        f = s1[a] * inv_n
        for b in range(1, a + 1):
            row[b - 1] = (bo[q + b] - bi[q + b]) - f * s1[b]
    last = low[k]
    for a in range(1, s):
        last[a - 1] = y[a] - s1[a] * inv_n
    if not cholesky_rows(low, k, rcond):
        return np.nan, False
    return (n - 1.0) * dot(last, last, k), True


@jit
def ring_scores(
    z, rows, col0, col1, outer_rows, inner_rows, outer_cols, inner_cols, outer, inner, strip, rcond, out, ok
):
    """Fill ``out[r, j - col0]`` / ``ok[r, j - col0]`` for z rows ``rows[r]`` and columns
    col0 <= j < col1.

    ``outer_rows[r]``/``inner_rows[r]`` are the first z rows of pixel row r's windows and
    ``outer_cols[j]``/``inner_cols[j]`` their first columns (edge-shifted, as in ``lrx.py``);
    ``outer``/``inner`` are (height, width). Columns go in strips of ``strip`` outputs so the
    per-column sums stay small; rows within a strip slide their vertical sums.
    """
    s = z.shape[2]
    k = s - 1
    size = s * (s + 1) // 2
    ho, wo = outer
    hi, wi = inner
    low = np.empty((k + 1, max(k, 1)))
    s1 = np.empty(s)
    bo = np.empty(size)
    bi = np.empty(size)
    for c0 in range(col0, col1, strip):
        c1 = min(col1, c0 + strip)
        in0 = outer_cols[c0]
        ncols = outer_cols[c1 - 1] + wo - in0
        vo = np.empty((ncols, size))
        vi = np.empty((ncols, size))
        prev_o = -1
        prev_i = -1
        for r in range(rows.shape[0]):
            _vertical_sums(vo, z, outer_rows[r], ho, in0, prev_o)
            _vertical_sums(vi, z, inner_rows[r], hi, in0, prev_i)
            prev_o = outer_rows[r]
            prev_i = inner_rows[r]
            po = -1
            pi = -1
            for j in range(c0, c1):
                _box_sums(bo, vo, outer_cols[j] - in0, wo, po)
                _box_sums(bi, vi, inner_cols[j] - in0, wi, pi)
                po = outer_cols[j] - in0
                pi = inner_cols[j] - in0
                y = z[rows[r], j]
                if y[0] == 0.0:
                    out[r, j - col0] = np.nan
                    ok[r, j - col0] = True
                else:
                    out[r, j - col0], ok[r, j - col0] = _ring_score(bo, bi, y, low, s1, rcond)


def strip_width(size: int, outer_w: int, width: int, budget: int) -> int:
    """Output columns per strip so that the two per-column sum arrays fit ``budget`` bytes."""
    per_col = 2 * 8 * size * (size + 1) // 2
    return int(min(width, max(8, budget // per_col - outer_w + 1)))


def scores(
    z: np.ndarray,
    rows: np.ndarray,
    cols: Tuple[int, int],
    outer_rows: np.ndarray,
    inner_rows: np.ndarray,
    outer_cols: np.ndarray,
    inner_cols: np.ndarray,
    outer: Tuple[int, int],
    inner: Tuple[int, int],
    rcond: float,
    budget: int,
) -> Tuple[np.ndarray, np.ndarray]:
    """(scores float64, ok bool), each (len(rows), cols[1] - cols[0]); see ``ring_scores``.

    ``outer_cols``/``inner_cols`` cover every column of ``z``; only [cols[0], cols[1]) is scored.
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    col0, col1 = int(cols[0]), int(cols[1])
    shape = (len(rows), col1 - col0)
    out = np.empty(shape)
    ok = np.empty(shape, dtype=np.bool_)
    idx = [
        np.ascontiguousarray(a, dtype=np.int64)
        for a in (rows, outer_rows, inner_rows, outer_cols, inner_cols)
    ]
    strip = strip_width(z.shape[2], outer[1], col1 - col0, budget)
    ring_scores(
        z,
        idx[0],
        col0,
        col1,
        *idx[1:],
        (int(outer[0]), int(outer[1])),
        (int(inner[0]), int(inner[1])),
        strip,
        float(rcond),
        out,
        ok,
    )
    return out, ok
