"""bench/cholesky.py compares like with like: its kernel forms equal the exact quadratic forms."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
cholesky = pytest.importorskip("cholesky")


def test_kernel_forms_equal_exact_forms():
    if not cholesky.compiled.available():
        pytest.skip("numba is not installed")
    mats, offsets = cholesky.spd_batch(4, 9)
    exact = np.einsum("nk,nk->n", offsets, np.linalg.solve(mats, offsets[..., None])[..., 0])
    np.testing.assert_allclose(cholesky.kernel_forms(mats, offsets), exact, rtol=1e-12)
