"""Classical hyperspectral anomaly detectors: global RX, local (windowed) RX, CRD, thresholds.

Inputs are bands-first float blocks (B, rows, cols) with bool valid masks (rows, cols); score
maps are float32 with NaN where the input was invalid. Global RX streams (stats pass, then
score pass); local RX and CRD work on row blocks with a halo of ``outer // 2`` rows. The
whole-cube CRD is ``fers_engine.detectors.crd.crd`` (the module keeps the detector's name).
"""
from .crd import crd_block
from .lrx import CovarianceChoice, choose_covariance, local_rx, local_rx_block
from .rx import RxScorer, global_rx, resolve_device, rx_scores
from .stats import (
    DEFAULT_RCOND,
    BackgroundStats,
    InverseInfo,
    eigen_parts,
    regularised_inverse,
    usable_pixels,
)
from .threshold import MASK_NODATA, METHODS, threshold_mask, threshold_value
from .windows import check_windows, halo_rows, ring_size, window_starts

__all__ = [
    "BackgroundStats",
    "CovarianceChoice",
    "DEFAULT_RCOND",
    "InverseInfo",
    "MASK_NODATA",
    "METHODS",
    "RxScorer",
    "check_windows",
    "choose_covariance",
    "crd_block",
    "eigen_parts",
    "global_rx",
    "halo_rows",
    "local_rx",
    "local_rx_block",
    "regularised_inverse",
    "resolve_device",
    "ring_size",
    "rx_scores",
    "threshold_mask",
    "threshold_value",
    "usable_pixels",
    "window_starts",
]
