"""Batched Cholesky with per-matrix failure, and the scoped one-thread BLAS limit."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from fers_engine.detectors import batched_linalg


def spd_stack(count, k, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 3 * k, k))
    return np.einsum("nij,nik->njk", x, x)


@pytest.mark.parametrize("bad", [[], [0], [7], [2, 3, 11], list(range(13))])
def test_failing_matrices_come_back_nan_and_the_rest_exact(bad):
    a = spd_stack(13, 5)
    for i in bad:
        a[i, 2, 2] = -1.0  # not positive definite
    low = batched_linalg.cholesky_or_nan(a)
    failed = np.isnan(low).all(axis=(1, 2))
    assert np.flatnonzero(failed).tolist() == bad
    good = np.flatnonzero(~failed)
    if good.size:
        np.testing.assert_array_equal(low[good], np.linalg.cholesky(a[good]))


def test_pinv_forms_equal_the_inverse_on_regular_matrices_and_drop_null_directions():
    a = spd_stack(4, 6)
    d = np.random.default_rng(1).normal(size=(4, 6))
    exact = np.einsum("nk,nk->n", d, np.linalg.solve(a, d[..., None])[..., 0])
    np.testing.assert_allclose(batched_linalg.pinv_forms(a, d, 1e-12), exact, rtol=1e-9)
    singular = np.array([[[2.0, 0.0], [0.0, 0.0]]])  # the second direction has no variance
    assert batched_linalg.pinv_forms(singular, np.array([[1.0, 5.0]]), 1e-10)[0] == pytest.approx(0.5)


threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture
def two_blas_threads():
    """BLAS on 2 threads for the test, whatever this machine's default, then restored."""
    controller = threadpoolctl.ThreadpoolController()
    if not controller.select(user_api="blas"):
        pytest.skip("no BLAS library that threadpoolctl can control")
    with controller.limit(limits=2, user_api="blas"):
        if batched_linalg.blas_threads() != 2:
            pytest.skip("this BLAS cannot run 2 threads")
        yield


def test_blas_is_single_threaded_inside_the_scope_and_restored_after(two_blas_threads):
    with batched_linalg.single_threaded_blas():
        assert batched_linalg.blas_threads() == 1
    assert batched_linalg.blas_threads() == 2  # the rest of the process gets its threads back


class FakeController:
    """Records what the reference-counted scope asks of threadpoolctl (OpenBLAS itself ignores
    thread-count changes made from worker threads once the main thread has made one, so the
    order of limits and restores is checked here, not through OpenBLAS)."""

    def __init__(self):
        self.threads, self.calls = 2, []

    def limit(self, limits, user_api):
        before, self.threads = self.threads, limits
        self.calls.append("limit")
        controller = self

        class Limiter:
            def restore_original_limits(self):
                controller.threads = before
                controller.calls.append("restore")

        return Limiter()


def test_concurrent_users_share_one_limit_restored_when_the_last_leaves(monkeypatch):
    """Worker A enters, B enters, A leaves first: B must still run single-threaded, and the
    process must end on its original setting (plain nested limits would restore in the wrong
    order and leave BLAS on 1 thread for good)."""
    fake = FakeController()
    monkeypatch.setattr(batched_linalg, "_CONTROLLER", fake)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def worker_a():
        with batched_linalg.single_threaded_blas():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def worker_b():
        a_in.wait(5)
        with batched_linalg.single_threaded_blas():
            b_in.set()
            a_out.wait(5)
            seen["b_after_a_left"] = fake.threads

    threads = [threading.Thread(target=worker_a), threading.Thread(target=worker_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["b_after_a_left"] == 1
    assert fake.threads == 2 and fake.calls == ["limit", "restore"]


def test_without_threadpoolctl_the_scope_is_a_no_op(monkeypatch, two_blas_threads):
    real = threadpoolctl.ThreadpoolController()
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # "import threadpoolctl" fails
    monkeypatch.setattr(batched_linalg, "_CONTROLLER", None)
    with batched_linalg.single_threaded_blas():
        inside = real.select(user_api="blas").info()[0]["num_threads"]
    assert inside == 2 and batched_linalg._CONTROLLER is False
