"""CRD+RX: the geometric mean of global RX and CRD, whole, in row blocks and in the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.detectors.crd import crd
from fers_engine.detectors.crd_rx import crd_rx, crd_rx_block, geometric_mean
from fers_engine.detectors.rx import RxScorer, global_rx
from fers_engine.detectors.stats import BackgroundStats
from fers_engine.detectors.windows import halo_rows
from fers_engine.errors import InputError
from fers_engine.metrics import roc_auc
from fers_engine.pipeline import DetectOptions


def cube_for(rng, bands=6, rows=22, cols=19):
    latent = rng.normal(size=(3, rows * cols))
    data = rng.normal(size=(bands, 3)) @ latent + 0.4 * rng.normal(size=(bands, rows * cols))
    return (data * 40 + 900).reshape(bands, rows, cols).astype(np.float32)


def scorer_of(cube, valid):
    stats = BackgroundStats(cube.shape[0])
    stats.update(cube, valid)
    return RxScorer.from_cov(stats.mean, stats.covariance())[0]


def test_is_the_square_root_of_the_product_of_the_two_detectors():
    rng = np.random.default_rng(0)
    cube = cube_for(rng)
    valid = np.ones(cube.shape[1:], dtype=bool)
    valid[3, 4] = False
    expected = np.sqrt(
        global_rx(cube, valid).astype(np.float64) * crd(cube, valid, 3, 7, lam=0.1).astype(np.float64)
    )
    got = crd_rx(cube, valid, 3, 7, lam=0.1)
    assert got.dtype == np.float32
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.isnan(got[3, 4])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_row_blocks_with_the_scene_statistics_equal_the_whole_image():
    rng = np.random.default_rng(1)
    cube = cube_for(rng, rows=25)
    valid = np.ones(cube.shape[1:], dtype=bool)
    valid[:, :2] = False  # a collar
    whole = crd_rx(cube, valid, 3, 7, lam=0.1)
    scorer = scorer_of(cube, valid)
    for r0, r1 in ((0, 4), (4, 13), (13, 25)):
        h0, h1 = halo_rows(r0, r1, 25, 7, centred=True)
        block = crd_rx_block(cube[:, h0:h1], valid[h0:h1], h0, r0, r1, 25, scorer, 3, 7, lam=0.1)
        np.testing.assert_allclose(block, whole[r0:r1], rtol=1e-6)
        assert np.array_equal(np.isnan(block), np.isnan(whole[r0:r1]))


def test_a_target_larger_than_the_guard_window_is_recovered_by_the_global_half():
    """A 6 x 6 target fills the CRD rings of its own pixels, so CRD barely ranks it above the
    background (AUC near 0.5-0.7 here); global RX does not look at rings, and the product
    brings CRD+RX most of the way back."""
    rng = np.random.default_rng(0)
    cube = cube_for(rng, bands=8, rows=30, cols=30)
    cube[:, 8:14, 8:14] += np.linspace(-150, 150, 8)[:, None, None]
    truth = np.zeros(cube.shape[1:], dtype=bool)
    truth[8:14, 8:14] = True
    local = roc_auc(crd(cube, None, 3, 7, lam=0.1), truth)
    fused = roc_auc(crd_rx(cube, None, 3, 7, lam=0.1), truth)
    assert local < 0.7
    assert fused > local + 0.2


def test_negative_rounding_counts_as_zero_and_nan_wins():
    got = geometric_mean(np.array([-1e-9, 4.0, np.nan]), np.array([2.0, 9.0, 1.0]))
    np.testing.assert_array_equal(got[:2], [0.0, 6.0])
    assert np.isnan(got[2])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"inner": 4}, "windows must be odd"),
        ({"outer": 3}, "windows must be odd"),
        ({"crd_lambda": 0.0}, "lambda must be a finite number above 0"),
    ],
)
def test_the_options_are_checked_like_crd(kwargs, match):
    with pytest.raises(InputError, match=match):
        DetectOptions(detector="crd+rx", **kwargs).validate()
