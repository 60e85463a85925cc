"""The batched numpy CRD path, for when numba is absent (QGIS does not ship it).

Same maths and arguments as ``crd_kernel.scores`` (see ``crd.py``): pixels go in batches whose
rings are gathered as (pixels, n, B) arrays, invalid ring pixels as zero rows (a zero row adds
nothing to the band-space Gram and decouples from the ring-space system, so it drops out
exactly as the kernel's skipping does), and each batch is one stacked Gram and one stacked
``np.linalg.solve``.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .batched_linalg import single_threaded_blas

#: Budget (bytes) of one batch's gathered rings and matrices.
BATCH_BYTES = 32 * 2**20


def ring_indices(
    outer_rows: np.ndarray,
    outer_cols: np.ndarray,
    inner_rows: np.ndarray,
    inner_cols: np.ndarray,
    outer: Tuple[int, int],
    inner: Tuple[int, int],
) -> Tuple[np.ndarray, np.ndarray]:
    """(rows, cols), each (pixels, n): every pixel's ring in row-major window order.

    The guard window always lies inside the outer one, so every ring has exactly
    n = outer area - inner area members and the boolean selection reshapes cleanly.
    """
    (ho, wo), (hi, wi) = outer, inner
    rr = outer_rows[:, None] + np.repeat(np.arange(ho), wo)[None, :]
    cc = outer_cols[:, None] + np.tile(np.arange(wo), ho)[None, :]
    guard = (
        (rr >= inner_rows[:, None])
        & (rr < inner_rows[:, None] + hi)
        & (cc >= inner_cols[:, None])
        & (cc < inner_cols[:, None] + wi)
    )
    count = ho * wo - hi * wi
    keep = ~guard
    return rr[keep].reshape(-1, count), cc[keep].reshape(-1, count)


def _batch_scores(x, valid, pix_rows, pix_cols, ring_rows, ring_cols, lam, cap, dual, min_ring):
    """Scores of one batch of pixels (float64, NaN where invalid or the ring is too small)."""
    y = x[pix_rows, pix_cols]  # (P, B)
    ring = x[ring_rows, ring_cols]  # (P, n, B), a copy
    usable = valid[ring_rows, ring_cols]
    diff = ring - y[:, None, :]
    dist = np.einsum("pnb,pnb->pn", diff, diff)
    norm = np.einsum("pnb,pnb->pn", ring, ring)
    dist = np.maximum(dist, norm / (lam * cap))
    with np.errstate(divide="ignore"):
        scale = np.where(usable & (dist > 0), 1.0 / np.sqrt(lam * dist), 0.0)
    ring *= scale[..., None]
    if dual:
        system = np.matmul(ring.transpose(0, 2, 1), ring)  # (P, B, B)
        system[:, np.arange(system.shape[1]), np.arange(system.shape[1])] += 1.0
        residual = np.linalg.solve(system, y[..., None])[..., 0]
    else:
        system = np.matmul(ring, ring.transpose(0, 2, 1))  # (P, n, n)
        system[:, np.arange(system.shape[1]), np.arange(system.shape[1])] += 1.0
        beta = np.linalg.solve(system, np.matmul(ring, y[..., None]))
        residual = y - np.matmul(ring.transpose(0, 2, 1), beta)[..., 0]
    score = np.sqrt(np.einsum("pb,pb->p", residual, residual))
    score[(usable.sum(axis=1) < min_ring) | ~valid[pix_rows, pix_cols]] = np.nan
    return score


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
    """float64 (len(rows), cols[1] - cols[0]) CRD scores; arguments as ``crd_kernel.scores``."""
    col0, col1 = int(cols[0]), int(cols[1])
    width = col1 - col0
    bands = x.shape[2]
    n = outer[0] * outer[1] - inner[0] * inner[1]
    k = bands if dual else n
    batch = max(1, BATCH_BYTES // (8 * (3 * n * bands + 2 * k * k + 4 * n)))
    rows = np.asarray(rows)
    pix_rows = np.repeat(rows, width)
    pix_cols = np.tile(np.arange(col0, col1), len(rows))
    pix_outer = np.repeat(np.asarray(outer_rows), width)
    pix_inner = np.repeat(np.asarray(inner_rows), width)
    out = np.empty(pix_rows.size)
    with single_threaded_blas():
        for a in range(0, pix_rows.size, batch):
            b = min(pix_rows.size, a + batch)
            ring_rows, ring_cols = ring_indices(
                pix_outer[a:b],
                outer_cols[pix_cols[a:b]],
                pix_inner[a:b],
                inner_cols[pix_cols[a:b]],
                outer,
                inner,
            )
            out[a:b] = _batch_scores(
                x, valid, pix_rows[a:b], pix_cols[a:b], ring_rows, ring_cols, lam, cap, dual, min_ring
            )
    return out.reshape(len(rows), width)
