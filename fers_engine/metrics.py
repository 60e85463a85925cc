"""Detection scores against ground truth: ROC AUC and the 3-D ROC measures of the HAD literature.

Everything is exact, with no sampled thresholds:

* AUC(Pd, Pf) is the Mann-Whitney statistic with average ranks for ties, i.e. the trapezoidal
  area under the full empirical ROC curve, equal to sklearn's ``roc_auc_score``.
* The 3-D ROC measures (Chang, IEEE TGRS 59(6), 2021) take tau as a threshold on the min-max
  normalised scores. The empirical Pd(tau) is a step function whose integral over [0, 1] is
  exactly the mean normalised score of the anomaly pixels (likewise Pf and background). The
  common MATLAB ``plot_3DROC`` instead applies trapezoids between sampled thresholds, which
  over-counts by up to half a step per sample; its numbers differ from these by O(1/n).

Pixels that are invalid, or whose score is NaN/inf, are left out of every measure.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from .errors import InputError

__all__ = [
    "boundary_false_alarms",
    "evaluate",
    "finite_range",
    "normalise",
    "roc_auc",
    "roc_curve",
    "spectral_gradient",
]


def _prepare(
    scores: np.ndarray, truth: np.ndarray, valid: Optional[np.ndarray]
) -> Tuple[np.ndarray, np.ndarray]:
    """Flattened float64 scores and bool truth of the pixels that take part."""
    scores = np.asarray(scores)
    truth = np.asarray(truth)
    if scores.shape != truth.shape:
        raise InputError(f"score map shape {scores.shape} does not match ground truth {truth.shape}")
    keep = np.isfinite(scores)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != scores.shape:
            raise InputError(f"valid mask shape {valid.shape} does not match scores {scores.shape}")
        keep &= valid
    s = scores[keep].astype(np.float64)
    t = truth[keep] != 0
    positives = int(t.sum())
    if positives == 0:
        raise InputError("ground truth has no anomaly pixel among the valid pixels")
    if positives == t.size:
        raise InputError("ground truth has no background pixel among the valid pixels")
    return s, t


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their positions (as scipy's rankdata)."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    ends = np.r_[starts[1:], values.size]  # exclusive
    group_rank = (starts + ends + 1) / 2.0  # mean of 1-based positions start+1 .. end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def roc_auc(scores: np.ndarray, truth: np.ndarray, valid: Optional[np.ndarray] = None) -> float:
    """Area under the (Pf, Pd) ROC curve; higher scores mean 'more anomalous'."""
    s, t = _prepare(scores, truth, valid)
    return _auc(s, t)


def _auc(s: np.ndarray, t: np.ndarray) -> float:
    ranks = _average_ranks(s)
    pos = float(t.sum())
    neg = float(t.size) - pos
    return float((ranks[t].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def roc_curve(
    scores: np.ndarray, truth: np.ndarray, valid: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pf, pd, thresholds), one point per distinct score, as sklearn's ``roc_curve``.

    Thresholds decrease from +inf (nothing flagged: pf = pd = 0); a pixel is flagged when its
    score is >= the threshold.
    """
    s, t = _prepare(scores, truth, valid)
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    t_sorted = t[order]
    last = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s.size - 1]
    tps = np.cumsum(t_sorted)[last]
    fps = (last + 1) - tps
    pd = np.r_[0.0, tps / tps[-1]]
    pf = np.r_[0.0, fps / fps[-1]]
    thresholds = np.r_[np.inf, s_sorted[last]]
    return pf, pd, thresholds


def finite_range(scores: np.ndarray, rows: int = 4096) -> Optional[Tuple[float, float]]:
    """(min, max) of the finite values, or None when there is none; read ``rows`` rows at a
    time, so a map on disk (``np.memmap``) is never loaded whole."""
    lo: Optional[float] = None
    hi: Optional[float] = None
    for r0 in range(0, max(1, scores.shape[0]), rows):
        part = np.asarray(scores[r0 : r0 + rows], dtype=np.float64)
        part = part[np.isfinite(part)]
        if part.size:
            lo = float(part.min()) if lo is None else min(lo, float(part.min()))
            hi = float(part.max()) if hi is None else max(hi, float(part.max()))
    return None if lo is None or hi is None else (lo, hi)


_WHOLE = object()


def normalise(scores: np.ndarray, bounds=_WHOLE) -> np.ndarray:
    """Min-max to [0, 1] over the finite values (all 0 for a constant map); NaN stays NaN.

    ``bounds`` ((lo, hi) from ``finite_range``, None for a map without finite values) normalises
    a part of a larger map as the whole map would be.
    """
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    if bounds is _WHOLE:
        bounds = finite_range(scores)
    if bounds is None:
        return np.full(scores.shape, np.nan)
    lo, hi = bounds
    out = np.where(finite, scores - lo, np.nan)
    return out / (hi - lo) if hi > lo else np.where(finite, 0.0, np.nan)


def evaluate(scores: np.ndarray, truth: np.ndarray, valid: Optional[np.ndarray] = None) -> Dict[str, float]:
    """The 2-D AUC and the 3-D ROC measures, keyed by name.

    auc_pd_pf  AUC(Pd, Pf), the usual ROC AUC
    auc_pd_tau AUC(Pd, tau): target detectability
    auc_pf_tau AUC(Pf, tau): background false alarms (lower is better)
    auc_td     AUC(Pd, Pf) + AUC(Pd, tau)
    auc_bs     AUC(Pd, Pf) - AUC(Pf, tau)
    auc_snpr   AUC(Pd, tau) / AUC(Pf, tau) (inf when AUC(Pf, tau) = 0)
    auc_tdbs   AUC(Pd, tau) - AUC(Pf, tau)
    auc_odp    AUC(Pd, Pf) + AUC(Pd, tau) - AUC(Pf, tau)

    auc_tdbs and auc_odp follow Chang (2021) and ``plot_3DROC``; some papers print
    AUC(Pd, tau) - AUC(Pf, tau) under the name ODP, which is auc_tdbs here.
    """
    s, t = _prepare(scores, truth, valid)
    auc = _auc(s, t)
    norm = normalise(s)
    pd_tau = float(norm[t].mean())
    pf_tau = float(norm[~t].mean())
    if pf_tau > 0:
        snpr = pd_tau / pf_tau
    else:
        snpr = float("inf") if pd_tau > 0 else float("nan")
    return {
        "auc_pd_pf": auc,
        "auc_pd_tau": pd_tau,
        "auc_pf_tau": pf_tau,
        "auc_td": auc + pd_tau,
        "auc_bs": auc - pf_tau,
        "auc_snpr": snpr,
        "auc_tdbs": pd_tau - pf_tau,
        "auc_odp": auc + pd_tau - pf_tau,
    }


def spectral_gradient(cube: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """(H, W) largest spectral angle (radians) between each pixel and a valid 4-neighbour: high on
    the boundaries between materials, independent of brightness (0 where no neighbour is valid)."""
    cube = np.asarray(cube, dtype=np.float64)
    h, w = cube.shape[1:]
    ok = np.ones((h, w), bool) if valid is None else np.asarray(valid, bool)
    unit = cube / np.maximum(np.linalg.norm(cube, axis=0), 1e-12)
    grad = np.zeros((h, w))
    for axis in (1, 2):
        cos = np.sum(np.diff(unit, axis=axis) ** 2, axis=0)  # |u - v|^2 = 2 - 2 cos
        angle = 2.0 * np.arcsin(np.clip(np.sqrt(cos) / 2.0, 0.0, 1.0))
        a_ok = ok[:-1] & ok[1:] if axis == 1 else ok[:, :-1] & ok[:, 1:]
        angle = np.where(a_ok, angle, 0.0)
        if axis == 1:
            grad[:-1] = np.maximum(grad[:-1], angle)
            grad[1:] = np.maximum(grad[1:], angle)
        else:
            grad[:, :-1] = np.maximum(grad[:, :-1], angle)
            grad[:, 1:] = np.maximum(grad[:, 1:], angle)
    return grad


def boundary_false_alarms(
    scores: np.ndarray,
    cube: np.ndarray,
    truth: np.ndarray,
    valid: Optional[np.ndarray] = None,
    top: float = 0.005,
    quantile: float = 0.9,
) -> float:
    """Share of the ``top`` highest-scoring pixels that are background on a material boundary.

    Boundary pixels: the valid background pixels whose ``spectral_gradient`` is in the highest
    ``1 - quantile`` of the background's, anomaly pixels and their 8-neighbours left out (an
    anomaly's own edge is not a false alarm). A detector that lights up the edges between
    materials scores a high share; plain RX's share is the reference.
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth, bool)
    ok = np.isfinite(scores) & (np.ones(truth.shape, bool) if valid is None else np.asarray(valid, bool))
    grad = spectral_gradient(cube, ok)
    near = truth.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(np.roll(truth, dy, 0), dx, 1)
    background = ok & ~near
    if not background.any():
        raise InputError("no background pixel away from the anomalies")
    edge = background & (grad >= np.quantile(grad[background], quantile))
    k = max(1, int(round(top * ok.sum())))
    order = np.argsort(np.where(ok, scores, -np.inf).ravel(), kind="stable")[::-1][:k]
    return float(edge.ravel()[order].mean())
