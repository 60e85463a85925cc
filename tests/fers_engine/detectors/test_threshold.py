"""Threshold rules for turning a score map into an anomaly mask."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.detectors import MASK_NODATA, threshold_mask, threshold_value
from fers_engine.errors import InputError


def scores_with_nan(seed=0, n=10_000):
    rng = np.random.default_rng(seed)
    scores = rng.chisquare(5, n).astype(np.float32)
    scores[rng.random(n) < 0.05] = np.nan
    return scores.reshape(100, -1)


def test_percentile_keeps_the_top_fraction():
    scores = scores_with_nan()
    thr = threshold_value(scores, "percentile", 99.0)
    assert thr == pytest.approx(np.nanpercentile(scores, 99.0))
    flagged = np.nansum(scores > thr)
    assert flagged == pytest.approx(0.01 * np.isfinite(scores).sum(), abs=1)


@pytest.mark.parametrize("rate", [0.0, 0.001, 0.0137, 0.5, 1.0])
def test_false_alarm_rate_flags_exactly_that_many(rate):
    scores = scores_with_nan(1)
    valid = np.isfinite(scores).sum()
    thr = threshold_value(scores, "false_alarm_rate", rate)
    mask = threshold_mask(scores, thr)
    assert (mask == 1).sum() == int(np.floor(rate * valid + 1e-9))


def test_value_and_mask_nodata():
    scores = np.array([[1.0, 5.0], [np.nan, 3.0]])
    assert threshold_value(scores, "value", 3.0) == 3.0
    mask = threshold_mask(scores, 3.0)
    assert mask.dtype == np.uint8
    assert mask.tolist() == [[0, 1], [MASK_NODATA, 0]]


def test_otsu_separates_two_modes():
    rng = np.random.default_rng(2)
    scores = np.r_[rng.normal(10, 1, 5000), rng.normal(40, 2, 500), [np.nan] * 20]
    thr = threshold_value(scores, "otsu")
    assert 14 < thr < 34
    assert (threshold_mask(scores, thr) == 1).sum() == 500


def test_otsu_on_a_constant_map_flags_nothing():
    scores = np.full((5, 5), 2.0)
    thr = threshold_value(scores, "otsu")
    assert (threshold_mask(scores, thr) == 1).sum() == 0


@pytest.mark.parametrize(
    "method,value,match",
    [
        ("median", 1.0, "unknown"),
        ("percentile", 101.0, "within"),
        ("false_alarm_rate", -0.1, "within"),
        ("value", float("nan"), "finite"),
    ],
)
def test_bad_arguments_are_clear_errors(method, value, match):
    with pytest.raises(InputError, match=match):
        threshold_value(np.ones(4), method, value)


def test_all_nan_map_is_a_clear_error():
    with pytest.raises(InputError, match="no valid"):
        threshold_value(np.full(4, np.nan), "percentile", 50.0)


def test_each_method_has_its_own_default_and_range():
    from fers_engine.choices import THRESHOLD_DEFAULTS
    from fers_engine.detectors.threshold import check_threshold

    assert check_threshold("percentile") == 99.0 == THRESHOLD_DEFAULTS["percentile"]
    assert check_threshold("false_alarm_rate") == 0.01 == THRESHOLD_DEFAULTS["false_alarm_rate"]
    assert check_threshold("otsu", 12.0) is None  # Otsu takes no value
    with pytest.raises(InputError, match="'value' threshold method needs a threshold value"):
        check_threshold("value")
    for method, bad in (
        ("percentile", 101.0),
        ("percentile", float("nan")),
        ("false_alarm_rate", 99.0),
        ("value", float("inf")),
        ("nonsense", 1.0),
    ):
        with pytest.raises(InputError):
            check_threshold(method, bad)
    scores = scores_with_nan(3)
    # the default false-alarm rate flags about 1 % of the valid pixels, like the 99th percentile
    thr = threshold_value(scores, "false_alarm_rate")
    assert np.nansum(scores > thr) == int(np.floor(0.01 * np.isfinite(scores).sum() + 1e-9))
