"""The local-RX kernel's per-pixel Cholesky against LAPACK's, one small matrix at a time.

Local RX factors one (bands x bands) ring covariance per pixel, so this factorisation bounds its
speed. ``compiled.cholesky_rows`` (numba, four rows per pass) is timed against numpy's
batched ``cholesky`` (LAPACK ``dpotrf`` per matrix, single-threaded as ``lrx.py`` runs it) on
the same well-conditioned SPD matrices, and both give the same quadratic form. Prints a table;
writes nothing.

    .venv/bin/python bench/cholesky.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fers_engine.detectors import compiled  # noqa: E402
from fers_engine.detectors.batched_linalg import single_threaded_blas  # noqa: E402


def spd_batch(count: int, k: int, seed: int = 0):
    """(matrices (count, k, k), offsets (count, k)): sample covariances of 3k points."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 3 * k, k))
    return np.einsum("nij,nik->njk", x, x), rng.normal(size=(count, k))


def kernel_forms(mats: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """d^T C^-1 d through the kernel's row-wise Cholesky with the augmented row."""
    count, k, _ = mats.shape
    low = np.empty((k + 1, k))
    out = np.empty(count)
    for n in range(count):
        low[:k] = np.tril(mats[n])
        low[k] = offsets[n]
        if not compiled.cholesky_rows(low, k, 1e-12):
            raise RuntimeError("a test matrix was not positive definite")
        out[n] = low[k] @ low[k]
    return out


def timed_kernel(mats: np.ndarray, offsets: np.ndarray) -> float:
    """Seconds per matrix, the copy into the work buffer included (the kernel builds it too)."""
    count, k, _ = mats.shape
    low = np.empty((count, k + 1, k))
    low[:, :k] = np.tril(mats)
    low[:, k] = offsets
    work = np.empty((k + 1, k))
    t0 = time.perf_counter()
    for n in range(count):
        work[:] = low[n]
        compiled.cholesky_rows(work, k, 1e-12)
    return (time.perf_counter() - t0) / count


def timed_lapack(mats: np.ndarray) -> float:
    with single_threaded_blas():
        t0 = time.perf_counter()
        np.linalg.cholesky(mats)
        return (time.perf_counter() - t0) / mats.shape[0]


def main() -> int:
    if not compiled.available():
        print(
            "numba is not installed: nothing to compare (pip install 'fers-hsi[fast]' in a virtual "
            "environment)"
        )
        return 1
    print(
        "| bands | kernel (us / matrix) | LAPACK batched (us / matrix) | LAPACK / kernel | max rel. diff of "
        "d^T C^-1 d |"
    )
    print("|---|---|---|---|---|")
    for k in (50, 100, 200):
        mats, offsets = spd_batch(2000 if k <= 100 else 500, k)
        exact = np.einsum("nk,nk->n", offsets, np.linalg.solve(mats, offsets[..., None])[..., 0])
        diff = float(np.max(np.abs(kernel_forms(mats[:50], offsets[:50]) / exact[:50] - 1)))
        kern = min(timed_kernel(mats, offsets) for _ in range(3))
        lap = min(timed_lapack(mats) for _ in range(3))
        print(f"| {k} | {kern * 1e6:.1f} | {lap * 1e6:.1f} | {lap / kern:.2f}x | {diff:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
