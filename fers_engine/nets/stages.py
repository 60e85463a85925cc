"""Training stages as objects: what each one trains, on what batches, with which loss.

A stage holds the modules it puts in train mode, its trainable parameters, its loss (an
``nn.Module``), its optimiser settings and how one training / validation loss is computed; the
trainer (``trainer.py``) runs any stage the same way: epochs of steps, a validation loss and,
when the training files carry labels, the detection AUC of the features it changes (epoch 0
included), keeping the best epoch.

Stages of the published recipe (method.md section 3):
* ``PretrainStage`` ("0"): masked auto-encoding of background patches pre-trains the frozen trunks;
* ``DistillStage`` ("1"): FERD reverse distillation of the spectral enhancer;
* ``StudentStage`` ("2"): the rebellious-student objectives of the spatial branch.
Our objective:
* ``SeparationStage`` ("sep"): targets implanted into crops of a training scene must stand out
  under the product's own detector (RX on x + spe (+ spa)) from that scene's background,
  boundaries included (``losses.SeparationLoss``, ``implant.py``).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .data import PatchSampler
from .losses import DistillationLoss, MaskedReconstructionLoss, SeparationLoss, StudentLoss
from .networks import Networks

#: stable small integers for the per-(seed, stage, epoch) random streams
STAGE_CODES = {"0": 0, "1": 1, "2": 2, "sep": 3}


class Stage:
    """Base class; subclasses set ``name``, ``title``, ``needs`` and implement the hooks."""

    name = ""
    title = ""
    needs: Tuple[str, ...] = ()  # training-only modules of ``Networks`` this stage uses
    by_detection = True  # False: the stage is judged by its loss only (stage 0)

    def __init__(self, nets: Networks, cfg: dict, sampler: PatchSampler, seed: int):
        self.nets, self.cfg, self.sampler, self.seed = nets, cfg, sampler, seed
        self.epochs = int(cfg["epochs"][self.name])
        self.lr = float(cfg["lr"][self.name])
        self.betas = (0.5, 0.999)
        self.loss: nn.Module = nn.Identity()

    # -- what trains -------------------------------------------------------------------------
    def modules(self) -> List[nn.Module]:
        raise NotImplementedError

    def parameters(self) -> List[nn.Parameter]:
        return [p for m in self.modules() for p in m.parameters() if p.requires_grad]

    def optimiser(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, betas=self.betas)

    def begin(self, done: Sequence[str]) -> Optional[str]:
        """Called before the stage's first epoch (not on resume); returns a line for the log."""
        return None

    # -- losses --------------------------------------------------------------------------------
    def train_loss(self, rng: np.random.Generator, device) -> Tuple[torch.Tensor, Dict[str, float]]:
        raise NotImplementedError

    def validation_loss(self, device) -> Tuple[float, Dict[str, float]]:
        """The loss on the fixed validation patches (background only, seeded draws)."""
        rng = np.random.default_rng([self.seed, 999])
        x_np, w_np = self.sampler.validation()
        total, parts = 0.0, []
        with torch.no_grad():
            for i in range(0, len(x_np), 32):
                x = torch.from_numpy(x_np[i : i + 32]).to(device)
                w = torch.from_numpy(w_np[i : i + 32]).to(device)
                loss, p = self._loss(x, w, rng)
                total += float(loss) * len(x)
                parts.append(p)
        return total / len(x_np), {k: float(np.mean([p[k] for p in parts])) for k in parts[0]}

    def _loss(self, x, w, rng):
        raise NotImplementedError

    # -- what is judged ------------------------------------------------------------------------
    def scored(self) -> Tuple[nn.Module, Optional[nn.Module]]:
        """(spectral, spatial or None): the deployed networks whose detection the stage changes."""
        return self.nets.fen, None


class _PatchStage(Stage):
    """A stage trained on random single patches (the published recipe's batches)."""

    def train_loss(self, rng, device):
        x_np, w_np = self.sampler.batch(rng, int(self.cfg["batch"]))
        return self._loss(torch.from_numpy(x_np).to(device), torch.from_numpy(w_np).to(device), rng)


class PretrainStage(_PatchStage):
    name, title, needs, by_detection = (
        "0",
        "masked auto-encoding (trunk pre-training)",
        ("ae_spec", "ae_spat"),
        False,
    )

    def __init__(self, nets, cfg, sampler, seed):
        super().__init__(nets, cfg, sampler, seed)
        from .masks import MaskGenerator

        self.masker = MaskGenerator(seed)
        self.loss = MaskedReconstructionLoss()

    def modules(self):
        return [self.nets.ae_spec, self.nets.ae_spat]

    def _loss(self, x, w, rng):
        from .masks import fill_masked
        from .spatial import fixed_pseudo_rgb

        m = self.masker(rng, x.shape[0], x.shape[2], x.shape[3])
        xm = torch.from_numpy(fill_masked(x.cpu().numpy(), m, rng, self.cfg["mask_mode"])).to(x.device)
        return self.loss(self.nets.ae_spec(xm), self.nets.ae_spat(fixed_pseudo_rgb(xm)), x, w)


class DistillStage(_PatchStage):
    name, title, needs = "1", "reverse distillation (FERD)", ("stage1",)

    def __init__(self, nets, cfg, sampler, seed):
        super().__init__(nets, cfg, sampler, seed)
        self.loss = DistillationLoss(**cfg["stage1_weights"])

    def modules(self):
        return [self.nets.stage1]

    def begin(self, done):
        if "0" in done and not self.cfg["random_trunk"]:
            self.nets.stage1.load_pretrained(self.nets.ae_spec)
            return "stage 1: trunks from stage 0"
        return "stage 1: frozen trunks are randomly initialised (no stage 0)"

    def _loss(self, x, w, rng):
        return self.loss(self.nets.stage1(x), x, w)


class StudentStage(_PatchStage):
    name, title, needs = "2", "rebellious student (spatial branch)", ("frn",)

    def __init__(self, nets, cfg, sampler, seed):
        super().__init__(nets, cfg, sampler, seed)
        self.loss = StudentLoss(**cfg["stage2_weights"])

    def modules(self):
        return [self.nets.spatial, self.nets.frn]

    def begin(self, done):
        if "0" in done and not self.cfg["random_trunk"]:
            self.nets.spatial.trunk.module.load_state_dict(self.nets.ae_spat.trunk.state_dict())
            return "stage 2: spatial trunk from stage 0"
        return "stage 2: the frozen spatial trunk is randomly initialised (no stage 0)"

    def _loss(self, x, w, rng):
        with torch.no_grad():
            spe = self.nets.fen(x)
        spa, _ = self.nets.spatial(x)
        return self.loss(x, spe, spa, self.nets.frn(spa + spe), w)

    def scored(self):
        return self.nets.fen, self.nets.spatial


class SeparationStage(Stage):
    """Implanted targets must stand out under RX from the background of their own scene."""

    name, title = "sep", "implanted-target separation under RX"

    def __init__(self, nets, cfg, sampler, seed):
        super().__init__(nets, cfg, sampler, seed)
        from .implant import Donors, ImplantConfig, Implanter

        sc = cfg["separation"]
        self.with_spatial = "spatial" in cfg["parts"]
        self.groups, self.crops, self.margin = int(sc["groups"]), int(sc["crops"]), int(sc["margin"])
        self.loss = SeparationLoss(**sc["loss"])
        self.implanter = Implanter(seed, ImplantConfig(**sc["implant"]))
        rng = np.random.default_rng([seed, 4242])
        pixels, anomalies = {}, {}
        for s in sampler.scenes:
            ok = np.flatnonzero(~s.excluded.ravel())
            take = rng.choice(ok, size=min(256, ok.size), replace=False) if ok.size else ok
            pixels[s.name] = s.cube.reshape(s.cube.shape[0], -1)[:, take]
            if s.labelled is not None:
                lab = s.labelled
                anomalies[s.name] = lab.cube[:, lab.truth & lab.valid]
        self.donors = Donors(anomalies, pixels)
        # share of the groups that are whole labelled training scenes with their real anomalies
        self.real_fraction = float(sc.get("real_fraction", 0.0))
        self.labelled = [s.labelled for s in sampler.scenes if s.labelled is not None]

    def modules(self):
        return [self.nets.fen] + ([self.nets.spatial] if self.with_spatial else [])

    def begin(self, done):
        # "all": every weight of the deployed networks trains, the trunks included (their
        # BatchNorm stays in eval mode, a fixed per-channel affine map, so nothing depends on batch
        # statistics); "heads": only the last layers (spectral projection P, spatial pooling head)
        # train, on top of the untrained feature extractors
        heads = self.cfg["separation"].get("train", "all") == "heads"
        for m in self.modules():
            for name, p in m.named_parameters():
                p.requires_grad_(not heads or name.startswith(("proj.", "head.")))
        return None

    def _group_loss(self, x_np, w_np, name, rng, device, augment: bool):
        from .implant import spectral_gradient

        if augment:
            x_np = self.implanter.augment(x_np, rng)
        if self.margin and min(x_np.shape[2:]) > 4 * self.margin:
            # crop borders see replicate padding, not the scene: keep them out of stats and loss
            m = self.margin
            w_np = w_np.copy()
            w_np[:, :, :m] = 0
            w_np[:, :, -m:] = 0
            w_np[:, :, :, :m] = 0
            w_np[:, :, :, -m:] = 0
        xa_np, ab_np = self.implanter(x_np, w_np, self.donors, name, rng)
        grad = torch.from_numpy(spectral_gradient(x_np, w_np)).to(device)
        xa = torch.from_numpy(xa_np).to(device)
        z = xa + self.nets.fen(xa)
        if self.with_spatial:
            z = z + self.nets.spatial(xa)[0]
        return self.loss(z, torch.from_numpy(ab_np).to(device), torch.from_numpy(w_np).to(device), grad)

    def train_loss(self, rng, device):
        losses = []
        for _ in range(self.groups):
            if self.labelled and rng.random() < self.real_fraction:
                losses.append(
                    self._scene_loss(self.labelled[int(rng.integers(0, len(self.labelled)))], rng, device)
                )
                continue
            x, w, name = self.sampler.group(rng, self.crops)
            losses.append(self._group_loss(x, w, name, rng, device, augment=True))
        loss = torch.stack(losses).mean()
        return loss, {"sep": float(loss.detach())}

    def _scene_loss(self, scene, rng, device):
        """A whole labelled training scene, its own anomalies in place as the targets, scored
        against the scene-wide statistics exactly as detection scores (rotated / flipped)."""
        from .implant import spectral_gradient

        k = int(rng.integers(0, 4))
        x = np.ascontiguousarray(np.rot90(scene.cube, k, (1, 2)))[None]
        ok = np.ascontiguousarray(np.rot90(scene.valid, k))[None, None].astype(np.float32)
        ab = np.ascontiguousarray(np.rot90(scene.truth, k))[None, None].astype(np.float32) * ok
        grad = torch.from_numpy(spectral_gradient(x, ok)).to(device)
        xt = torch.from_numpy(x).to(device)
        z = xt + self.nets.fen(xt)
        if self.with_spatial:
            z = z + self.nets.spatial(xt)[0]
        return self.loss(z, torch.from_numpy(ab).to(device), torch.from_numpy(ok).to(device), grad)

    def validation_loss(self, device):
        rng = np.random.default_rng([self.seed, 999])
        vals = []
        with torch.no_grad():
            for x, w, name in self.sampler.validation_groups():
                vals.append(float(self._group_loss(x, w, name, rng, device, augment=False)))
        v = float(np.mean(vals)) if vals else float("nan")
        return v, {"sep": v}

    def scored(self):
        return self.nets.fen, (self.nets.spatial if self.with_spatial else None)


STAGES = {cls.name: cls for cls in (PretrainStage, DistillStage, StudentStage, SeparationStage)}
