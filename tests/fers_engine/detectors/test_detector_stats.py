"""Streamed background statistics and the regularised inverse."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.detectors.stats import (
    BackgroundStats,
    eigen_parts,
    regularised_inverse,
    usable_pixels,
)
from fers_engine.errors import InputError


def _cube(rng, bands=6, rows=20, cols=9, offset=0.0, spread=1.0):
    return (rng.normal(size=(bands, rows, cols)) * spread + offset).astype(np.float32)


@pytest.mark.parametrize("device", [None, "cpu"])  # "cpu": the torch path a GPU takes
@pytest.mark.parametrize("block_rows", [1, 3, 7, 20])
def test_blockwise_equals_numpy(block_rows, device):
    if device is not None:
        pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    cube = _cube(rng)
    cube[:, 2, 3] = np.nan  # dropped on either path
    stats = BackgroundStats(6, device=device)
    for r in range(0, cube.shape[1], block_rows):
        stats.update(cube[:, r : r + block_rows])
    pixels = cube.reshape(6, -1).astype(np.float64)
    pixels = pixels[:, np.isfinite(pixels).all(axis=0)]
    assert stats.count == pixels.shape[1]
    np.testing.assert_allclose(stats.mean, pixels.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance(), np.cov(pixels), rtol=1e-10)
    np.testing.assert_allclose(stats.covariance(ddof=0), np.cov(pixels, ddof=0), rtol=1e-10)


@pytest.mark.parametrize("device", [None, "cpu"])
def test_large_mean_small_spread_keeps_precision(device):
    # raw DN: mean 1e4, spread 0.5. Raw-moment sums (S2/n - m^2) lose ~all digits here.
    if device is not None:
        pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    cube = _cube(rng, bands=4, rows=64, cols=64, offset=1e4, spread=0.5)
    stats = BackgroundStats(4, device=device)
    for r in range(0, 64, 5):
        stats.update(cube[:, r : r + 5])
    ref = np.cov(cube.reshape(4, -1).astype(np.float64))
    np.testing.assert_allclose(stats.covariance(), ref, rtol=1e-9, atol=1e-12)


def test_merge_equals_single_stream():
    rng = np.random.default_rng(2)
    cube = _cube(rng, offset=50.0)
    a, b, whole = BackgroundStats(6), BackgroundStats(6), BackgroundStats(6)
    a.update(cube[:, :8])
    b.update(cube[:, 8:])
    whole.update(cube)
    a.merge(b)
    assert a.count == whole.count
    np.testing.assert_allclose(a.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(a.covariance(), whole.covariance(), rtol=1e-10)


def test_invalid_and_nan_pixels_are_excluded():
    rng = np.random.default_rng(3)
    cube = _cube(rng)
    valid = rng.random(cube.shape[1:]) > 0.3
    cube[2, 0, 0] = np.nan  # a NaN that slipped past the reader's mask
    valid[0, 0] = True
    stats = BackgroundStats(6)
    stats.update(cube, valid)
    keep = valid.copy()
    keep[0, 0] = False
    pixels = cube[:, keep].astype(np.float64)
    assert stats.count == keep.sum()
    np.testing.assert_allclose(stats.mean, pixels.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance(), np.cov(pixels), rtol=1e-10)


def test_usable_pixels_checks_shapes():
    block = np.zeros((3, 4, 5), np.float32)
    with pytest.raises(InputError):
        usable_pixels(block, np.ones((4, 4), bool))
    with pytest.raises(InputError):
        usable_pixels(np.zeros((4, 5)), None)


def test_too_few_pixels_is_a_clear_error():
    stats = BackgroundStats(3)
    with pytest.raises(InputError, match="valid pixel"):
        _ = stats.mean
    stats.update(np.full((3, 2, 2), np.nan, np.float32))  # all NaN
    with pytest.raises(InputError, match="all NaN"):
        stats.covariance()
    stats.update(np.ones((3, 1, 1), np.float32))
    assert stats.mean.shape == (3,)  # one pixel: a mean but no covariance
    with pytest.raises(InputError, match="at least 2"):
        stats.covariance()
    with pytest.raises(InputError, match="bands"):
        stats.update(np.ones((4, 1, 1), np.float32))


def test_inverse_of_well_conditioned_matrix_is_inv():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(8, 50))
    cov = np.cov(a)
    inv, info = regularised_inverse(cov)
    assert not info.regularised and info.rank == 8
    np.testing.assert_allclose(inv, np.linalg.inv(cov), rtol=1e-9, atol=1e-12)
    assert info.condition == pytest.approx(np.linalg.cond(cov), rel=1e-6)
    assert "condition" in info.describe()


@pytest.mark.parametrize("case", ["duplicated band", "constant band", "more bands than pixels"])
def test_singular_covariance_gives_finite_pseudo_inverse(case):
    rng = np.random.default_rng(5)
    pixels = rng.normal(size=(6, 40))
    if case == "duplicated band":
        pixels = np.vstack([pixels, pixels[2:3]])
    elif case == "constant band":
        pixels = np.vstack([pixels, np.full((1, 40), 7.0)])
    else:
        pixels = rng.normal(size=(12, 5))
    cov = np.cov(pixels)
    inv, info = regularised_inverse(cov)
    assert np.isfinite(inv).all()
    assert info.regularised and info.rank < cov.shape[0]
    assert "singular" in info.describe()
    # the documented rule is numpy's pseudo-inverse with the same relative cut
    np.testing.assert_allclose(inv, np.linalg.pinv(cov, rcond=1e-10, hermitian=True), rtol=1e-7, atol=1e-9)


def test_constant_data_inverse_is_zero():
    inv, info = regularised_inverse(np.zeros((3, 3)))
    assert (inv == 0).all() and info.rank == 0 and info.regularised
    vals, vecs, _ = eigen_parts(np.zeros((3, 3)))
    assert vals.size == 0 and vecs.shape == (3, 0)


def test_inverse_rejects_bad_input():
    with pytest.raises(InputError):
        regularised_inverse(np.ones((2, 3)))
    with pytest.raises(InputError):
        regularised_inverse(np.full((2, 2), np.nan))
