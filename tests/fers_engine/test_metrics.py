"""ROC AUC and 3-D ROC measures against brute-force references and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.errors import InputError
from fers_engine.metrics import evaluate, normalise, roc_auc, roc_curve


def brute_auc(scores, truth):
    """P(score_anomaly > score_background) + 0.5 P(equal), over every pair."""
    pos, neg = scores[truth], scores[~truth]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def brute_curve(scores, truth):
    thresholds = np.r_[np.inf, np.unique(scores)[::-1]]
    pd = np.array([(scores[truth] >= t).mean() for t in thresholds])
    pf = np.array([(scores[~truth] >= t).mean() for t in thresholds])
    return pf, pd, thresholds


def random_case(seed, n=300, levels=7):
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.2
    scores = rng.integers(0, levels, n).astype(float) + truth * rng.integers(0, 3, n)
    return scores, truth  # few levels: many ties


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_pairwise_count_with_ties(seed):
    scores, truth = random_case(seed)
    assert roc_auc(scores, truth) == pytest.approx(brute_auc(scores, truth), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_curve_equals_brute_force_and_its_area_is_the_auc(seed):
    scores, truth = random_case(seed, n=120)
    pf, pd, thr = roc_curve(scores, truth)
    bpf, bpd, bthr = brute_curve(scores, truth)
    np.testing.assert_array_equal(thr, bthr)
    np.testing.assert_allclose(pf, bpf)
    np.testing.assert_allclose(pd, bpd)
    assert np.trapz(pd, pf) == pytest.approx(roc_auc(scores, truth), abs=1e-12)


def test_closed_forms():
    truth = np.zeros((10, 10), bool)
    truth[2:4, 5:8] = True
    ramp = np.arange(100, dtype=float).reshape(10, 10)
    perfect = np.where(truth, 1000.0 + ramp, ramp)
    assert roc_auc(perfect, truth) == 1.0
    assert roc_auc(-perfect, truth) == 0.0
    assert roc_auc(np.ones((10, 10)), truth) == 0.5
    rng = np.random.default_rng(0)
    big_truth = rng.random(200_000) < 0.1
    assert roc_auc(rng.random(200_000), big_truth) == pytest.approx(0.5, abs=0.01)


def test_nan_scores_and_invalid_pixels_are_excluded():
    scores, truth = random_case(7)
    valid = np.ones_like(truth)
    valid[:40] = False
    with_nan = scores.copy()
    with_nan[40:50] = np.nan
    keep = valid.copy()
    keep[40:50] = False
    expected = brute_auc(scores[keep], truth[keep])
    assert roc_auc(with_nan, truth, valid) == pytest.approx(expected, abs=1e-12)


def test_3d_measures_against_numeric_integration():
    scores, truth = random_case(11, n=400, levels=50)
    scores = scores * 3.7 - 20.0
    result = evaluate(scores, truth)
    norm = normalise(scores)
    taus = np.linspace(0.0, 1.0, 200_001)
    sorted_pos, sorted_neg = np.sort(norm[truth]), np.sort(norm[~truth])
    pd_tau = 1.0 - np.searchsorted(sorted_pos, taus, side="left") / sorted_pos.size
    pf_tau = 1.0 - np.searchsorted(sorted_neg, taus, side="left") / sorted_neg.size
    assert result["auc_pd_tau"] == pytest.approx(np.trapz(pd_tau, taus), abs=1e-4)
    assert result["auc_pf_tau"] == pytest.approx(np.trapz(pf_tau, taus), abs=1e-4)
    assert result["auc_pd_pf"] == pytest.approx(brute_auc(scores, truth), abs=1e-12)
    d, f, a = result["auc_pd_tau"], result["auc_pf_tau"], result["auc_pd_pf"]
    assert result["auc_td"] == pytest.approx(a + d)
    assert result["auc_bs"] == pytest.approx(a - f)
    assert result["auc_snpr"] == pytest.approx(d / f)
    assert result["auc_tdbs"] == pytest.approx(d - f)
    assert result["auc_odp"] == pytest.approx(a + d - f)


def test_3d_measures_closed_forms():
    truth = np.array([0, 0, 0, 1, 1], bool)
    result = evaluate(np.array([0.0, 0.0, 0.0, 1.0, 1.0]), truth)
    assert result["auc_pd_pf"] == 1.0 and result["auc_pd_tau"] == 1.0
    assert result["auc_pf_tau"] == 0.0 and result["auc_snpr"] == float("inf")
    assert result["auc_odp"] == 2.0 and result["auc_tdbs"] == 1.0
    flat = evaluate(np.full(5, 3.0), truth)  # a constant map detects nothing
    assert flat["auc_pd_pf"] == 0.5 and flat["auc_pd_tau"] == 0.0
    assert np.isnan(flat["auc_snpr"])


@pytest.mark.parametrize(
    "truth,match",
    [
        (np.zeros((4, 4)), "no anomaly"),
        (np.ones((4, 4)), "no background"),
        (np.zeros((3, 4)), "does not match"),
    ],
)
def test_unusable_truth_is_a_clear_error(truth, match):
    with pytest.raises(InputError, match=match):
        evaluate(np.random.default_rng(0).random((4, 4)), truth)


def test_truth_hidden_by_the_mask_is_an_error():
    truth = np.zeros((4, 4))
    truth[0, 0] = 1
    valid = np.ones((4, 4), bool)
    valid[0, 0] = False
    with pytest.raises(InputError, match="no anomaly"):
        roc_auc(np.random.default_rng(0).random((4, 4)), truth, valid)
    with pytest.raises(InputError, match="valid mask"):
        roc_auc(np.zeros((4, 4)), truth, np.ones((2, 2), bool))


def test_boundary_false_alarms_count_top_scores_on_material_edges_not_on_anomalies():
    from fers_engine.metrics import boundary_false_alarms, spectral_gradient

    rng = np.random.default_rng(0)
    a, b = np.array([1.0, 0.2, 0.5, 0.1]), np.array([0.2, 1.0, 0.1, 0.6])
    cube = np.where(np.arange(40)[None, None, :] < 20, a[:, None, None], b[:, None, None]) * np.ones(
        (4, 30, 40)
    )
    cube = cube + rng.normal(size=cube.shape) * 0.01
    truth = np.zeros((30, 40), bool)
    truth[5:7, 8:10] = truth[22:24, 30:32] = True
    cube[:, truth] = np.array([0.6, 0.6, 0.9, 0.9])[:, None]
    grad = spectral_gradient(cube)
    assert grad[:, 19:21].min() > 5 * np.median(grad)  # the boundary stands out
    edge_scores = np.zeros((30, 40))
    edge_scores[:, 19:21] = 1.0
    target_scores = truth.astype(float)
    assert boundary_false_alarms(edge_scores, cube, truth, top=0.05) == 1.0
    assert boundary_false_alarms(target_scores, cube, truth, top=0.005) == 0.0
