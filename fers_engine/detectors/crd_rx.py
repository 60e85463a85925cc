"""CRD+RX: the geometric mean of a local and a global detector's scores, sqrt(RX x CRD).

CRD (``crd.py``) judges each pixel against the ring of pixels around it; global RX (``rx.py``)
against the whole scene's statistics. Each has a failure the other does not: CRD's ring holds
whatever else lies near a pixel (other targets of a cluster, the far side of a material
boundary), so a target among similar neighbours scores low; global RX scores any rare material
high, a target or not, and misses targets that are only locally unusual. The product is high
only where both are, and a pixel either detector calls ordinary is pulled down.

Why a product of the raw scores and not of min-max normalised maps (the branch fusion
``hadamard`` of ``pipeline``): the ranking of RX x CRD does not change when either map is
scaled, so it needs no scene-wide minimum or maximum, and every row block is scored on its own:
streamed, tile-exact and split across workers exactly like CRD. The square root keeps the
score's growth close to the detectors' own and changes no ranking.

Measured on the development windows (bench/results/accuracy.md): with the spectral enhancer,
CRD alone falls more than 0.005 below plain RX on a dense urban scene while CRD+RX stays level
with RX there, at a small cost in mean AUC; bench/results/detector_choice.md says which pairing
each model picks on its own training labels.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..choices import DEFAULT_CRD_LAMBDA
from ..progress import SILENT, Reporter
from .crd import crd, crd_block
from .rx import RxScorer, global_rx
from .stats import check_cube
from .windows import Window

__all__ = ["crd_rx", "crd_rx_block", "geometric_mean"]

#: Share of an array run's progress taken by the global RX half (it is the fast one).
_RX_SHARE = 0.1


def geometric_mean(rx_scores: np.ndarray, crd_scores: np.ndarray) -> np.ndarray:
    """float32 sqrt(rx x crd), NaN where either is NaN. Both scores are >= 0 by construction;
    a rounding below 0 (a pixel at the background mean) counts as 0."""
    a = np.maximum(np.asarray(rx_scores, dtype=np.float64), 0.0)
    b = np.maximum(np.asarray(crd_scores, dtype=np.float64), 0.0)
    return np.sqrt(a * b).astype(np.float32)


def crd_rx_block(
    block: np.ndarray,
    valid: Optional[np.ndarray],
    block_row0: int,
    core_row0: int,
    core_row1: int,
    image_height: int,
    rx_scorer: RxScorer,
    inner: Window = 3,
    outer: Window = 15,
    lam: float = DEFAULT_CRD_LAMBDA,
    reporter: Optional[Reporter] = None,
    workers: int = 1,
) -> np.ndarray:
    """float32 (core_row1 - core_row0, cols) CRD+RX scores of image rows [core_row0, core_row1).

    ``block`` and ``valid`` as for ``crd.crd_block`` (the rows CRD's centred windows reach);
    ``rx_scorer`` holds the scene's background statistics (a first pass, ``rx.rx_scorers``),
    and scores the core rows only.
    """
    local = crd_block(
        block,
        valid,
        block_row0,
        core_row0,
        core_row1,
        image_height,
        inner,
        outer,
        lam=lam,
        reporter=reporter,
        workers=workers,
    )
    core = slice(core_row0 - block_row0, core_row1 - block_row0)
    rx = rx_scorer(np.asarray(block)[:, core], None if valid is None else np.asarray(valid)[core])
    return geometric_mean(rx, local)


def crd_rx(
    cube: np.ndarray,
    valid: Optional[np.ndarray] = None,
    inner: Window = 3,
    outer: Window = 15,
    lam: float = DEFAULT_CRD_LAMBDA,
    reporter: Optional[Reporter] = None,
    row_chunk: Optional[int] = None,
    workers: int = 1,
) -> np.ndarray:
    """float32 (H, W) CRD+RX scores of a (B, H, W) cube; NaN where either detector gives NaN
    (an invalid pixel, or a CRD ring with too few valid pixels)."""
    cube, valid = check_cube(cube, valid)
    reporter = reporter or SILENT
    rx = global_rx(cube, valid, reporter=reporter.stage(0.0, _RX_SHARE))
    local = crd(
        cube,
        valid,
        inner,
        outer,
        lam=lam,
        reporter=reporter.stage(_RX_SHARE, 1.0),
        row_chunk=row_chunk,
        workers=workers,
    )
    return geometric_mean(rx, local)
