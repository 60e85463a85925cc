"""Collaborative representation detector (CRD; Li & Du, IEEE TGRS 53(3), 2015) on dual windows.

Each pixel y is represented by the valid pixels x_i of its ring (the outer window minus the
inner guard window, ``windows.py``), both windows centred on the pixel:

    alpha = argmin ||y - X alpha||^2 + lam ||Gamma alpha||^2 = (X^T X + lam Gamma^2)^-1 X^T y,
    Gamma = diag(||y - x_i||),

so ring pixels unlike y are penalised, and the score is the residual ||y - X alpha||: background
is well represented by its neighbours, an anomaly is not. The data are used as given, as in the
paper (no sum-to-one row, no normalisation): alpha does not change when the data are scaled, so
one ``lam`` serves reflectance and digital numbers alike, and the score scales with the data.

Numerics. With beta_i = sqrt(lam) ||y - x_i|| alpha_i the problem is ridge regression with a unit
penalty on the scaled ring R, whose rows are r_i = x_i / (sqrt(lam) ||y - x_i||):

    residual = (I_B + R^T R)^-1 y              (band space, B x B)
             = y - R^T (I_n + R R^T)^-1 R y     (ring space, n x n)

Both systems are the identity plus a Gram matrix, so their eigenvalues are at least 1 and a
Cholesky never meets a singular matrix, whatever the ring (fewer pixels than bands, duplicates,
a flat region). The smaller one is solved: band space when B <= n, ring space otherwise, so a
pixel costs about min(B, n)^2 max(B, n) / 2 + min(B, n)^3 / 6 multiply-adds. A ring pixel equal
to y would get an unbounded weight, so each ||r_i||^2 is capped at ``WEIGHT_CAP``, which keeps
the systems' condition number below ~n x 1e10: a capped pixel lies within
1e-5 ||x_i|| / sqrt(lam) of y and already explains it, so its score stays ~0.

Invalid pixels (mask or non-finite) leave every ring and score NaN, as do pixels whose ring
holds fewer than ``MIN_RING`` valid pixels (as in local RX).

Edge rule: the windows stay centred at the image's edges too, and the part outside the image
counts as invalid, exactly like a nodata collar. Local RX shifts its windows back inside the
image (its ring covariance needs full rings); CRD does not need full rings (the systems above
are regular for any ring), and shifting would make the scores depend on whether a scene arrives
cropped to its data or inside a declared nodata collar, as every orthorectified product does
(bench/invariance.py measured up to 0.004 AUC with shifted windows): with centred windows a
collar of any width changes no score.

Speed: the compiled kernel (``crd_kernel``, numba) or the batched numpy path (``crd_numpy``),
in cost-sized chunks shared by ``workers`` threads with the caller's cancel checked between
chunks (``parallel.py``). Pixels are independent, so scores do not depend on block size, chunk
size or worker count at all, bit for bit.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from functools import partial
from typing import Optional, Tuple

import numpy as np

from ..choices import DEFAULT_CRD_LAMBDA
from ..errors import InputError
from ..progress import SILENT, Reporter
from .batched_linalg import single_threaded_blas
from .parallel import NUMPY_SLOWDOWN, pixel_chunks, pixels_per_chunk, run_chunks
from .stats import check_cube
from .windows import Window, check_windows, needed_rows, score_by_row_chunks

__all__ = [
    "DEFAULT_CRD_LAMBDA",
    "MIN_RING",
    "WEIGHT_CAP",
    "check_lambda",
    "crd",
    "crd_block",
    "work_per_pixel",
]

#: Pixels scoring NaN have fewer valid ring pixels than this (local RX's rule).
MIN_RING = 2
#: Upper bound on a scaled ring pixel's squared norm ||x_i||^2 / (lam ||y - x_i||^2).
WEIGHT_CAP = 1e10
#: Budget (bytes) of the float64 pixel copies of the rows scored in one pass.
PASS_BYTES = 128 * 2**20


def check_lambda(lam: float) -> float:
    """``lam`` as a float, or an InputError unless it is finite and positive."""
    try:
        value = float(lam)
    except (TypeError, ValueError):
        raise InputError(f"CRD lambda must be a number, got {lam!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"CRD lambda must be a finite number above 0, got {lam!r}")
    return value


def use_band_space(bands: int, inner: Window, outer: Window) -> bool:
    """True when the band-space system is the smaller (B <= ring pixels)."""
    (hi, wi), (ho, wo) = check_windows(inner, outer)
    return bands <= ho * wo - hi * wi


def work_per_pixel(bands: int, ring: int) -> float:
    """Multiply-adds per pixel: gathering and weighting the ring, the Gram of the smaller system
    and its Cholesky."""
    small, large = min(bands, ring), max(bands, ring)
    return 3.0 * ring * bands + small * small * large / 2 + small**3 / 6


def _kernel(compiled_path: bool):
    """``crd_kernel.scores`` (numba) or ``crd_numpy.scores``; numba is imported only here."""
    if compiled_path:
        from . import crd_kernel

        return crd_kernel.scores
    from . import crd_numpy

    return crd_numpy.scores


def _compiled_available() -> bool:
    from . import compiled

    return compiled.available()


def crd_block(
    block: np.ndarray,
    valid: Optional[np.ndarray],
    block_row0: int,
    core_row0: int,
    core_row1: int,
    image_height: int,
    inner: Window = 3,
    outer: Window = 15,
    lam: float = DEFAULT_CRD_LAMBDA,
    reporter: Optional[Reporter] = None,
    workers: int = 1,
) -> np.ndarray:
    """float32 (core_row1 - core_row0, cols) CRD scores of image rows [core_row0, core_row1).

    Args:
        block: (B, rows, cols) image rows [block_row0, block_row0 + rows); must cover
            ``halo_rows(core_row0, core_row1, image_height, outer, centred=True)`` (absolute rows;
            columns always the full image width).
        valid: bool (rows, cols), True where usable (non-finite pixels are excluded anyway).
        inner, outer: guard and outer windows, odd ints or (h, w) pairs.
        lam: the distance-weighted regularisation (finite, > 0).
        reporter: cancel is checked between chunks of about ``parallel.WORK_PER_CHUNK``.
        workers: threads sharing the chunks.

    Returns:
        Residual norms ||y - X alpha||, NaN where the pixel is invalid or its ring holds fewer
        than ``MIN_RING`` valid pixels.
    """
    data, mask, need0, inner_hw, outer_hw = needed_rows(
        block, valid, block_row0, core_row0, core_row1, image_height, inner, outer, centred=True
    )
    lam = check_lambda(lam)
    reporter = reporter or SILENT
    workers = max(1, int(workers))
    bands, _, width = data.shape
    out = np.full((core_row1 - core_row0, width), np.nan, dtype=np.float32)
    if not mask.any():
        return out

    ring = outer_hw[0] * outer_hw[1] - inner_hw[0] * inner_hw[1]
    dual = use_band_space(bands, inner_hw, outer_hw)
    compiled_path = _compiled_available()
    kernel = _kernel(compiled_path)
    cost = work_per_pixel(bands, ring) * (1.0 if compiled_path else NUMPY_SLOWDOWN)
    pixels = pixels_per_chunk(cost)
    # centred windows on an image inside a virtual nodata collar of half the outer window
    # (module docstring): x holds the collar, so no window is ever shifted or clipped
    (pad_r, pad_c), (half_ir, half_ic) = (
        (outer_hw[0] // 2, outer_hw[1] // 2),
        (inner_hw[0] // 2, inner_hw[1] // 2),
    )
    padded_cols = np.arange(width + 2 * pad_c)
    outer_cols = padded_cols - pad_c
    inner_cols = padded_cols - half_ic
    step = max(1, PASS_BYTES // (8 * width * bands) - outer_hw[0] + 1)
    total = core_row1 - core_row0
    for a in range(core_row0, core_row1, step):
        b = min(core_row1, a + step)
        reporter.check()
        x, ok = _collared_pixels(data, mask, need0, a - pad_r, b + pad_r, pad_c)
        rows = np.arange(a, b) - (a - pad_r)  # the pixels' rows in x
        work = partial(
            _score_chunk,
            kernel,
            x,
            ok,
            rows,
            rows - pad_r,
            rows - half_ir,
            outer_cols,
            inner_cols,
            outer_hw,
            inner_hw,
            lam,
            dual,
            pad_c,
            out[a - core_row0 : b - core_row0],
        )
        part = reporter.stage((a - core_row0) / total, (b - core_row0) / total)
        with single_threaded_blas() if not compiled_path else nullcontext():
            run_chunks(work, pixel_chunks(b - a, width, pixels, workers), workers, part)
    return out


def _score_chunk(
    kernel,
    x,
    ok,
    rows,
    outer_rows,
    inner_rows,
    outer_cols,
    inner_cols,
    outer,
    inner,
    lam,
    dual,
    col_offset,
    target,
    chunk: Tuple[int, int, int, int],
) -> None:
    """Score one (r0, r1, c0, c1) chunk of a pass into ``target`` (rows are relative to ``x``;
    image column c is column c + ``col_offset`` of ``x``)."""
    r0, r1, c0, c1 = chunk
    target[r0:r1, c0:c1] = kernel(
        x,
        ok,
        rows[r0:r1],
        (c0 + col_offset, c1 + col_offset),
        outer_rows[r0:r1],
        inner_rows[r0:r1],
        outer_cols,
        inner_cols,
        outer,
        inner,
        lam,
        WEIGHT_CAP,
        dual,
        MIN_RING,
    )


def _collared_pixels(
    data: np.ndarray, mask: np.ndarray, row0: int, first: int, stop: int, pad_cols: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Image rows [first, stop) of ``data`` (whose row 0 is image row ``row0``) as float64
    (rows, cols + 2 pad_cols, B) C-contiguous pixels inside a nodata collar, zero where masked,
    and their mask: rows outside the image and the ``pad_cols`` columns either side are
    invalid, as a declared nodata collar would be."""
    bands, rows, width = data.shape
    x = np.zeros((stop - first, width + 2 * pad_cols, bands))
    ok = np.zeros((stop - first, width + 2 * pad_cols), dtype=bool)
    lo, hi = max(first, row0), min(stop, row0 + rows)
    if hi > lo:
        inside = mask[lo - row0 : hi - row0]
        target = x[lo - first : hi - first, pad_cols : pad_cols + width]
        target[...] = data[:, lo - row0 : hi - row0].transpose(1, 2, 0)
        target[~inside] = 0.0
        ok[lo - first : hi - first, pad_cols : pad_cols + width] = inside
    return x, ok


def crd(
    cube: np.ndarray,
    valid: Optional[np.ndarray] = None,
    inner: Window = 3,
    outer: Window = 15,
    lam: float = DEFAULT_CRD_LAMBDA,
    reporter: Optional[Reporter] = None,
    row_chunk: Optional[int] = None,
    workers: int = 1,
) -> np.ndarray:
    """float32 (H, W) CRD scores of a (B, H, W) cube; NaN where invalid.

    ``row_chunk`` output rows are scored per step with their halo (bounded memory, one reporter
    step each); ``workers`` threads share each step.
    """
    cube, valid = check_cube(cube, valid)
    _, outer_hw = check_windows(inner, outer)
    lam = check_lambda(lam)
    reporter = reporter or SILENT
    return score_by_row_chunks(
        cube,
        valid,
        outer_hw,
        row_chunk,
        reporter,
        lambda blk, ok, h0, r0, r1, rep: crd_block(
            blk, ok, h0, r0, r1, cube.shape[1], inner, outer, lam=lam, reporter=rep, workers=workers
        ),
        centred=True,
    )
