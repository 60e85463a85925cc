"""Batched small-matrix linear algebra for the numpy paths of the windowed detectors.

Only numpy's public API: a stack of Cholesky factorisations in which the matrices that are not
positive definite come back as NaN (found by halving the failing batch), the eigen
pseudo-inverse quadratic forms, and a scoped one-thread limit on BLAS for the time such stacks
are factored.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Optional

import numpy as np

_LOCK = threading.Lock()
_USERS = 0
_LIMITER: Any = None
_CONTROLLER: Any = None


def _controller():
    """threadpoolctl's view of the loaded BLAS libraries, built once (False when the package is
    absent: QGIS does not ship it, and the detectors then run with BLAS as it is)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        except Exception:  # ImportError, or a platform threadpoolctl cannot inspect
            _CONTROLLER = False
    return _CONTROLLER


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run BLAS/LAPACK on one thread inside this block only, then restore the caller's setting.

    Threading a 100 x 100 factorisation costs more in synchronisation than it gains (measured
    2.3x slower on 2 cores); the detectors get their parallelism from worker threads instead.
    OpenBLAS keeps one thread count per process, so concurrent workers share one limit,
    reference-counted: it is set when the first enters and restored when the last leaves, and
    the rest of the process (other QGIS algorithms) gets its threads back in between runs.
    Enter it in the thread that calls the detector, around the worker threads: numpy's OpenBLAS
    (0.3.23) ignores a change made from another thread once the main thread has made one, so a
    limit first set inside a worker may not hold. A no-op without threadpoolctl.
    """
    global _USERS, _LIMITER
    with _LOCK:
        if _USERS == 0:
            controller = _controller()
            _LIMITER = controller.limit(limits=1, user_api="blas") if controller else None
        _USERS += 1
    try:
        yield
    finally:
        with _LOCK:
            _USERS -= 1
            if _USERS == 0 and _LIMITER is not None:
                _LIMITER.restore_original_limits()
                _LIMITER = None


def blas_threads() -> Optional[int]:
    """BLAS threads in force now (None without threadpoolctl); for tests and logs."""
    controller = _controller()
    if not controller:
        return None
    infos = [info for info in controller.info() if info.get("user_api") == "blas"]
    return infos[0]["num_threads"] if infos else None


def cholesky_or_nan(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of matrices; those that are not positive definite come
    back as NaN.

    ``np.linalg.cholesky`` raises for the whole stack when one matrix fails, so a failing stack
    is halved until the failures are isolated: with f failures among N matrices this costs at
    most about (1 + f) N factorisations' time, and nothing when none fails (the common case).
    """
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        if a.shape[0] == 1:
            return np.full_like(a, np.nan)
        half = a.shape[0] // 2
        return np.concatenate([cholesky_or_nan(a[:half]), cholesky_or_nan(a[half:])])


def pinv_forms(a: np.ndarray, d: np.ndarray, rcond: float) -> np.ndarray:
    """d^T A^+ d per matrix, dropping eigen-directions below rcond x the largest eigenvalue."""
    eigval, eigvec = np.linalg.eigh(a)
    top = eigval[:, -1:]
    keep = (eigval > top * rcond) & (top > 0)
    proj = np.einsum("nji,nj->ni", eigvec, d)
    safe = np.where(keep, eigval, 1.0)
    return np.where(keep, proj * proj / safe, 0.0).sum(axis=1)
