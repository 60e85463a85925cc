"""From a scene to what the enhancers take: one pass that samples pixels, finds dead bands,
builds the band matrix onto the model's grid and fits the scene-wide normalisation (numpy only).

Dead bands: a band that is constant over the scene (a dead detector column, an all-zero
water-vapour band written by a processor) carries no information, and RX ignores it (it falls
out of the pseudo-inverse). Resampled onto the model's grid it would not: it pulls its
neighbours in the model's bands towards zero, a dip no training scene had, and five such bands
moved the enhanced AUC by up to 0.007. So dead bands are found in the sample and replaced, in
the band matrix, by a linear interpolation between their nearest live neighbours.

The pipeline (streamed, ``collect_sample`` over row blocks) and the benchmarks / training (whole
cubes in memory) call the same functions, so both see the same sample and the same transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..io.checks import CONSTANT_SCENE
from .normalise import DEFAULT as NORM_DEFAULT, Normaliser

#: A band is dead when its spread over the sampled pixels is below this fraction of the
#: median band's (all-zero and constant bands: exactly 0).
DEAD_RELATIVE_STD = 1e-6


#: Bands whose spread ``dead_bands`` computes at once: its float64 working copies then stay a few
#: MiB however large the sample (a whole-sample float64 pass held about 200 MiB on 200 bands).
_DEAD_BAND_CHUNK = 8


def dead_bands(sample: np.ndarray) -> np.ndarray:
    """bool (B,): bands of a (B, n) pixel sample that are constant (or carry no finite value)."""
    sample = np.asarray(sample)
    if sample.ndim != 2:
        raise ValueError("dead_bands expects a (bands, pixels) sample")
    if sample.shape[1] < 2:
        return np.zeros(sample.shape[0], bool)
    std = np.zeros(sample.shape[0])
    for b0 in range(0, sample.shape[0], _DEAD_BAND_CHUNK):
        part = sample[b0 : b0 + _DEAD_BAND_CHUNK].astype(np.float64)
        finite = np.isfinite(part).all(1)
        std[b0 : b0 + _DEAD_BAND_CHUNK] = np.where(finite, part.std(axis=1), 0.0)
    live_std = std[std > 0]
    if live_std.size == 0:
        return np.ones(sample.shape[0], bool)
    return std <= DEAD_RELATIVE_STD * float(np.median(live_std))


def repair_matrix(dead: np.ndarray, wavelengths: Optional[np.ndarray] = None) -> np.ndarray:
    """(B, B) float64 M with ``M @ spectrum`` = the spectrum with each dead band replaced by a
    linear interpolation of its nearest live neighbours (by wavelength when known, else by band
    index; the nearest live band beyond the ends). Live rows are the identity."""
    dead = np.asarray(dead, bool)
    b = dead.size
    m = np.eye(b)
    live = np.flatnonzero(~dead)
    if live.size == 0:
        raise InputError("every band of the input is constant: there is no spectrum to detect anomalies in")
    if not dead.any():
        return m
    axis = np.arange(b, dtype=np.float64) if wavelengths is None else np.asarray(wavelengths, np.float64)
    order = live[np.argsort(axis[live], kind="stable")]
    pos = axis[order]
    for d in np.flatnonzero(dead):
        m[d, d] = 0.0
        k = int(np.searchsorted(pos, axis[d]))
        if k == 0:
            m[d, order[0]] = 1.0
        elif k >= order.size:
            m[d, order[-1]] = 1.0
        else:
            lo, hi = order[k - 1], order[k]
            t = 0.0 if pos[k] == pos[k - 1] else (axis[d] - pos[k - 1]) / (pos[k] - pos[k - 1])
            m[d, lo] += 1.0 - t
            m[d, hi] += t
    return m


def sample_stride(height: int, width: int, values_per_pixel: int, cap: int) -> int:
    """Every how many pixels (in row-major scene order) the sample takes one."""
    return max(1, -(-height * width * values_per_pixel // max(1, cap - values_per_pixel)))


def block_sample(block: np.ndarray, valid: np.ndarray, row0: int, width: int, stride: int) -> np.ndarray:
    """(bands, n) float32: the sample's pixels among scene rows starting at ``row0`` of a block
    ``(B, rows, W)``, every ``stride``-th pixel in scene order that is valid."""
    index = np.arange(row0 * width, (row0 + valid.shape[0]) * width)
    pick = (index % stride == 0) & valid.ravel()
    return np.asarray(block, np.float32).reshape(block.shape[0], -1)[:, pick]


def collect_sample(
    read: Callable[[int, int], Tuple[np.ndarray, np.ndarray]],
    height: int,
    width: int,
    bands: int,
    stride: int,
    block_rows: int,
    step: Optional[Callable[[float], None]] = None,
) -> np.ndarray:
    """(bands, n) float32 values of every ``stride``-th valid pixel in scene order, read in row
    blocks through ``read(row0, row1) -> (block (B, rows, W), valid (rows, W))``. The sample
    depends only on the data, never on the block size (a cluster gathers it from its own blocks
    with ``block_sample`` and gets the same)."""
    # one preallocated buffer (at most one pixel in ``stride``), so the sample is never held twice
    out = np.empty((bands, -(-height * width // stride)), np.float32)
    n = 0
    block_rows = max(1, int(block_rows))
    starts = list(range(0, height, block_rows))
    for i, r0 in enumerate(starts):
        block, valid = read(r0, min(height, r0 + block_rows))
        part = block_sample(block, valid, r0, width, stride)
        out[:, n : n + part.shape[1]] = part
        n += part.shape[1]
        if step is not None:
            step((i + 1) / len(starts))
    return out[:, :n].copy() if n < out.shape[1] // 2 else out[:, :n]


@dataclass(frozen=True)
class Grid:
    """A model's input side: its band count, its wavelengths (None: a band-axis grid) and the
    parameters of its scene-wide normalisation (normalise.DEFAULT's keys)."""

    bands: int
    wavelengths: Optional[np.ndarray] = None
    normalisation: Optional[dict] = None

    def new_normaliser(self, check: Optional[Callable[[], None]] = None) -> Normaliser:
        """The scene-wide normaliser of this grid; ``check`` (a reporter's cancel check) is called
        by its sample-thinning loop."""
        params = dict(NORM_DEFAULT)
        params.update({k: v for k, v in (self.normalisation or {}).items() if k in params})
        return Normaliser(**params, check=check)


def input_matrix(
    grid: Grid,
    count: int,
    wavelengths: Optional[np.ndarray] = None,
    band_mode: str = "resample",
    dead: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, str]:
    """(model bands x input bands) matrix onto ``grid``; ``dead`` input bands are first replaced
    by their live neighbours (``repair_matrix``)."""
    if band_mode == "first":
        from ..io.bands import first_n

        idx = first_n(count, grid.bands)
        matrix = np.zeros((grid.bands, count), np.float32)
        matrix[np.arange(grid.bands), idx] = 1.0
        desc = f"first {grid.bands} of {count} bands (paper protocol)"
    elif band_mode == "resample":
        from ..io.bands import resampling_matrix

        matrix, how = resampling_matrix(wavelengths, count, grid.wavelengths, grid.bands)
        matrix = np.asarray(matrix, np.float32)
        desc = f"{count} input bands resampled to the model's {grid.bands}: {how}"
    else:
        raise InputError(f"unknown band mode '{band_mode}' (use resample or first)")
    if dead is not None and np.any(dead):
        matrix = (matrix.astype(np.float64) @ repair_matrix(dead, wavelengths)).astype(np.float32)
    return matrix, desc


@dataclass
class FittedInput:
    """How one scene enters an enhancer: band matrix (model bands x input bands), normaliser,
    the input bands found dead, and a sentence for the log."""

    matrix: np.ndarray
    normaliser: Normaliser
    dead: np.ndarray
    description: str

    def apply(self, cube: np.ndarray) -> np.ndarray:
        """A whole raw cube (B_in, H, W) -> the normalised cube on the model's grid."""
        return self.normaliser.apply(np.tensordot(self.matrix, cube, axes=(1, 0)).astype(np.float32))


def fit_input(
    grid: Grid,
    count: int,
    wavelengths: Optional[np.ndarray],
    sample: np.ndarray,
    band_mode: str = "resample",
    reporter=None,
) -> FittedInput:
    """Band matrix and normaliser of a scene from its raw pixel sample ``(B_in, n)``."""
    if sample.shape[1] == 0:
        raise InputError("the raster has no valid pixel (all nodata or NaN)")
    dead = dead_bands(sample)
    if dead.all():  # a constant scene: nothing to repair from; the scores will be flat
        if reporter is not None:
            reporter.warning(CONSTANT_SCENE)
        dead = np.zeros_like(dead)
    matrix, desc = input_matrix(grid, count, wavelengths, band_mode, dead)
    normaliser = grid.new_normaliser(None if reporter is None else reporter.check)
    normaliser.update((matrix @ sample)[:, None, :])
    if reporter is not None:
        reporter.info(desc)
        if dead.any():
            shown = ", ".join(str(int(i) + 1) for i in np.flatnonzero(dead)[:12])
            more = "" if dead.sum() <= 12 else f" and {int(dead.sum()) - 12} more"
            reporter.info(
                f"{int(dead.sum())} dead (constant) input band(s) replaced by their live "
                f"neighbours for the enhancers: {shown}{more} (1-based)"
            )
    return FittedInput(matrix, normaliser, dead, desc)


def grid_stride(grid: Grid, height: int, width: int) -> int:
    """The sample stride of a scene ``height`` x ``width`` for a model's grid (its normaliser's cap)."""
    return sample_stride(height, width, grid.bands, grid.new_normaliser().cap)


def scene_sample(
    grid: Grid, read, height: int, width: int, count: int, block_rows: int, step=None
) -> np.ndarray:
    """The raw pixel sample ``fit_input`` takes: every k-th valid pixel in scene order, k from the
    normaliser's cap, read in row blocks through ``read(row0, row1) -> (block, valid)``."""
    stride = grid_stride(grid, height, width)
    return collect_sample(read, height, width, count, stride, block_rows, step)


def fit_cube(
    grid: Grid,
    cube: np.ndarray,
    valid: np.ndarray,
    wavelengths=None,
    band_mode: str = "resample",
    reporter=None,
) -> FittedInput:
    """``fit_input`` for a whole cube in memory, with the same sample the pipeline draws."""
    b, h, w = cube.shape
    sample = scene_sample(grid, lambda r0, r1: (cube[:, r0:r1], valid[r0:r1]), h, w, b, h)
    return fit_input(grid, b, wavelengths, sample, band_mode, reporter)
