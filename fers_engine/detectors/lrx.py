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
  one exact Cholesky per pixel, about 30 us per pixel at 100 bands on one core. Without it
  ``lrx_numpy`` does the same in batched numpy, one row of a column strip at a time, several
  times slower (``bench/speed.py`` times both).
* Rings whose Cholesky fails or whose pivots spread beyond ``rcond`` (singular, e.g. fewer ring
  pixels than bands) are redone in band space with the eigen pseudo-inverse of global RX, on
  both paths.
* Work goes in chunks sized by its cost (``parallel.py``), shared by ``workers`` threads, with
  the caller's cancel checked between chunks: a few times a second whatever the band count.

This module is the public API (windows, the covariance rule, whitening, the block and
whole-cube entry points); the kernels live in ``ring_kernel`` (numba) and ``lrx_numpy``.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import NamedTuple, Optional, Tuple

import numpy as np

from ..choices import LocalCovariance
from ..errors import InputError
from ..progress import SILENT, Reporter
from . import lrx_numpy
from .batched_linalg import single_threaded_blas
from .parallel import pixel_chunks, pixels_per_chunk, run_chunks
from .stats import DEFAULT_RCOND, BackgroundStats, check_cube, eigen_parts
from .windows import Window, check_windows, halo_rows, needed_rows, score_by_row_chunks, window_starts

__all__ = ["CovarianceChoice", "choose_covariance", "local_rx", "local_rx_block"]

#: Budget (bytes) of the lifted (whitened float64) copies of the rows scored in one pass.
PASS_BYTES = 128 * 2**20


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
    LocalCovariance.parse(mode, "local RX covariance")
    (hi, wi), (ho, wo) = check_windows(inner, outer)
    ring = ho * wo - hi * wi
    counts = f"{ring} ring pixels for {bands} bands"
    if mode == "auto":
        if ring >= 2 * bands:
            return CovarianceChoice(
                "ring", f"{counts}: at least 2 per band, so each ring's own covariance", False
            )
        return CovarianceChoice(
            "scene",
            f"{counts}: fewer than 2 per band, so the scene covariance "
            "with each ring's mean (a larger outer window, or fewer bands, allows "
            "the ring's own)",
            False,
        )
    if mode == "ring" and ring <= bands:
        return CovarianceChoice(
            "ring",
            f"{counts}: every ring covariance is singular, so each pixel "
            "takes the pseudo-inverse route (slow); a larger outer window or the "
            "scene covariance avoids it",
            True,
        )
    return CovarianceChoice(mode, counts, False)


# --------------------------------------------------------------------------------------------
# whitening


def _whitening(
    block: np.ndarray, mask: np.ndarray, cov: Optional[np.ndarray], rcond: float, reporter: Reporter
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shift (B,), whiten (B, k), unwhiten (B, k)) from the valid pixels of a block.

    Without ``cov`` the block's own covariance whitens (any invertible map leaves the ring
    Mahalanobis distance unchanged); with ``cov`` the given covariance does, which turns the
    fixed-covariance mode into plain Euclidean distances to the ring mean. ``unwhiten`` maps
    whitened coordinates back to band space. The statistics are gathered in row slices with a
    cancel check between them (a large 224-band block takes seconds).
    """
    bands, rows, width = block.shape
    stats = BackgroundStats(bands)
    step = max(1, pixels_per_chunk(bands * bands) // max(1, width))
    for r in range(0, rows, step):
        reporter.check()
        stats.update(block[:, r : r + step], mask[r : r + step])
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
    """Core rows lifted at once so that the lifted copies stay within ``PASS_BYTES``."""
    per_row = 8 * width * (3 * (k + 1) + bands)
    return max(1, PASS_BYTES // per_row - outer_h + 1)


# --------------------------------------------------------------------------------------------
# the compiled path


def _compiled_kernels():
    """The compiled kernels' switch module, imported on first use: numba adds about 100 MB and a
    fraction of a second to a process that never runs a windowed detector."""
    from . import compiled

    return compiled


def _compiled_scores(z, unwhiten, rows, row0, image_height, inner, outer, rcond, out, reporter, workers=1):
    """Full-mode scores through ``ring_kernel`` in cost-sized chunks shared by ``workers``
    threads; rings it leaves to us (singular or ill-conditioned) go through
    ``lrx_numpy.ring_forms`` like the numpy path's."""
    from . import ring_kernel

    width, size = z.shape[1], z.shape[2]
    cols = np.arange(width)
    outer_cols = window_starts(cols, outer[1], width)
    inner_cols = window_starts(cols, inner[1], width)
    ring = outer[0] * outer[1] - inner[0] * inner[1]
    pixels = pixels_per_chunk(lrx_numpy.work_per_pixel(size, ring))
    strip = ring_kernel.strip_width(size, outer[1], width, lrx_numpy.STRIP_BYTES)

    def run(chunk: Tuple[int, int, int, int]) -> None:
        r0, r1, c0, c1 = chunk
        grp = rows[r0:r1]
        outer_rows = window_starts(grp, outer[0], image_height) - row0
        inner_rows = window_starts(grp, inner[0], image_height) - row0
        scores, ok = ring_kernel.scores(
            z,
            grp - row0,
            (c0, c1),
            outer_rows,
            inner_rows,
            outer_cols,
            inner_cols,
            outer,
            inner,
            rcond,
            lrx_numpy.STRIP_BYTES,
        )
        left = np.nonzero(~ok)
        if left[0].size:
            r, c = left
            c = c + c0
            with single_threaded_blas():
                aug = lrx_numpy.ring_moments(
                    z,
                    grp[r] - row0,
                    c,
                    outer_rows[r],
                    inner_rows[r],
                    outer_cols[c],
                    inner_cols[c],
                    inner,
                    outer,
                )
                scores[left] = lrx_numpy.ring_forms(aug, rcond, unwhiten)
        out[r0:r1, c0:c1] = scores

    # Rings with no more pixels than dimensions all take the batched numpy route: limit BLAS
    # from this (the calling) thread for the whole run, see ``single_threaded_blas``.
    with single_threaded_blas() if ring <= size - 1 else nullcontext():
        run_chunks(run, pixel_chunks(rows.size, width, pixels, workers, strip), workers, reporter)


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

    Args:
        block: (B, rows, cols) image rows [block_row0, block_row0 + rows); must cover
            ``halo_rows(core_row0, core_row1, image_height, outer)``. Row numbers are absolute,
            so the windows near the image's top and bottom shift exactly as in a whole-image
            run; columns are always the full image width.
        valid: bool (rows, cols), True where usable (non-finite pixels are excluded anyway).
        inner, outer: guard and outer windows, odd ints or (h, w) pairs.
        cov: a fixed (B, B) covariance (only the mean is local), or None for each ring's own.
        reporter: cancel is checked between chunks of about ``parallel.WORK_PER_CHUNK``.
        workers: threads sharing the chunks (the kernels release the GIL).

    Returns:
        Scores (squared Mahalanobis distances), NaN where the pixel is invalid or its ring
        holds fewer than 2 valid pixels.
    """
    data, mask, need0, inner_hw, outer_hw = needed_rows(
        block, valid, block_row0, core_row0, core_row1, image_height, inner, outer
    )
    bands, _, width = data.shape
    if cov is not None:
        cov = np.asarray(cov, dtype=np.float64)
        if cov.shape != (bands, bands):
            raise InputError(f"covariance shape {cov.shape} does not match {bands} bands")
    reporter = reporter or SILENT
    workers = max(1, int(workers))

    out = np.full((core_row1 - core_row0, width), np.nan, dtype=np.float32)
    if not mask.any():
        return out
    shift, whiten, unwhiten = _whitening(data, mask, cov, rcond, reporter)
    step = _rows_per_pass(width, bands, whiten.shape[1], outer_hw[0])
    total = core_row1 - core_row0
    for a in range(core_row0, core_row1, step):
        b = min(core_row1, a + step)
        h0, h1 = halo_rows(a, b, image_height, outer_hw)
        rows = slice(h0 - need0, h1 - need0)
        reporter.check()
        z = _lift(data[:, rows], mask[rows], shift, whiten)
        target = out[a - core_row0 : b - core_row0]
        part = reporter.stage((a - core_row0) / total, (b - core_row0) / total)
        if cov is None and _compiled_kernels().available():
            _compiled_scores(
                z,
                unwhiten,
                np.arange(a, b),
                h0,
                image_height,
                inner_hw,
                outer_hw,
                rcond,
                target,
                part,
                workers,
            )
        elif cov is None:
            lrx_numpy.full_scores(
                z, unwhiten, range(a, b), h0, image_height, inner_hw, outer_hw, rcond, target, part, workers
            )
        else:
            lrx_numpy.mean_scores(z, np.arange(a, b), h0, image_height, inner_hw, outer_hw, target, part)
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
    reporter step per chunk); ``workers`` threads share each step's work.
    """
    cube, valid = check_cube(cube, valid)
    _, outer_hw = check_windows(inner, outer)
    reporter = reporter or SILENT
    return score_by_row_chunks(
        cube,
        valid,
        outer_hw,
        row_chunk,
        reporter,
        lambda blk, ok, h0, r0, r1, rep: local_rx_block(
            blk,
            ok,
            h0,
            r0,
            r1,
            cube.shape[1],
            inner,
            outer,
            cov=cov,
            rcond=rcond,
            reporter=rep,
            workers=workers,
        ),
    )
