"""fers_engine.blas.matmul: numpy's product, but through a BLAS that GSL's CBLAS cannot replace.

Inside Debian's QGIS the executable's libgslcblas provides the ``cblas_sgemm`` of Debian's numpy
(QGIS's numpy); ``LD_PRELOAD`` reproduces that here with the system Python. The products are
compared bit for bit (no timing): numpy's changes under GSL, ``matmul``'s does not.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from fers_engine.blas import matmul

REPO = Path(__file__).resolve().parents[2]
GSL = Path("/usr/lib/x86_64-linux-gnu/libgslcblas.so.0")
SYSTEM_PYTHON = Path("/usr/bin/python3")  # QGIS's Python on Debian, with Debian's numpy and scipy

PRODUCTS = r"""
import hashlib, numpy as np
from fers_engine.blas import matmul
rng = np.random.default_rng(0)
a = rng.normal(size=(64, 300)).astype(np.float32)
b = rng.normal(size=(300, 5000)).astype(np.float32)
print(hashlib.sha1(matmul(a, b).tobytes()).hexdigest(), hashlib.sha1((a @ b).tobytes()).hexdigest())
"""


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_is_the_matrix_product(dtype):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(7, 11)).astype(dtype), rng.normal(size=(11, 13)).astype(dtype)
    out = matmul(a, b)
    assert out.dtype == dtype and out.flags.c_contiguous and out.shape == (7, 13)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(matmul(a[:, :0], b[:0]), np.zeros((7, 13), dtype))
    np.testing.assert_allclose(matmul(np.asfortranarray(a), b), out, rtol=1e-5, atol=1e-5)  # not C-ordered


@pytest.mark.skipif(not GSL.exists() or not SYSTEM_PYTHON.exists(), reason="needs Debian's Python and GSL")
def test_matmul_escapes_gsl_cblas_interposition():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    plain = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", PRODUCTS], env=env, capture_output=True, text=True, timeout=120
    )
    gsl = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", PRODUCTS],
        env=dict(env, LD_PRELOAD=str(GSL)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plain.returncode == 0 and gsl.returncode == 0, plain.stderr + gsl.stderr
    ours_plain, numpy_plain = plain.stdout.split()
    ours_gsl, numpy_gsl = gsl.stdout.split()
    assert numpy_gsl != numpy_plain, "numpy's product did not go through GSL: the check proves nothing"
    assert ours_gsl == ours_plain
