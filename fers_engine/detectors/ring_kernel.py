"""Compiled local-RX kernel: ring moments and one Cholesky per pixel, fused, with numba.

Why compiled: local RX needs, for every pixel, the exact covariance of its own ring and one
factorisation of it. In numpy every step is a separate pass over 80 KB matrices (100 bands) and
the factorisation goes through LAPACK one small matrix at a time, so memory traffic and call
overhead, not arithmetic, set the pace. Here each pixel's ring moments are slid from its
neighbour's, the centred covariance and the pixel's offset are built in one pass, and the
factorisation is a row-wise Cholesky that works four rows at a time (one load of a finished row
serves four dot products), faster than LAPACK's ``dpotrf`` at this size (``bench/cholesky.py``).

Layout: ``z`` is (rows, cols, s) float64 with ``z = [1, y]`` (0 where masked); the moments
``sum z z^T`` are kept as packed lower triangles (``s (s + 1) / 2`` values, row-major), per column
for the vertical window sums and per pixel for the box sums. Semantics (windows, ring, scores,
when a ring is left to the caller) are those of ``lrx.py``.

numba is optional: ``available()`` says whether it imported; ``lrx.py`` keeps its numpy path.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

try:  # optional accelerator
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None

#: Reassociation lets dot products vectorise; no 'nnan'/'ninf', so NaN tests keep working.
_FLAGS = dict(nogil=True, cache=True, error_model="numpy",
              fastmath={"reassoc", "contract", "nsz", "arcp"})


def available() -> bool:
    """True when numba imported, so the compiled kernel can run."""
    return numba is not None


def _jit(fn):
    """Compile with the kernel's flags; without numba the plain function is kept (and unused)."""
    return numba.njit(**_FLAGS)(fn) if numba is not None else fn


@_jit
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


@_jit
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


@_jit
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


@_jit
def _dot(x, y, n):
    acc = 0.0
    for t in range(n):
        acc += x[t] * y[t]
    return acc


@_jit
def _cholesky_rows(low, k, rcond):
    """Factor rows 0..k-1 of ``low`` in place (lower, row-major) and reduce row k, the
    augmented row, to ``L^-1 d``; False when a pivot is not positive or the squared pivots
    spread beyond ``rcond`` (the caller then takes the pseudo-inverse route)."""
    rows = k + 1
    pmin = np.inf
    pmax = 0.0
    i = 0
    while i < rows:
        step = 4 if i + 4 <= rows else 1
        r0 = low[i]
        r1 = low[i + 1] if step == 4 else r0
        r2 = low[i + 2] if step == 4 else r0
        r3 = low[i + 3] if step == 4 else r0
        for j in range(min(i, k)):  # columns left of this block: four dot products per load
            rj = low[j]
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for t in range(j):
                y = rj[t]
                s0 += r0[t] * y
                s1 += r1[t] * y
                s2 += r2[t] * y
                s3 += r3[t] * y
            inv = 1.0 / rj[j]
            r0[j] = (r0[j] - s0) * inv
            if step == 4:
                r1[j] = (r1[j] - s1) * inv
                r2[j] = (r2[j] - s2) * inv
                r3[j] = (r3[j] - s3) * inv
        for q in range(step):  # the block's own triangle, row by row
            ii = i + q
            rq = low[ii]
            for j in range(i, min(ii, k)):
                rj = low[j]
                rq[j] = (rq[j] - _dot(rq, rj, j)) / rj[j]
            if ii < k:
                piv = rq[ii] - _dot(rq, rq, ii)
                if not piv > 0.0:
                    return False
                pmin = min(pmin, piv)
                pmax = max(pmax, piv)
                rq[ii] = math.sqrt(piv)
        i += step
    return pmin > rcond * pmax


@_jit
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
    if not _cholesky_rows(low, k, rcond):
        return np.nan, False
    return (n - 1.0) * _dot(last, last, k), True


@_jit
def ring_scores(z, rows, outer_rows, inner_rows, outer_cols, inner_cols, outer, inner, strip,
                rcond, out, ok):
    """Fill ``out[r, j]`` / ``ok[r, j]`` for z rows ``rows[r]`` and every column j.

    ``outer_rows[r]``/``inner_rows[r]`` are the first z rows of pixel row r's windows and
    ``outer_cols[j]``/``inner_cols[j]`` their first columns (edge-shifted, as in ``lrx.py``);
    ``outer``/``inner`` are (height, width). Columns go in strips of ``strip`` outputs so the
    per-column sums stay small; rows within a strip slide their vertical sums.
    """
    width = z.shape[1]
    s = z.shape[2]
    k = s - 1
    size = s * (s + 1) // 2
    ho, wo = outer
    hi, wi = inner
    low = np.empty((k + 1, max(k, 1)))
    s1 = np.empty(s)
    bo = np.empty(size)
    bi = np.empty(size)
    for c0 in range(0, width, strip):
        c1 = min(width, c0 + strip)
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
                    out[r, j] = np.nan
                    ok[r, j] = True
                else:
                    out[r, j], ok[r, j] = _ring_score(bo, bi, y, low, s1, rcond)


def strip_width(size: int, outer_w: int, width: int, budget: int) -> int:
    """Output columns per strip so that the two per-column sum arrays fit ``budget`` bytes."""
    per_col = 2 * 8 * size * (size + 1) // 2
    return int(min(width, max(8, budget // per_col - outer_w + 1)))


def scores(z: np.ndarray, rows: np.ndarray, outer_rows: np.ndarray, inner_rows: np.ndarray,
           outer_cols: np.ndarray, inner_cols: np.ndarray, outer: Tuple[int, int],
           inner: Tuple[int, int], rcond: float, budget: int) -> Tuple[np.ndarray, np.ndarray]:
    """(scores float64, ok bool), each (len(rows), cols); see ``ring_scores``."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    shape = (len(rows), z.shape[1])
    out = np.empty(shape)
    ok = np.empty(shape, dtype=np.bool_)
    idx = [np.ascontiguousarray(a, dtype=np.int64)
           for a in (rows, outer_rows, inner_rows, outer_cols, inner_cols)]
    strip = strip_width(z.shape[2], outer[1], z.shape[1], budget)
    ring_scores(z, *idx, (int(outer[0]), int(outer[1])), (int(inner[0]), int(inner[1])), strip,
                float(rcond), out, ok)
    return out, ok
