"""The compiled small-matrix algebra the kernels share: Cholesky, back substitution, Gram."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.detectors import compiled

pytestmark = pytest.mark.skipif(not compiled.available(), reason="numba is not installed")


def _augmented(c: np.ndarray, d: np.ndarray) -> np.ndarray:
    k = c.shape[0]
    low = np.zeros((k + 1, max(k, 1)))
    low[:k, :k] = np.tril(c)
    low[k, :k] = d
    return low


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7, 8, 9, 13])
def test_cholesky_rows_equal_lapack_and_reduce_the_augmented_row(k):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(3 * k + 2, k))
    c, d = x.T @ x, rng.normal(size=k)
    low = _augmented(c, d)
    assert compiled.cholesky_rows(low, k, 1e-12)
    np.testing.assert_allclose(np.tril(low[:k, :k]), np.linalg.cholesky(c), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(low[k, :k] @ low[k, :k], d @ np.linalg.solve(c, d), rtol=1e-12)


def test_cholesky_rows_refuse_indefinite_and_ill_conditioned_matrices():
    c = np.diag([4.0, 1.0, -1.0, 2.0, 3.0])
    assert not compiled.cholesky_rows(_augmented(c, np.ones(5)), 5, 1e-10)
    c = np.diag([1.0, 1.0, 1e-12, 1.0])  # squared pivots spread 1e12 > 1 / rcond
    assert not compiled.cholesky_rows(_augmented(c, np.ones(4)), 4, 1e-10)
    assert compiled.cholesky_rows(_augmented(c, np.ones(4)), 4, 1e-14)


@pytest.mark.parametrize("m,length", [(1, 5), (3, 7), (4, 1), (5, 9), (8, 16), (13, 30), (101, 50)])
def test_gram_plus_identity_fills_the_lower_triangle(m, length):
    src = np.random.default_rng(m).normal(size=(m + 2, length + 3))  # rows and columns beyond m, length
    low = np.full((m + 1, max(m, 1) + 1), np.nan)
    compiled.gram_plus_identity(src, m, length, low)
    rows, cols = np.tril_indices(m)
    expected = src[:m, :length] @ src[:m, :length].T + np.eye(m)
    np.testing.assert_allclose(low[rows, cols], expected[rows, cols], rtol=1e-12, atol=1e-12)
    assert np.isnan(low[m]).all()  # the augmented row is left alone


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_back_substitution_solves_the_factored_system(k):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(3 * k + 2, k))
    c, d = x.T @ x, rng.normal(size=k)
    low = _augmented(c, d)
    assert compiled.cholesky_rows(low, k, 0.0)
    out = np.empty(k)
    compiled.back_substitute(low, k, out)
    np.testing.assert_allclose(out, np.linalg.solve(c, d), rtol=1e-10)
