"""Streamed background statistics and the regularised inverse covariance.

Statistics are accumulated block by block so that a raster never has to sit in memory whole.
Each block contributes its own mean and *centred* scatter, merged with Chan et al.'s parallel
formula in float64: summing raw second moments instead would cancel catastrophically on raw
digital numbers (mean ~1e4, spread ~10), which is exactly what sensors deliver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from ..io.blocks import iter_row_blocks
from ..progress import SILENT, Reporter

#: Pixels per internal chunk of an update: bounds the float64 temporary (B x chunk) while
#: keeping each BLAS call large enough to run at full speed.
_CHUNK_PIXELS = 8192

#: Relative eigenvalue cut of the regularised inverse (see ``regularised_inverse``).
DEFAULT_RCOND = 1e-10

#: Reads rows ``[row0, row1)``: ``({variant: float32 (B, rows, W)}, bool valid (rows, W) or None)``.
#: A plain cube has one variant; the enhanced scene of the Hadamard fusion has two.
BlockReader = Callable[[int, int], Tuple[Dict[str, np.ndarray], Optional[np.ndarray]]]


def check_cube(cube, valid=None):
    """(cube as an array, valid mask as bool or None), or a clear InputError on a wrong shape."""
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise InputError(f"expected a (bands, rows, cols) cube, got shape {cube.shape}")
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != cube.shape[1:]:
            raise InputError(f"valid mask shape {valid.shape} does not match cube {cube.shape[1:]}")
    return cube, valid


def usable_pixels(block: np.ndarray, valid: Optional[np.ndarray]) -> np.ndarray:
    """Valid mask (rows, cols) narrowed to pixels whose every band is finite.

    The reader's mask should already exclude NaN, but a NaN that slips through would poison
    every statistic it touches, so detectors re-check rather than trust.
    """
    if block.ndim != 3:
        raise InputError(f"expected a bands-first block (B, rows, cols), got shape {block.shape}")
    finite = np.isfinite(block).all(axis=0)
    if valid is None:
        return finite
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != block.shape[1:]:
        raise InputError(f"valid mask shape {valid.shape} does not match block {block.shape[1:]}")
    return finite & valid


class BackgroundStats:
    """Mean and covariance of the valid pixels of a stream of blocks.

    ``update`` may be called with blocks of any height; ``merge`` combines accumulators built
    in parallel (e.g. by worker processes) with the same formula.
    """

    def __init__(self, bands: int, device: Optional[str] = None) -> None:
        if bands < 1:
            raise InputError(f"need at least one band, got {bands}")
        self.bands = int(bands)
        self.count = 0
        self._mean = np.zeros(self.bands, dtype=np.float64)
        self._scatter = np.zeros((self.bands, self.bands), dtype=np.float64)
        from .device import resolve_device

        # On a GPU the scatter products (B^2 per pixel, the bulk of a statistics pass) run
        # there in float64; the merge of the small per-chunk results stays here.
        self._device = resolve_device(device)

    def update(self, block: np.ndarray, valid: Optional[np.ndarray] = None) -> None:
        """Add the valid, finite pixels of one (B, h, w) block."""
        block = np.asarray(block)
        if block.ndim != 3 or block.shape[0] != self.bands:
            raise InputError(f"block shape {block.shape} does not match {self.bands} bands (B, rows, cols)")
        mask = usable_pixels(block, valid).ravel()
        pixels = block.reshape(self.bands, -1)
        if not mask.all():
            pixels = pixels[:, mask]
        if self._device is not None:
            self._add_torch(pixels)
            return
        for start in range(0, pixels.shape[1], _CHUNK_PIXELS):
            self._add(pixels[:, start : start + _CHUNK_PIXELS])

    def _add_torch(self, pixels: np.ndarray) -> None:
        """The same chunked Chan merge, with each chunk's mean and scatter computed on the
        torch device (one transfer per block, float64 arithmetic as on the CPU)."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self._device)
        chunk = _CHUNK_PIXELS * 8
        for start in range(0, x.shape[1], chunk):
            # a copy even when x is already float64 on the CPU: x may share the caller's array
            xc = x[:, start : start + chunk].to(torch.float64, copy=True)
            if xc.shape[1] == 0:
                continue
            mean_b = xc.mean(dim=1)
            xc -= mean_b[:, None]
            scatter_b = xc @ xc.T
            self._combine(xc.shape[1], mean_b.cpu().numpy(), scatter_b.cpu().numpy())

    def _add(self, x: np.ndarray) -> None:
        """Chan merge of one (B, n) chunk: centred in float64 before the scatter product."""
        n = x.shape[1]
        if n == 0:
            return
        xc = x.astype(np.float64)  # always a copy, safe to centre in place
        mean_b = xc.mean(axis=1)
        xc -= mean_b[:, None]
        scatter_b = np.dot(xc, xc.T)  # np.dot on (A, A.T) runs BLAS syrk: half the flops
        self._combine(n, mean_b, scatter_b)

    def _combine(self, n_b: int, mean_b: np.ndarray, scatter_b: np.ndarray) -> None:
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean += delta * (n_b / n)
        self._scatter += scatter_b
        if n_a:
            self._scatter += np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    def merge(self, other: BackgroundStats) -> None:
        """Fold another accumulator into this one (same band count)."""
        if other.bands != self.bands:
            raise InputError(f"cannot merge statistics of {other.bands} and {self.bands} bands")
        if other.count:
            self._combine(other.count, other._mean.copy(), other._scatter)

    @property
    def mean(self) -> np.ndarray:
        """float64 (B,) mean of the valid pixels seen so far."""
        self._require(1)
        return self._mean.copy()

    @property
    def scatter(self) -> np.ndarray:
        """float64 (B, B) centred sum of outer products."""
        return self._scatter.copy()

    def covariance(self, ddof: int = 1) -> np.ndarray:
        """float64 (B, B) covariance; ddof=1 (unbiased) matches np.cov and SPy."""
        self._require(ddof + 1)
        cov = self._scatter / (self.count - ddof)
        return (cov + cov.T) * 0.5  # exact symmetry: eigh and Cholesky rely on it

    def _require(self, needed: int) -> None:
        if self.count < needed:
            raise InputError(
                f"only {self.count} valid pixel(s) for background statistics, need at least "
                f"{needed}: the input is empty, all nodata, or all NaN"
            )


def stream_statistics(
    read: BlockReader,
    height: int,
    bands: int,
    variants: Sequence[str],
    block_rows: int,
    reporter: Reporter = SILENT,
    device: Optional[str] = None,
) -> Dict[str, BackgroundStats]:
    """One streamed pass over row blocks: each variant's mean and covariance.

    Refuses, with one line, a stream with fewer than two valid pixels: there is no background
    to compare with.
    """
    blocks = list(iter_row_blocks(height, block_rows))
    stats = {v: BackgroundStats(bands, device=device) for v in variants}
    for i, (r0, r1, _, _) in enumerate(blocks):
        data, valid = read(r0, r1)
        for v in variants:
            stats[v].update(data[v], valid)
        reporter.step((i + 1) / len(blocks))
    for v in variants:
        if stats[v].count < 2:
            raise InputError(
                "no valid pixel to compute the background from (every pixel is nodata or NaN)"
                if stats[v].count == 0
                else "only one valid pixel: there is no background to compare it with"
            )
    return stats


@dataclass(frozen=True)
class InverseInfo:
    """What ``regularised_inverse`` did, for the pipeline's log."""

    regularised: bool  #: True when eigenvalues were cut (singular or ill-conditioned input)
    condition: float  #: largest / smallest eigenvalue (inf when singular)
    rank: int  #: eigen-directions kept
    rcond: float  #: the relative cut that was applied

    def describe(self) -> str:
        if not self.regularised:
            return f"covariance condition number {self.condition:.3g}"
        return (
            f"covariance is singular or ill-conditioned (condition {self.condition:.3g}); "
            f"kept {self.rank} eigen-directions above {self.rcond:g} x the largest"
        )


def eigen_parts(cov: np.ndarray, rcond: float = DEFAULT_RCOND) -> Tuple[np.ndarray, np.ndarray, InverseInfo]:
    """Kept eigenvalues (k,), eigenvectors (B, k) and the info of the rule below.

    Rule: with eigenvalues l_1 >= ... >= l_B of the (symmetrised) covariance, directions with
    l_k <= rcond * l_1 are dropped (inverse weight 0, as in ``np.linalg.pinv``); the rest are
    kept. When none is dropped the matrix is well-conditioned and the inverse built from these
    parts equals ``np.linalg.inv`` to rounding. Dropping rather than flooring is deliberate: a
    duplicated or constant band has an exactly-zero-variance direction whose only content is
    float32 rounding noise, and a floored weight of 1/(rcond*l_1) would let that noise dominate
    every score.
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise InputError(f"covariance must be a non-empty square matrix, got shape {cov.shape}")
    if not np.isfinite(cov).all():
        raise InputError("covariance contains NaN or inf: the input has non-finite values")
    eigval, eigvec = np.linalg.eigh((cov + cov.T) * 0.5)
    top = float(eigval[-1])
    if top <= 0.0:
        # constant data: no direction carries information and every score is 0
        info = InverseInfo(True, float("inf"), 0, rcond)
        return eigval[:0], eigvec[:, :0], info
    low = float(eigval[0])
    condition = top / low if low > 0 else float("inf")
    keep = eigval > top * rcond
    info = InverseInfo(not keep.all(), condition, int(keep.sum()), rcond)
    return eigval[keep], eigvec[:, keep], info


def regularised_inverse(cov: np.ndarray, rcond: float = DEFAULT_RCOND) -> Tuple[np.ndarray, InverseInfo]:
    """float64 (B, B) inverse covariance that never holds NaN/inf (rule: ``eigen_parts``).

    Built from the eigen-decomposition even when well-conditioned: it then equals
    ``np.linalg.inv`` to rounding and tracks SPy's ``rx`` (which uses ``np.linalg.pinv``, i.e.
    the same decomposition) more closely than LU does on the cond ~1e8 covariances of real
    AVIRIS scenes.
    """
    eigval, eigvec, info = eigen_parts(cov, rcond)
    inv = (eigvec / eigval) @ eigvec.T
    return (inv + inv.T) * 0.5, info
