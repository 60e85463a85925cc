"""Matrix products through the BLAS that the process really provides, even inside QGIS.

numpy calls BLAS through the CBLAS interface (``cblas_sgemm``). Debian's and Ubuntu's QGIS
executables (``qgis``, ``qgis_process``) link GSL, whose ``libgslcblas`` exports the same CBLAS
symbols as a plain reference implementation; the executable's libraries come first in the
dynamic linker's global scope, so inside QGIS numpy's products bind to GSL's loops instead of
OpenBLAS, several times slower (``LD_PRELOAD=libgslcblas.so.0`` reproduces it outside QGIS;
``tests/fers_engine/test_blas.py`` checks that ``matmul`` is not affected).
scipy's BLAS wrappers call the Fortran symbols (``sgemm_``), which GSL does not export, so they
reach OpenBLAS wherever scipy is installed (QGIS on Linux ships it); without scipy (QGIS on
Windows and macOS, where symbols do not interpose this way) numpy's ``@`` is used.
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no branch - depends on the installation
    from scipy.linalg import blas as _blas
except ImportError:  # pragma: no cover - QGIS on Windows/macOS may lack scipy
    _blas = None

_GEMM = {np.dtype(np.float32): "sgemm", np.dtype(np.float64): "dgemm"}


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D float32/float64 arrays, C-contiguous result; no copy of C-ordered inputs.

    Fortran BLAS is column-major: ``(a @ b).T = b.T @ a.T``, and the transposes of C-ordered
    arrays are Fortran-ordered views, so the product is computed as ``gemm(b.T, a.T).T``.
    """
    gemm = _GEMM.get(a.dtype) if _blas is not None and a.dtype == b.dtype else None
    if (
        gemm is None
        or a.ndim != 2
        or b.ndim != 2
        or 0 in a.shape
        or 0 in b.shape
        or not (a.flags.c_contiguous and b.flags.c_contiguous)
    ):
        return a @ b
    return getattr(_blas, gemm)(1.0, b.T, a.T).T
