"""Classical hyperspectral anomaly detectors: global RX, local (windowed) RX, CRD, thresholds.

Inputs are bands-first float blocks (B, rows, cols) with bool valid masks (rows, cols); score
maps are float32 with NaN where the input was invalid. Global RX streams (stats pass, then
score pass); local RX and CRD work on row blocks with a halo of ``halo_rows(outer)`` rows. The
whole-cube CRD is ``fers_engine.detectors.crd.crd`` (the module keeps the detector's name).

This package exports the detectors and thresholds only; kernels, statistics helpers and the
device policy stay in their modules (``detectors.stats``, ``detectors.device``, ...), which
callers inside the engine import by name.
"""

from .crd import crd_block
from .lrx import CovarianceChoice, choose_covariance, local_rx, local_rx_block
from .rx import RxScorer, global_rx, rx_scores, stream_rx
from .stats import BackgroundStats
from .threshold import MASK_NODATA, check_threshold, threshold_mask, threshold_value
from .windows import halo_rows

__all__ = [
    "BackgroundStats",
    "CovarianceChoice",
    "MASK_NODATA",
    "RxScorer",
    "check_threshold",
    "choose_covariance",
    "crd_block",
    "global_rx",
    "halo_rows",
    "local_rx",
    "local_rx_block",
    "rx_scores",
    "stream_rx",
    "threshold_mask",
    "threshold_value",
]
