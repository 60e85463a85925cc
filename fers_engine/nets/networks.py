"""Every network a training run uses, built once from the run's config, and the deployed part.

The deployed enhancers are ``fen`` (spectral) and ``spatial``; the other modules exist only for
the published recipe's stages (stage-0 auto-encoders, the stage-1 reverse-distillation graph
around ``fen``, the stage-2 Feature Restoration Net) and are built only when a stage needs them.
"""

from __future__ import annotations

from typing import Dict, Iterable

import torch
from torch import nn

from .blocks import expanded_state_dict
from .spatial import FeatureRestorationNet, SpatialAE, SpatialNet
from .spectral import SpectralAE, SpectralFEN, Stage1Graph

#: training-only modules and what builds them
_EXTRA = ("ae_spec", "ae_spat", "stage1", "frn")


class Networks(nn.Module):
    """``fen`` and ``spatial`` (deployed) plus the training-only modules named in ``extra``."""

    def __init__(self, cfg: dict, extra: Iterable[str] = ()):
        super().__init__()
        c = int(cfg["bands"])
        sym = bool(cfg.get("symmetric", False))
        sp, sa = cfg["spectral"], cfg["spatial"]
        self.fen = SpectralFEN(c, **sp, symmetric=sym)
        self.spatial = SpatialNet(c, **sa, symmetric=sym)
        extra = set(extra)
        unknown = extra - set(_EXTRA)
        if unknown:
            raise ValueError(f"unknown training modules {sorted(unknown)}")
        if "ae_spec" in extra:
            self.ae_spec = SpectralAE(c, sp["width"], sp["dilations"], symmetric=sym)
        if "ae_spat" in extra:
            self.ae_spat = SpatialAE(c, sa["width"], sa["dilations"], symmetric=sym)
        if "stage1" in extra:
            self.stage1 = Stage1Graph(self.fen)
        if "frn" in extra:
            self.frn = FeatureRestorationNet(c, **cfg["frn"])

    def checkpoint_state(self) -> Dict[str, torch.Tensor]:
        """Every tensor once: the stage-1 graph holds ``fen`` itself, so its copy is left out."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("stage1.fen.")}

    def load_checkpoint_state(self, state: Dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("stage1.fen.")]
        if missing or unexpected:
            raise RuntimeError(
                f"checkpoint does not fit the networks (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )

    def deployed_tensors(self, with_spatial: bool) -> Dict[str, torch.Tensor]:
        """The weights a model file holds: plain (expanded) kernels under ``spectral.*`` and, with
        the spatial branch, ``spatial.*``."""
        out = {f"spectral.{k}": v for k, v in expanded_state_dict(self.fen).items()}
        if with_spatial:
            out.update({f"spatial.{k}": v for k, v in expanded_state_dict(self.spatial).items()})
        return out


def deployed_arch(cfg: dict, with_spatial: bool) -> dict:
    """The ``arch`` of a model card written from ``cfg``."""
    sym = bool(cfg.get("symmetric", False))
    return {
        "bands": int(cfg["bands"]),
        "spectral": {**cfg["spectral"], "symmetric": sym},
        "spatial": {**cfg["spatial"], "symmetric": sym} if with_spatial else None,
    }
