"""The numpy local-RX kernels: the path taken without numba, and the pseudo-inverse route for
singular rings that both paths share.

Semantics are those of ``lrx.py`` (windows, whitened lifted pixels ``z = [1, W^T (x - shift)]``,
scores). Full mode (the ring's own mean and covariance): ring moments are window sums of
``z z^T``: each column's vertical window sum slides down one row by a rank-2 update, outer boxes
come from a running sum over columns, guard boxes from a batched Gram of their pixels, and one
batched LAPACK Cholesky per row of ``[[n, S1^T, 1], [S1, S2, y], [1, y^T, BIG]]`` gives the
score: eliminating the count pivot leaves the ring covariance (times n - 1) and ``y - mean``, so
the last row of the factor holds ``L^-1 (y - mean)`` and the score is its squared norm. Rings
that fail (singular, or pivots spread beyond ``rcond``) are redone in band space with the eigen
pseudo-inverse of global RX. Fixed-covariance mode (the ring's mean only): box sums from an
integral image, then Euclidean distances in the whitened space.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from .batched_linalg import cholesky_or_nan, pinv_forms, single_threaded_blas
from .parallel import pixel_chunks, pixels_per_chunk, run_chunks
from .windows import halo_rows, window_starts

#: Budget (bytes) of the per-row matrices of one column strip. Small strips keep the working
#: set in cache, which measured faster than the wider strips' smaller column halo.
STRIP_BYTES = 4 * 2**20
#: Budget (bytes) of the integral image of one row group in the fixed-covariance mode.
GROUP_BYTES = 32 * 2**20
#: Pixels whose ring matrices ``ring_moments`` gathers at once (bounds its memory).
GATHER_PIXELS = 256
#: Corner of the augmented matrix: large enough that it never limits positive-definiteness.
_BIG = 1e300


def work_per_pixel(size: int, ring: int) -> float:
    """Multiply-adds per pixel of full-mode local RX on lifted pixels of ``size`` = 1 + k values
    (for chunk sizes, either path): the ring covariance built from packed sums and slid (~4
    packed triangles) and its Cholesky; a ring of no more pixels than dimensions is singular and
    takes the pseudo-inverse route (a gathered Gram and an eigen solve)."""
    cost = 4.0 * size * size / 2 + size**3 / 6
    if ring <= size - 1:
        cost += ring * size * size + 10.0 * size**3
    return cost


def _runs(cols: np.ndarray, size: int, width: int) -> List[Tuple[int, int, int, int]]:
    """Split columns into runs (j0, j1, start, step) whose window starts are start + step * t.

    Starts are constant (step 0) along a shifted edge and consecutive (step 1) inside, so box
    sums over a run are plain slices or broadcasts instead of gathers.
    """
    starts = window_starts(cols, size, width)
    runs = []
    j = 0
    while j < cols.size:
        step = int(starts[j + 1] - starts[j]) if j + 1 < cols.size else 1
        end = j + 1
        while end < cols.size and starts[end] - starts[end - 1] == step:
            end += 1
        runs.append((j, end, int(starts[j]), step))
        j = end
    return runs


def _take(a: np.ndarray, start: int, step: int, count: int) -> np.ndarray:
    """``a[start + step * t]`` for t < count, as a view (slice or broadcast)."""
    if step == 1:
        return a[start : start + count]
    return np.broadcast_to(a[start], (count,) + a.shape[1:])


def ring_forms(aug: np.ndarray, rcond: float, unwhiten: np.ndarray) -> np.ndarray:
    """Scores from augmented ring matrices ``[[n, S1^T, 1], [S1, S2, y], [1, y^T, BIG]]``.

    NaN where the ring holds fewer than 2 pixels. A ring of n <= k pixels has a singular
    covariance (rank n - 1 < k) and goes straight to the pseudo-inverse; the others are factored
    and those that fail the Cholesky test follow them. The pseudo-inverse runs in band space
    (``unwhiten``, B x k): unlike an inverse it depends on the coordinates, and band space is
    what SPy and global RX use.
    """
    size = aug.shape[-1]
    k = size - 2
    n = aug[:, 0, 0].copy()
    out = np.full(n.shape, np.nan)
    enough = n >= 2
    if k == 0:
        out[enough] = 0.0
        return out
    good = np.zeros(n.shape, bool)
    with single_threaded_blas():
        factor = np.flatnonzero(n > k)
        if factor.size:
            low = cholesky_or_nan(aug[factor])
            pivots = np.diagonal(low, axis1=1, axis2=2)[:, 1 : k + 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                spread = (pivots.min(axis=1) / pivots.max(axis=1)) ** 2
            passed = spread > rcond  # NaN (failed) factors compare False
            tail = low[passed, k + 1, 1 : k + 1]
            done = factor[passed]
            out[done] = (n[done] - 1.0) * np.einsum("ij,ij->i", tail, tail)
            good[done] = True
        redo = np.flatnonzero(enough & ~good)
        if redo.size:
            m = aug[redo]
            cnt = m[:, 0, 0]
            s1 = m[:, 1 : k + 1, 0]
            a = m[:, 1 : k + 1, 1 : k + 1] - s1[:, :, None] * (s1[:, None, :] / cnt[:, None, None])
            d = m[:, 1 : k + 1, k + 1] - s1 / cnt[:, None]
            a = unwhiten @ a @ unwhiten.T
            d = d @ unwhiten.T
            out[redo] = (cnt - 1.0) * pinv_forms(a, d, rcond)
    return out


def _strip_width(size: int, outer_w: int, width: int) -> int:
    """Output columns per strip so that its per-row matrices fit ``STRIP_BYTES``."""
    per_matrix = 8 * (size + 1) ** 2
    fit = (STRIP_BYTES // per_matrix - outer_w) // 4
    return int(min(width, max(16, fit)))


def full_scores(z, unwhiten, rows, row0, image_height, inner, outer, rcond, out, reporter, workers=1):
    """Fill ``out[r]`` for absolute image rows ``rows``; ``z`` starts at image row ``row0``.

    Tiles of the output (column strips of at least 16 pixels whose matrices fit
    ``STRIP_BYTES``, as tall as ``parallel.WORK_PER_CHUNK`` allows) are shared by ``workers``
    threads; within a tile rows slide, with a cancel check per row. BLAS runs single-threaded
    throughout, entered here in the calling thread: every call works on stacks of small matrices.
    """
    width, size = z.shape[1], z.shape[2]
    rows = np.asarray(rows)
    zc = np.ascontiguousarray(z.transpose(1, 2, 0))  # (cols, size, rows): Gram left operand
    zr = np.ascontiguousarray(z.transpose(1, 0, 2))  # (cols, rows, size)
    strip = _strip_width(size, outer[1], width)
    ring = outer[0] * outer[1] - inner[0] * inner[1]
    # Tiles as large as the compiled kernel's, not NUMPY_SLOWDOWN times smaller: every tile
    # restarts its window sums (a Gram of the outer window's rows), and the cancel check runs once
    # per row inside a tile anyway.
    pixels = pixels_per_chunk(work_per_pixel(size, ring))

    def run(tile: Tuple[int, int, int, int]) -> None:
        r0, r1, c0, c1 = tile
        for c in range(c0, c1, strip):  # a tile of whole columns may hold several strips
            _tile_scores(
                z,
                zc,
                zr,
                c,
                min(c1, c + strip),
                unwhiten,
                rows[r0:r1],
                row0,
                image_height,
                inner,
                outer,
                rcond,
                out[r0:r1],
                reporter,
            )

    with single_threaded_blas():
        run_chunks(run, pixel_chunks(rows.size, width, pixels, workers, strip), workers, reporter)


def _tile_scores(z, zc, zr, c0, c1, unwhiten, rows, row0, image_height, inner, outer, rcond, out, reporter):
    """``full_scores`` for output columns [c0, c1) of absolute image rows ``rows`` (into
    ``out[r, c0:c1]``), sliding the window sums down the rows."""
    width, size = z.shape[1], z.shape[2]
    (hi, wi), (ho, wo) = inner, outer
    cols = np.arange(c0, c1)
    npx = cols.size
    in0 = int(window_starts(c0, wo, width))
    in1 = int(window_starts(c1 - 1, wo, width)) + wo
    outer_runs = _runs(cols, wo, width)
    vertical = np.empty((in1 - in0, size, size))
    prefix = np.zeros((in1 - in0 + 1, size, size))
    flat = prefix.reshape(prefix.shape[0], -1)
    inner_cols = window_starts(cols, wi, width)
    guard = np.empty((npx, size, size))
    aug = np.empty((npx, size + 1, size + 1))
    box = aug[:, :size, :size]
    top = None  # first row of the outer windows summed in ``vertical``
    for out_row, i in enumerate(rows):
        reporter.check()
        r_out = int(window_starts(i, ho, image_height)) - row0
        r_in = int(window_starts(i, hi, image_height)) - row0
        # outer box: each column's sum over the window rows, slid down one row at a time
        # (a rank-2 update: the entering row in, the leaving row out), then a running sum
        # over columns
        _slide_vertical(vertical, zc, zr, in0, in1, top, r_out, ho)
        top = r_out
        prefix[1:] = vertical
        for c in range(1, flat.shape[0] - 1):
            np.add(flat[c + 1], flat[c], out=flat[c + 1])
        for j0, j1, start, step in outer_runs:
            s = start - in0
            np.subtract(_take(prefix, s + wo, step, j1 - j0), _take(prefix, s, step, j1 - j0), out=box[j0:j1])
        # guard box: Gram of its hi x wi pixels
        win = np.lib.stride_tricks.sliding_window_view(z[r_in : r_in + hi], wi, axis=1)
        g = win[:, inner_cols]  # (hi, npx, size, wi)
        g = np.ascontiguousarray(g.transpose(1, 2, 0, 3)).reshape(npx, size, hi * wi)
        np.matmul(g, g.transpose(0, 2, 1), out=guard)
        box -= guard
        pix = z[i - row0, c0:c1]
        aug[:, size, :size] = pix
        aug[:, :size, size] = pix
        aug[:, size, size] = _BIG
        scores = ring_forms(aug, rcond, unwhiten)
        scores[pix[:, 0] == 0] = np.nan
        out[out_row, c0:c1] = scores


def _slide_vertical(vertical, zc, zr, in0, in1, top, new_top, ho) -> None:
    """Make ``vertical[c]`` the sum of ``z z^T`` over window rows [new_top, new_top + ho) of
    column in0 + c.

    A window that moved down by one row costs two outer products per column (the Gram of ho
    rows costs ho); any other move recomputes the Gram. Rows are exact copies, so the slid sums
    differ from recomputed ones only by float64 rounding.
    """
    if top is not None and new_top == top:
        return
    if top is None or new_top != top + 1:
        np.matmul(zc[in0:in1, :, new_top : new_top + ho], zr[in0:in1, new_top : new_top + ho], out=vertical)
        return
    enter, leave = zr[in0:in1, top + ho], zr[in0:in1, top]
    left = np.stack([enter, leave], axis=2)  # (cols, size, 2)
    right = np.stack([enter, -leave], axis=1)  # (cols, 2, size)
    vertical += left @ right


def ring_moments(z, pix_rows, pix_cols, outer_rows, inner_rows, outer_cols, inner_cols, inner, outer):
    """Augmented ring matrices ``[[sum z z^T, z_p], [z_p^T, BIG]]`` of the given pixels, summed
    directly over their outer box minus their guard box (batched Grams, a few hundred pixels at
    a time)."""
    (hi, wi), (ho, wo) = inner, outer
    size = z.shape[2]
    count = len(pix_rows)
    aug = np.empty((count, size + 1, size + 1))

    def gram(a: int, b: int, starts_r, starts_c, h: int, w: int) -> np.ndarray:
        rr = starts_r[a:b, None, None] + np.arange(h)[None, :, None]
        cc = starts_c[a:b, None, None] + np.arange(w)[None, None, :]
        box = z[rr, cc].reshape(b - a, h * w, size)
        return np.matmul(box.transpose(0, 2, 1), box)

    for a in range(0, count, GATHER_PIXELS):
        b = min(count, a + GATHER_PIXELS)
        aug[a:b, :size, :size] = gram(a, b, outer_rows, outer_cols, ho, wo) - gram(
            a, b, inner_rows, inner_cols, hi, wi
        )
    pix = z[pix_rows, pix_cols]
    aug[:, size, :size] = pix
    aug[:, :size, size] = pix
    aug[:, size, size] = _BIG
    return aug


def _prefix_inplace(a: np.ndarray, axis: int) -> None:
    """Running sum along ``axis`` as one vector add per index (numpy's cumsum is far slower
    along a leading axis)."""
    view = np.moveaxis(a, axis, 0)
    for i in range(1, view.shape[0]):
        np.add(view[i], view[i - 1], out=view[i])


def mean_scores(z, rows, row0, image_height, inner, outer, out, reporter):
    """Euclidean distance (whitened by the fixed covariance) to the ring mean."""
    height, width, size = z.shape
    ho = outer[0]
    per_row = 8 * (width + 1) * size
    group = max(1, GROUP_BYTES // per_row - ho)
    rows = np.asarray(rows)
    cols = np.arange(width)
    boxes = []
    for (h, w), sign in ((outer, 1.0), (inner, -1.0)):
        boxes.append((h, sign, window_starts(cols, w, width), w))
    for g0 in range(0, rows.size, group):
        reporter.check()
        grp = rows[g0 : g0 + group]
        lo, hi_row = halo_rows(int(grp[0]), int(grp[-1]) + 1, image_height, outer)
        ii = np.zeros((hi_row - lo + 1, width + 1, size))
        ii[1:, 1:] = z[lo - row0 : hi_row - row0]
        _prefix_inplace(ii[1:, 1:], 0)
        _prefix_inplace(ii[1:, 1:], 1)
        sums = np.zeros((grp.size, width, size))
        for h, sign, cstart, w in boxes:
            r0 = window_starts(grp, h, image_height) - lo
            r1 = r0 + h
            c_lo, c_hi = cstart, cstart + w
            part = (ii[r1][:, c_hi] - ii[r0][:, c_hi]) - (ii[r1][:, c_lo] - ii[r0][:, c_lo])
            sums += sign * part
        n = sums[..., 0]
        pix = z[grp - row0]
        with np.errstate(invalid="ignore", divide="ignore"):
            d = pix[..., 1:] - sums[..., 1:] / n[..., None]
            scores = np.einsum("rcj,rcj->rc", d, d)
        scores[(n < 1) | (pix[..., 0] == 0)] = np.nan
        out[g0 : g0 + grp.size] = scores
