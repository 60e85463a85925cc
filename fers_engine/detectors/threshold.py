"""Turning a score map into an anomaly mask: the threshold rules users ask for.

All rules ignore NaN/inf scores (nodata) and flag a pixel when its score is strictly greater
than the threshold, so a threshold equal to the maximum flags nothing.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..choices import THRESHOLD_DEFAULTS, ThresholdMethod
from ..errors import InputError

#: Value of ``threshold_mask`` where the score is NaN (no data).
MASK_NODATA = 255


def _finite(scores: np.ndarray) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise InputError("the score map has no valid (finite) pixel to threshold")
    return values


def check_threshold(method: str, value: Optional[float] = None) -> Optional[float]:
    """The value ``threshold_value`` will use with ``method``: ``value`` once its range is
    checked, or the method's own default (``THRESHOLD_DEFAULTS``) when it is None; None for
    Otsu, which takes no value. Needs no scores, so a bad request is refused before any work."""
    ThresholdMethod.parse(method, "threshold method")
    if method == "otsu":
        return None
    if value is None:
        if method not in THRESHOLD_DEFAULTS:
            raise InputError(f"the '{method}' threshold method needs a threshold value")
        return THRESHOLD_DEFAULTS[method]
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"threshold value must be a number, got {value!r}") from None
    if method == "value" and not math.isfinite(value):
        raise InputError(f"threshold value must be a finite number, got {value}")
    if method == "percentile" and not 0.0 <= value <= 100.0:
        raise InputError(f"percentile must be within [0, 100], got {value:g}")
    if method == "false_alarm_rate" and not 0.0 <= value <= 1.0:
        raise InputError(f"false alarm rate must be within [0, 1], got {value:g}")
    return value


def threshold_value(scores: np.ndarray, method: str, value: Optional[float] = None, bins: int = 256) -> float:
    """Threshold for ``scores`` by ``method`` (``value`` None = the method's default):

    * ``'percentile'``: ``value`` = p in [0, 100]; the p-th percentile (linear interpolation,
      as ``np.percentile``), so about the top (100 - p) % of valid pixels are flagged.
    * ``'false_alarm_rate'``: ``value`` = f in [0, 1]; the order statistic such that exactly
      floor(f * n) valid pixels exceed it (fewer when scores tie at the cut).
    * ``'value'``: ``value`` itself, an absolute score.
    * ``'otsu'``: automatic; maximises the between-class variance of a ``bins``-bin histogram
      of the valid scores (``value`` is ignored). Heavy-tailed maps (RX is chi-square-like)
      give conservative cuts.
    """
    checked = check_threshold(method, value)  # None only for otsu, which takes no value
    if method == "value" and checked is not None:
        return checked
    values = _finite(scores)
    if checked is None:
        return _otsu(values, bins)
    if method == "percentile":
        return float(np.percentile(values, checked))
    flagged = int(np.floor(checked * values.size + 1e-9))  # false_alarm_rate
    if flagged == 0:
        return float(values.max())
    if flagged >= values.size:
        return float("-inf")
    return float(np.partition(values, values.size - flagged - 1)[values.size - flagged - 1])


def _otsu(values: np.ndarray, bins: int) -> float:
    """Otsu's threshold on a histogram: the upper edge of the last background bin, so the
    background class is exactly the bins at or below it."""
    if bins < 2:
        raise InputError(f"Otsu needs at least 2 histogram bins, got {bins}")
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return hi
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2.0
    w0 = np.cumsum(counts, dtype=np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(counts * centres)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu0 = m0 / w0
        mu1 = (m0[-1] - m0) / w1
        between = w0 * w1 * (mu0 - mu1) ** 2
    between = np.where((w0 > 0) & (w1 > 0), between, -1.0)[:-1]
    # an empty gap between the classes is a plateau of equal scores: cut in its middle
    ties = np.flatnonzero(between >= between.max() * (1.0 - 1e-9))
    best = int(ties[ties.size // 2])
    return float(edges[best + 1])


def threshold_mask(scores: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 mask: 1 where score > threshold, 0 elsewhere, ``MASK_NODATA`` where score is NaN."""
    scores = np.asarray(scores)
    finite = np.isfinite(scores)
    with np.errstate(invalid="ignore"):
        mask = (scores > threshold).astype(np.uint8)
    mask[~finite] = MASK_NODATA
    return mask
