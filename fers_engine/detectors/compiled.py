"""numba plumbing and the compiled small-matrix algebra shared by the detector kernels.

numba is optional (``pip install 'fers-hsi[fast]'``): ``available()`` says whether it imported, and
every caller keeps a numpy path for when it did not. Without numba the decorated functions stay
plain Python and are never called on real data.

The algebra works on one small matrix at a time, in place, row-major lower triangles: at 100 to
200 unknowns a hand-written factorisation that keeps its rows in cache beats calling LAPACK once
per pixel (``bench/cholesky.py``), and everything stays inside one compiled loop over pixels.
"""

from __future__ import annotations

import math

import numpy as np

try:  # optional accelerator
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None  # type: ignore[assignment]

#: Reassociation lets dot products vectorise; no 'nnan'/'ninf', so NaN tests keep working.
_FLAGS = dict(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz", "arcp"})


def available() -> bool:
    """True when numba imported, so the compiled kernels can run (tests switch it off to run
    the numpy paths)."""
    return numba is not None


def jit(fn):
    """Compile with the kernels' flags; without numba the plain function is kept (and unused)."""
    return numba.njit(**_FLAGS)(fn) if numba is not None else fn


@jit
def dot(x, y, n):
    """Sum of x[t] * y[t] for t < n."""
    acc = 0.0
    for t in range(n):
        acc += x[t] * y[t]
    return acc


@jit
def gram_plus_identity(src, m, length, low):
    """``low[a, b] = src[a, :length] . src[b, :length] + (a == b)`` for b <= a < m.

    Blocks of four rows by two: each pass over ``length`` loads six values for eight
    multiply-adds (measured ~2x the speed of one row against four at 100-200 rows). Within a
    diagonal block a few entries above the diagonal are written too; nothing reads them.
    """
    a = 0
    while a + 4 <= m:
        r0 = src[a]
        r1 = src[a + 1]
        r2 = src[a + 2]
        r3 = src[a + 3]
        for b in range(0, a + 4, 2):
            q0 = src[b]
            q1 = src[b + 1]
            s00 = 0.0
            s01 = 0.0
            s10 = 0.0
            s11 = 0.0
            s20 = 0.0
            s21 = 0.0
            s30 = 0.0
            s31 = 0.0
            for t in range(length):
                u = q0[t]
                v = q1[t]
                x = r0[t]
                s00 += x * u
                s01 += x * v
                x = r1[t]
                s10 += x * u
                s11 += x * v
                x = r2[t]
                s20 += x * u
                s21 += x * v
                x = r3[t]
                s30 += x * u
                s31 += x * v
            low[a, b] = s00
            low[a, b + 1] = s01
            low[a + 1, b] = s10
            low[a + 1, b + 1] = s11
            low[a + 2, b] = s20
            low[a + 2, b + 1] = s21
            low[a + 3, b] = s30
            low[a + 3, b + 1] = s31
        a += 4
    while a < m:
        ra = src[a]
        for b in range(a + 1):
            low[a, b] = dot(ra, src[b], length)
        a += 1
    for a in range(m):
        low[a, a] += 1.0


@jit
def cholesky_rows(low, k, rcond):
    """Factor rows 0..k-1 of ``low`` in place (lower, row-major) and reduce row k, the
    augmented row, to ``L^-1 d``; False when a pivot is not positive or the squared pivots
    spread beyond ``rcond`` (the caller then takes a safer route)."""
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
                rq[j] = (rq[j] - dot(rq, rj, j)) / rj[j]
            if ii < k:
                piv = rq[ii] - dot(rq, rq, ii)
                if not piv > 0.0:
                    return False
                pmin = min(pmin, piv)
                pmax = max(pmax, piv)
                rq[ii] = math.sqrt(piv)
        i += step
    return pmin > rcond * pmax


@jit
def back_substitute(low, k, out):
    """``out = L^-T u`` where rows 0..k-1 of ``low`` hold L and row k holds u (as
    ``cholesky_rows`` leaves them): with ``u = L^-1 d`` this solves ``L L^T out = d``.

    Column-oriented so that each step reads one contiguous row of L.
    """
    for j in range(k):
        out[j] = low[k, j]
    for j in range(k - 1, -1, -1):
        row = low[j]
        v = out[j] / row[j]
        out[j] = v
        for i in range(j):
            out[i] -= row[i] * v
