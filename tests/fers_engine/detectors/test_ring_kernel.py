"""The compiled local-RX kernel's pieces: its Cholesky and its packed moment sums."""
from __future__ import annotations

import numpy as np
import pytest

from fers_engine.detectors import compiled, ring_kernel

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


def test_packed_outer_products_and_box_slides():
    rng = np.random.default_rng(0)
    e, leave = rng.normal(size=6), rng.normal(size=6)
    rows, cols = np.tril_indices(6)
    v = np.zeros(21)
    ring_kernel._add_outer(v, e, e[:0])
    np.testing.assert_allclose(v, np.outer(e, e)[rows, cols])
    ring_kernel._add_outer(v, leave, e)  # one row in, one out
    np.testing.assert_allclose(v, np.outer(leave, leave)[rows, cols], atol=1e-12)
    vert = rng.normal(size=(7, 21))
    box = np.empty(21)
    ring_kernel._box_sums(box, vert, 1, 3, -1)  # afresh
    np.testing.assert_allclose(box, vert[1:4].sum(axis=0))
    ring_kernel._box_sums(box, vert, 2, 3, 1)  # slid one column right
    np.testing.assert_allclose(box, vert[2:5].sum(axis=0))
    ring_kernel._box_sums(box, vert, 2, 3, 2)  # an edge window that stays put
    np.testing.assert_allclose(box, vert[2:5].sum(axis=0))
