"""The compiled local-RX kernel's own pieces: packed moment sums slid down and along."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.detectors import compiled, ring_kernel

pytestmark = pytest.mark.skipif(not compiled.available(), reason="numba is not installed")


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
