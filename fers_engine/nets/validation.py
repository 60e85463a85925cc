"""Checkpoint selection by detection on the training scenes' own labels.

The validation loss of a stage measures how well the networks reconstruct background, which is
not what the product is judged on: a stage may lower its loss while the RX separability of the
enhanced features falls (the accuracy benchmark's ablation found exactly that). When training
files carry anomaly ground truth, the trainer can instead keep the epoch whose enhanced features
give the best mean RX AUC on those files, the untrained starting point (epoch 0) included.

These are training files: their anomaly pixels (dilated) were excluded from every loss, and a
scene held out for testing is never among them, so no test label takes part in the choice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

from ..detectors.rx import global_rx
from ..metrics import roc_auc


@dataclass
class LabelledScene:
    """A training scene kept whole for selection: normalised cube, valid mask, truth."""

    name: str
    cube: np.ndarray  # (C, H, W) float32, normalised, anomalies left in
    valid: np.ndarray  # (H, W) bool
    truth: np.ndarray  # (H, W) bool, at least one anomaly and one background pixel


class DetectionValidator:
    """Mean RX AUC of the enhanced features over labelled training scenes."""

    def __init__(self, scenes: Sequence[LabelledScene]):
        self.scenes: List[LabelledScene] = list(scenes)

    def __bool__(self) -> bool:
        return bool(self.scenes)

    @property
    def names(self) -> List[str]:
        return [s.name for s in self.scenes]

    def score(self, stage: str, spectral, spatial=None) -> Dict[str, float]:
        """Per-scene AUC and their mean ('mean') for the features of ``stage``; NaN where the
        features are not finite (a diverged epoch), which no comparison selects.

        Stage 1 scores RX(x + spe); stage 2 the full method's sum fusion, RX(x + spe + spa).
        ``spectral`` / ``spatial`` are the torch modules in eval mode.
        """
        import torch

        device = next(spectral.parameters()).device
        out: Dict[str, float] = {}
        with torch.no_grad():
            for s in self.scenes:
                x = torch.from_numpy(s.cube[None]).to(device)
                f = x + spectral(x)
                if stage == "2" and spatial is not None:
                    f = f + spatial(x)[0]
                feats = f[0].float().cpu().numpy()
                if not np.isfinite(feats[:, s.valid]).all():
                    out[s.name] = float("nan")  # a diverged epoch: never the one kept
                    continue
                out[s.name] = float(roc_auc(global_rx(feats, s.valid), s.truth, valid=s.valid))
        out["mean"] = float(np.mean([out[s.name] for s in self.scenes])) if self.scenes else float("nan")
        return out
