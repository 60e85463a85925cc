"""Choosing epochs and candidates by detection on the training scenes' own labels.

The loss of a stage measures what the stage optimises, not what the product is judged on: the
published objectives lower their losses while the RX separability of the enhanced features
falls. When training files carry anomaly ground truth, the trainer keeps instead the epoch (the
untrained start, epoch 0, included) and the candidate whose enhanced features give the best mean
RX AUC on those files, scored exactly as ``fers detect`` scores (same nodata and border rule,
``context.scene_features``).

These are training files: their anomaly pixels (dilated) were excluded from every loss, and a
scene held out for testing is never among them, so no test label takes part in the choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..detectors.rx import global_rx
from ..metrics import roc_auc
from .context import scene_features


@dataclass
class LabelledScene:
    """A training scene kept whole for selection: normalised cube, valid mask, truth."""

    name: str
    cube: np.ndarray  # (C, H, W) float32, normalised on the model's grid, anomalies left in
    valid: np.ndarray  # (H, W) bool
    truth: np.ndarray  # (H, W) bool, at least one anomaly and one background pixel


def torch_features(spectral, spatial=None):
    """``features(block) -> {'spectral': ..., 'spatial': ...}`` of torch modules (eval mode), the
    form ``context.scene_features`` takes."""
    import torch

    device = next(spectral.parameters()).device

    def run(block: np.ndarray) -> Dict[str, np.ndarray]:
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(block)[None]).to(device)
            out = {"spectral": spectral(x)[0].float().cpu().numpy()}
            if spatial is not None:
                out["spatial"] = spatial(x)[0][0].float().cpu().numpy()
        return out

    return run


class DetectionValidator:
    """Mean RX AUC of the enhanced features over labelled training scenes."""

    def __init__(self, scenes: Sequence[LabelledScene]):
        self.scenes: List[LabelledScene] = list(scenes)

    def __bool__(self) -> bool:
        return bool(self.scenes)

    @property
    def names(self) -> List[str]:
        return [s.name for s in self.scenes]

    def score(self, spectral, spatial=None, halo: Optional[int] = None) -> Dict[str, float]:
        """Per-scene AUC and their mean ('mean') of RX(x + spe) or, with ``spatial``, of the full
        method's sum fusion RX(x + spe + spa); NaN where the features are not finite (a diverged
        network), and a NaN mean then, which no comparison selects."""
        if halo is None:
            halo = max(int(getattr(spectral, "halo", 0)), int(getattr(spatial, "halo", 0)) if spatial else 0)
        run = torch_features(spectral, spatial)
        out: Dict[str, float] = {}
        for s in self.scenes:
            f = scene_features(run, s.cube, s.valid, halo)
            z = s.cube + f["spectral"] + (f["spatial"] if "spatial" in f else 0.0)
            if not np.isfinite(z[:, s.valid]).all():
                out[s.name] = float("nan")
                continue
            out[s.name] = float(roc_auc(global_rx(z, s.valid), s.truth, valid=s.valid))
        out["mean"] = float(np.mean([out[s.name] for s in self.scenes])) if self.scenes else float("nan")
        return out
