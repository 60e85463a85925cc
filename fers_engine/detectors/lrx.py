"""Local (windowed) RX: each pixel against the ring between an inner guard and an outer window.

Semantics are SPy's ``spectral.rx(X, window=(inner, outer), cov=None|C)`` exactly
(``spectral/algorithms/spatial.py``: ``inner_outer_window_mask_creator`` and
``WindowedGaussianBackgroundMapper``):

* Edge rule: windows never leave the image. Each window (inner and outer, independently) is
  centred on the pixel and, where it would cross an image edge, *shifted* back inside at full
  size: ``start = clip(i - size // 2, 0, n - size)``. The ring is the outer window minus the
  (shifted) inner window, so it always holds (outer area - inner area) pixels and the pixel
  always lies inside its own guard window. The image must be at least as large as the outer
  window. Invalid pixels (a case SPy does not handle: it raises on NaN) are left out of the
  ring statistics, and score NaN.
* Background: ring mean and unbiased (n - 1) covariance, inverted as a pseudo-inverse; score =
  squared Mahalanobis distance of the pixel from the ring mean. With ``cov`` given, only the
  mean is local and ``cov`` is used everywhere (SPy's cheap mode).

How it is fast where SPy loops over pixels in Python (~2 ms per pixel at 100 bands):

* Every block is centred and whitened with its own statistics, and each pixel becomes
  ``z = [1, y]`` (0 where invalid). The ring sum of ``z z^T`` is ``[[n, S1^T], [S1, S2]]``:
  count, first and second moments in one matrix, so invalid pixels drop out of every ring by
  construction. Mahalanobis distances are invariant under the whitening, which makes ring
  covariances well-scaled (condition ~1e2 instead of ~1e8 on raw DN) and keeps the moment
  formula free of cancellation.
* Ring moments slide: each column's vertical window sum moves down one row by a rank-2 update,
  and box sums move along a row by adding the entering column's sum and removing the leaving
  one's. The ring is the outer box minus the guard box.
* With numba installed (``pip install 'fers-hsi[fast]'``) ``ring_kernel`` fuses all of this with
  one exact Cholesky per pixel, about 30 us per pixel at 100 bands on one core, and ``workers``
  threads share the rows. Without it each output row is batched numpy: outer boxes from a
  running sum over columns, guard boxes from a batched Gram of their pixels, and one batched
  LAPACK Cholesky per row of ``[[n, S1^T, 1], [S1, S2, y], [1, y^T, BIG]]``: eliminating the
  count pivot leaves the ring covariance (times n - 1) and ``y - mean``, so the last row of the
  factor holds ``L^-1 (y - mean)`` and the score is its squared norm. That path is several
  times slower (``bench/speed.py`` times both).
* Rings whose Cholesky fails or whose pivots spread beyond ``rcond`` (singular, e.g. fewer ring
  pixels than bands) are redone in band space with the eigen pseudo-inverse of global RX, on
  both paths.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ..choices import LOCAL_COVARIANCES
from ..errors import InputError
from ..progress import SILENT, Reporter
from .stats import DEFAULT_RCOND, BackgroundStats, check_cube, eigen_parts, usable_pixels

Window = Union[int, Sequence[int]]

#: Budget (bytes) of the per-row matrices of one column strip. Small strips keep the working
#: set in cache, which measured faster than the wider strips' smaller column halo.
_STRIP_BYTES = 4 * 2**20
#: Budget (bytes) of the lifted (whitened float64) copies of the rows scored in one pass.
_PASS_BYTES = 128 * 2**20
#: Budget (bytes) of the integral image of one row group in the fixed-covariance mode.
_GROUP_BYTES = 32 * 2**20
#: Corner of the augmented matrix: large enough that it never limits positive-definiteness.
_BIG = 1e300
#: Pixels scored per call of the compiled kernel: the cancel check runs between calls.
_KERNEL_PIXELS = 16384


# --------------------------------------------------------------------------------------------
# windows


def window_shape(window: Window, name: str) -> Tuple[int, int]:
    """(height, width) of a window given as an odd int or an (h, w) pair of odd ints."""
    if isinstance(window, (int, np.integer)):
        pair = (int(window), int(window))
    else:
        pair = tuple(int(v) for v in window)
        if len(pair) != 2:
            raise InputError(f"{name} window must be an int or (height, width), got {window!r}")
    if min(pair) < 1 or pair[0] % 2 == 0 or pair[1] % 2 == 0:
        raise InputError(f"{name} window sizes must be odd and positive, got {pair}")
    return pair  # type: ignore[return-value]


def check_windows(inner: Window, outer: Window) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Validated (inner, outer) shapes: odd, and inner strictly smaller in both directions."""
    inner_hw, outer_hw = window_shape(inner, "inner"), window_shape(outer, "outer")
    if inner_hw[0] >= outer_hw[0] or inner_hw[1] >= outer_hw[1]:
        raise InputError(f"inner window {inner_hw} must be smaller than outer window {outer_hw}")
    return inner_hw, outer_hw


def window_starts(positions, size: int, length: int):
    """First index of a ``size`` window centred on each position, shifted inside [0, length)."""
    return np.clip(np.asarray(positions) - size // 2, 0, length - size)


class CovarianceChoice(NamedTuple):
    """The local-RX covariance that will run, why, and whether the caller should warn."""

    mode: str  # 'ring' or 'scene'
    reason: str
    singular: bool  # 'ring' forced where every ring covariance is singular (slow)


def choose_covariance(mode: str, inner: Window, outer: Window, bands: int) -> CovarianceChoice:
    """The covariance a local-RX mode ('auto', 'ring', 'scene') means over ``bands`` bands.

    'auto' follows the Reed-Mallett-Brennan rule: a covariance estimated from n samples of
    dimension B costs under 3 dB of detection only when n >= 2B, so the ring's own covariance is
    used when the ring holds at least twice as many pixels as bands, and the scene's (with the
    ring's mean) otherwise. With fewer ring pixels than bands every ring covariance is singular
    and each pixel falls back to an eigen pseudo-inverse, hundreds of times slower: a forced
    'ring' is then flagged ``singular``.
    """
    if mode not in LOCAL_COVARIANCES:
        raise InputError(f"unknown local RX covariance {mode!r}: choose one of {', '.join(LOCAL_COVARIANCES)}")
    (hi, wi), (ho, wo) = check_windows(inner, outer)
    ring = ho * wo - hi * wi
    counts = f"{ring} ring pixels for {bands} bands"
    if mode == "auto":
        if ring >= 2 * bands:
            return CovarianceChoice("ring", f"{counts}: at least 2 per band, so each ring's own "
                                    "covariance", False)
        return CovarianceChoice("scene", f"{counts}: fewer than 2 per band, so the scene covariance "
                                "with each ring's mean (a larger outer window, or fewer bands, allows "
                                "the ring's own)", False)
    if mode == "ring" and ring <= bands:
        return CovarianceChoice("ring", f"{counts}: every ring covariance is singular, so each pixel "
                                "takes the pseudo-inverse route (slow); a larger outer window or the "
                                "scene covariance avoids it", True)
    return CovarianceChoice(mode, counts, False)


def halo_rows(core_row0: int, core_row1: int, image_height: int, outer: Window) -> Tuple[int, int]:
    """Rows [row0, row1) a streaming reader must supply to score core rows [core_row0, core_row1).

    At most ``outer // 2`` rows either side; fewer near the image's top and bottom, where the
    shifted windows stay inside the image.
    """
    height = window_shape(outer, "outer")[0]
    if not 0 <= core_row0 < core_row1 <= image_height:
        raise InputError(f"core rows [{core_row0}, {core_row1}) outside image of {image_height}")
    if height > image_height:
        raise InputError(f"outer window height {height} exceeds image height {image_height}")
    first = window_starts(core_row0, height, image_height)
    last = window_starts(core_row1 - 1, height, image_height) + height
    return int(first), int(last)


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
        return a[start:start + count]
    return np.broadcast_to(a[start], (count,) + a.shape[1:])


# --------------------------------------------------------------------------------------------
# batched linear algebra


_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_BEFORE = 0
_OPENBLAS: Optional[tuple] = None


@contextlib.contextmanager
def _single_thread_blas() -> Iterator[None]:
    """Run numpy's OpenBLAS single-threaded for batches of tiny factorisations.

    Threading a 100x100 Cholesky costs more in synchronisation than it gains (measured 2.3x
    slower on 2 cores); parallelism comes from ``workers`` instead. Reference-counted so that
    concurrent workers restore the caller's setting only when the last one leaves; a no-op
    when numpy's BLAS cannot be reached (e.g. a system numpy inside QGIS).
    """
    global _BLAS_USERS, _BLAS_BEFORE
    handle = _openblas_threads()
    if handle is None:
        yield
        return
    get, put = handle
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            _BLAS_BEFORE = get()
            put(1)
        _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                put(_BLAS_BEFORE)


def _openblas_threads() -> Optional[tuple]:
    global _OPENBLAS
    if _OPENBLAS is None:
        found: tuple = ()
        folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
        for path in sorted(glob.glob(os.path.join(folder, "libopenblas*"))):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for suffix in ("64_", ""):
                get = getattr(lib, "openblas_get_num_threads" + suffix, None)
                put = getattr(lib, "openblas_set_num_threads" + suffix, None)
                if get is not None and put is not None:
                    found = (get, put)
                    break
            if found:
                break
        _OPENBLAS = found
    return _OPENBLAS or None


def _cholesky_or_nan(a: np.ndarray) -> np.ndarray:
    """Batched lower Cholesky; matrices that are not positive definite come back as NaN."""
    try:
        from numpy.linalg import _umath_linalg

        with np.errstate(invalid="ignore"):
            return _umath_linalg.cholesky_lo(a, signature="d->d")
    except (ImportError, AttributeError, TypeError):
        try:
            return np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            return np.full_like(a, np.nan)  # the caller re-solves every matrix of this batch


def _pinv_forms(a: np.ndarray, d: np.ndarray, rcond: float) -> np.ndarray:
    """d^T A^+ d per matrix, dropping eigen-directions below rcond x the largest eigenvalue."""
    eigval, eigvec = np.linalg.eigh(a)
    top = eigval[:, -1:]
    keep = (eigval > top * rcond) & (top > 0)
    proj = np.einsum("nji,nj->ni", eigvec, d)
    safe = np.where(keep, eigval, 1.0)
    return np.where(keep, proj * proj / safe, 0.0).sum(axis=1)


def _ring_forms(aug: np.ndarray, rcond: float, unwhiten: np.ndarray) -> np.ndarray:
    """Scores from augmented ring matrices ``[[n, S1^T, 1], [S1, S2, y], [1, y^T, BIG]]``.

    NaN where the ring holds fewer than 2 pixels. Rings that fail the Cholesky test are mapped
    back to band space (``unwhiten``, B x k) before the pseudo-inverse: a pseudo-inverse,
    unlike an inverse, depends on the coordinates, and band space is what SPy and global RX
    use.
    """
    size = aug.shape[-1]
    k = size - 2
    n = aug[:, 0, 0].copy()
    out = np.full(n.shape, np.nan)
    enough = n >= 2
    if k == 0:
        out[enough] = 0.0
        return out
    with _single_thread_blas():
        low = _cholesky_or_nan(aug)
    pivots = np.diagonal(low, axis1=1, axis2=2)[:, 1:k + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = (pivots.min(axis=1) / pivots.max(axis=1)) ** 2
    good = enough & (spread > rcond)  # NaN (failed) rows compare False
    tail = low[good, k + 1, 1:k + 1]
    out[good] = (n[good] - 1.0) * np.einsum("ij,ij->i", tail, tail)
    redo = np.flatnonzero(enough & ~good)
    if redo.size:
        m = aug[redo]
        cnt = m[:, 0, 0]
        s1 = m[:, 1:k + 1, 0]
        a = m[:, 1:k + 1, 1:k + 1] - s1[:, :, None] * (s1[:, None, :] / cnt[:, None, None])
        d = m[:, 1:k + 1, k + 1] - s1 / cnt[:, None]
        a = unwhiten @ a @ unwhiten.T
        d = d @ unwhiten.T
        out[redo] = (cnt - 1.0) * _pinv_forms(a, d, rcond)
    return out


# --------------------------------------------------------------------------------------------
# whitening


def _whitening(
    block: np.ndarray, mask: np.ndarray, cov: Optional[np.ndarray], rcond: float
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shift (B,), whiten (B, k), unwhiten (B, k)) from the valid pixels of a block.

    Without ``cov`` the block's own covariance whitens (any invertible map leaves the ring
    Mahalanobis distance unchanged); with ``cov`` the given covariance does, which turns the
    fixed-covariance mode into plain Euclidean distances to the ring mean. ``unwhiten`` maps
    whitened coordinates back to band space.
    """
    bands = block.shape[0]
    stats = BackgroundStats(bands)
    stats.update(block, mask)
    if cov is None and stats.count >= 2:
        cov = stats.covariance()
    shift = stats.mean if stats.count else np.zeros(bands)
    if cov is None:
        empty = np.zeros((bands, 0))
        return shift, empty, empty
    eigval, eigvec, _ = eigen_parts(cov, rcond)
    return shift, eigvec / np.sqrt(eigval), eigvec * np.sqrt(eigval)


def _lift(block: np.ndarray, mask: np.ndarray, shift: np.ndarray, whiten: np.ndarray):
    """(rows, cols, 1 + k) float64 pixels ``z = [1, W^T (x - shift)]``, zero where masked."""
    bands = block.shape[0]
    flat = mask.ravel()
    z = np.zeros((flat.size, 1 + whiten.shape[1]), dtype=np.float64)
    pixels = block.reshape(bands, -1)[:, flat].T.astype(np.float64)
    pixels -= shift
    z[flat, 0] = 1.0
    z[flat, 1:] = pixels @ whiten
    return z.reshape(mask.shape + (z.shape[1],))


def _rows_per_pass(width: int, bands: int, k: int, outer_h: int) -> int:
    """Core rows lifted at once so that the lifted copies stay within ``_PASS_BYTES``."""
    per_row = 8 * width * (3 * (k + 1) + bands)
    return max(1, _PASS_BYTES // per_row - outer_h + 1)


# --------------------------------------------------------------------------------------------
# full mode: local mean and covariance


def _strip_width(size: int, outer_w: int, width: int) -> int:
    """Output columns per strip so that its per-row matrices fit ``_STRIP_BYTES``."""
    per_matrix = 8 * (size + 1) ** 2
    fit = (_STRIP_BYTES // per_matrix - outer_w) // 4
    return int(min(width, max(16, fit)))


def _full_scores(z, unwhiten, rows, row0, image_height, inner, outer, rcond, out, reporter):
    """Fill ``out[r]`` for absolute image rows ``rows``; ``z`` starts at image row ``row0``."""
    height, width, size = z.shape
    (hi, wi), (ho, wo) = inner, outer
    zc = np.ascontiguousarray(z.transpose(1, 2, 0))  # (cols, size, rows): Gram left operand
    zr = np.ascontiguousarray(z.transpose(1, 0, 2))  # (cols, rows, size)
    strip = _strip_width(size, wo, width)
    for c0 in range(0, width, strip):
        c1 = min(width, c0 + strip)
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
                np.subtract(_take(prefix, s + wo, step, j1 - j0), _take(prefix, s, step, j1 - j0),
                            out=box[j0:j1])
            # guard box: Gram of its hi x wi pixels
            win = np.lib.stride_tricks.sliding_window_view(z[r_in:r_in + hi], wi, axis=1)
            g = win[:, inner_cols]  # (hi, npx, size, wi)
            g = np.ascontiguousarray(g.transpose(1, 2, 0, 3)).reshape(npx, size, hi * wi)
            np.matmul(g, g.transpose(0, 2, 1), out=guard)
            box -= guard
            pix = z[i - row0, c0:c1]
            aug[:, size, :size] = pix
            aug[:, :size, size] = pix
            aug[:, size, size] = _BIG
            scores = _ring_forms(aug, rcond, unwhiten)
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
        np.matmul(zc[in0:in1, :, new_top:new_top + ho], zr[in0:in1, new_top:new_top + ho],
                  out=vertical)
        return
    enter, leave = zr[in0:in1, top + ho], zr[in0:in1, top]
    left = np.stack([enter, leave], axis=2)  # (cols, size, 2)
    right = np.stack([enter, -leave], axis=1)  # (cols, 2, size)
    vertical += left @ right


def _ring_kernel():
    """The compiled kernel module when numba is installed, else None. Imported on first use:
    numba adds about 100 MB and a fraction of a second to a process that never runs local RX."""
    from . import ring_kernel

    return ring_kernel if ring_kernel.available() else None


def _compiled_scores(z, unwhiten, rows, row0, image_height, inner, outer, rcond, out, reporter,
                     workers=1):
    """``_full_scores`` through the compiled kernel (``ring_kernel``), in groups of rows shared
    by ``workers`` threads; rings it leaves to us (singular or ill-conditioned) go through
    ``_ring_forms`` like the numpy path's."""
    kernel = _ring_kernel()
    width = z.shape[1]
    cols = np.arange(width)
    outer_cols = window_starts(cols, outer[1], width)
    inner_cols = window_starts(cols, inner[1], width)
    group = max(1, _KERNEL_PIXELS // width)
    if workers > 1:  # at least one group per worker
        group = max(1, min(group, -(-rows.size // int(workers))))

    def run(g0: int) -> None:
        reporter.check()
        grp = rows[g0:g0 + group]
        outer_rows = window_starts(grp, outer[0], image_height) - row0
        inner_rows = window_starts(grp, inner[0], image_height) - row0
        scores, ok = kernel.scores(z, grp - row0, outer_rows, inner_rows, outer_cols, inner_cols,
                                   outer, inner, rcond, _STRIP_BYTES)
        left = np.nonzero(~ok)
        if left[0].size:
            r, c = left
            aug = _ring_moments(z, grp[r] - row0, c, outer_rows[r], inner_rows[r],
                                outer_cols[c], inner_cols[c], inner, outer)
            scores[left] = _ring_forms(aug, rcond, unwhiten)
        out[g0:g0 + grp.size] = scores

    starts = range(0, rows.size, group)
    if workers <= 1 or len(starts) == 1:
        for g0 in starts:
            run(g0)
        return
    with ThreadPoolExecutor(max_workers=int(workers)) as pool:
        list(pool.map(run, starts))


#: Pixels whose ring matrices ``_ring_moments`` gathers at once (bounds its memory).
_GATHER_PIXELS = 256


def _ring_moments(z, pix_rows, pix_cols, outer_rows, inner_rows, outer_cols, inner_cols, inner,
                  outer):
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

    for a in range(0, count, _GATHER_PIXELS):
        b = min(count, a + _GATHER_PIXELS)
        aug[a:b, :size, :size] = (gram(a, b, outer_rows, outer_cols, ho, wo)
                                  - gram(a, b, inner_rows, inner_cols, hi, wi))
    pix = z[pix_rows, pix_cols]
    aug[:, size, :size] = pix
    aug[:, :size, size] = pix
    aug[:, size, size] = _BIG
    return aug


# --------------------------------------------------------------------------------------------
# fixed-covariance mode: local mean only


def _prefix_inplace(a: np.ndarray, axis: int) -> None:
    """Running sum along ``axis`` as one vector add per index (numpy's cumsum is far slower
    along a leading axis)."""
    view = np.moveaxis(a, axis, 0)
    for i in range(1, view.shape[0]):
        np.add(view[i], view[i - 1], out=view[i])


def _mean_scores(z, rows, row0, image_height, inner, outer, out, reporter):
    """Euclidean distance (whitened by the fixed covariance) to the ring mean."""
    height, width, size = z.shape
    (hi, wi), (ho, wo) = inner, outer
    per_row = 8 * (width + 1) * size
    group = max(1, _GROUP_BYTES // per_row - ho)
    rows = np.asarray(rows)
    cols = np.arange(width)
    boxes = []
    for (h, w), sign in ((outer, 1.0), (inner, -1.0)):
        boxes.append((h, sign, window_starts(cols, w, width), w))
    for g0 in range(0, rows.size, group):
        reporter.check()
        grp = rows[g0:g0 + group]
        lo, hi_row = halo_rows(int(grp[0]), int(grp[-1]) + 1, image_height, outer)
        ii = np.zeros((hi_row - lo + 1, width + 1, size))
        ii[1:, 1:] = z[lo - row0:hi_row - row0]
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
        out[g0:g0 + grp.size] = scores


# --------------------------------------------------------------------------------------------
# public API


def local_rx_block(
    block: np.ndarray,
    valid: Optional[np.ndarray],
    block_row0: int,
    core_row0: int,
    core_row1: int,
    image_height: int,
    inner: Window = 3,
    outer: Window = 15,
    cov: Optional[np.ndarray] = None,
    rcond: float = DEFAULT_RCOND,
    reporter: Optional[Reporter] = None,
    workers: int = 1,
) -> np.ndarray:
    """float32 (core_row1 - core_row0, cols) local RX of image rows [core_row0, core_row1).

    ``block`` (B, rows, cols) holds image rows [block_row0, block_row0 + rows) and must cover
    ``halo_rows(core_row0, core_row1, image_height, outer)``; row numbers are absolute, so the
    windows near the image's top and bottom shift exactly as in a whole-image run. Columns are
    always the full image width. ``reporter.check()`` is called per output row, or per kernel
    call on the compiled path (cancel). ``workers`` threads share the compiled kernel's rows (it
    releases the GIL); the numpy path ignores them.
    """
    block = np.asarray(block)
    if block.ndim != 3:
        raise InputError(f"expected a bands-first block (B, rows, cols), got shape {block.shape}")
    inner_hw, outer_hw = check_windows(inner, outer)
    bands, rows, width = block.shape
    if outer_hw[1] > width:
        raise InputError(f"outer window width {outer_hw[1]} exceeds image width {width}")
    need0, need1 = halo_rows(core_row0, core_row1, image_height, outer_hw)
    if need0 < block_row0 or need1 > block_row0 + rows:
        raise InputError(
            f"block rows [{block_row0}, {block_row0 + rows}) do not cover the rows "
            f"[{need0}, {need1}) needed for core rows [{core_row0}, {core_row1})"
        )
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (rows, width):
            raise InputError(f"valid mask shape {valid.shape} does not match block {(rows, width)}")
    if cov is not None:
        cov = np.asarray(cov, dtype=np.float64)
        if cov.shape != (bands, bands):
            raise InputError(f"covariance shape {cov.shape} does not match {bands} bands")
    reporter = reporter or SILENT

    # only the rows that matter, so the whitening is the same however the caller padded
    sub = slice(need0 - block_row0, need1 - block_row0)
    data = block[:, sub]
    mask = usable_pixels(data, None if valid is None else valid[sub])
    out = np.full((core_row1 - core_row0, width), np.nan, dtype=np.float32)
    if not mask.any():
        return out
    shift, whiten, unwhiten = _whitening(data, mask, cov, rcond)
    step = _rows_per_pass(width, bands, whiten.shape[1], outer_hw[0])
    for a in range(core_row0, core_row1, step):
        b = min(core_row1, a + step)
        h0, h1 = halo_rows(a, b, image_height, outer_hw)
        rows = slice(h0 - need0, h1 - need0)
        z = _lift(data[:, rows], mask[rows], shift, whiten)
        target = out[a - core_row0:b - core_row0]
        if cov is None and _ring_kernel() is not None:
            _compiled_scores(z, unwhiten, np.arange(a, b), h0, image_height, inner_hw, outer_hw,
                             rcond, target, reporter, workers)
        elif cov is None:
            _full_scores(z, unwhiten, range(a, b), h0, image_height, inner_hw, outer_hw, rcond,
                         target, reporter)
        else:
            _mean_scores(z, np.arange(a, b), h0, image_height, inner_hw, outer_hw, target,
                         reporter)
    return out


def local_rx(
    cube: np.ndarray,
    valid: Optional[np.ndarray] = None,
    inner: Window = 3,
    outer: Window = 15,
    cov: Optional[np.ndarray] = None,
    reporter: Optional[Reporter] = None,
    row_chunk: Optional[int] = None,
    rcond: float = DEFAULT_RCOND,
    workers: int = 1,
) -> np.ndarray:
    """float32 (H, W) local RX of a (B, H, W) cube; NaN where invalid.

    Equals ``spectral.rx(X, window=(inner, outer), cov=cov)`` on the (H, W, B) transpose.
    ``row_chunk`` output rows are scored per step, each with its halo (bounded memory, one
    reporter step per chunk); ``workers`` > 1 scores chunks in threads (numpy and LAPACK
    release the GIL), worthwhile only on otherwise idle cores.
    """
    cube, valid = check_cube(cube, valid)
    inner_hw, outer_hw = check_windows(inner, outer)
    bands, height, width = cube.shape
    if outer_hw[0] > height or outer_hw[1] > width:
        raise InputError(f"outer window {outer_hw} is larger than the image {(height, width)}")
    reporter = reporter or SILENT
    chunk = int(row_chunk) if row_chunk else 64
    if chunk < 1:
        raise InputError(f"row_chunk must be at least 1, got {row_chunk}")
    out = np.empty((height, width), dtype=np.float32)

    def run(r0: int) -> int:
        r1 = min(height, r0 + chunk)
        h0, h1 = halo_rows(r0, r1, height, outer_hw)
        out[r0:r1] = local_rx_block(
            cube[:, h0:h1], None if valid is None else valid[h0:h1], h0, r0, r1, height,
            inner_hw, outer_hw, cov=cov, rcond=rcond, reporter=reporter,
        )
        return r1 - r0

    starts = range(0, height, chunk)
    done = 0
    if workers <= 1:
        for r0 in starts:
            done += run(r0)
            reporter.step(done / height)
        return out
    with ThreadPoolExecutor(max_workers=int(workers)) as pool:
        for rows_done in pool.map(run, starts):
            done += rows_done
            reporter.step(done / height)
    return out
