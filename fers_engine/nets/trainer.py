"""Training: stage 0 (self-supervised trunk pre-training), stage 1 (reverse distillation of the
spectral FEN), stage 2 (rebellious-student spatial branch), with validation-loss checkpoint
selection, safetensors checkpoints, resume and clean cancellation.

    train(["../shared/data/abu-airport-1/abu-airport-1.mat", ...], out_path="models/x.safetensors")

Every epoch is ``steps_per_epoch`` batches of randomly placed, flipped and rotated patches.
After each epoch the validation loss (fixed background patches, never a test label) is computed
and a checkpoint (all weights, optimiser state, history) is written atomically. The weights kept
at the end of a stage are those of its best epoch: for stages 1-2, by default, the best mean RX
AUC on the training files' own labels (``validation.py``; held-out scenes are never training
files), else the lowest validation loss. ``Reporter.check`` is called
every step: a cancel raises ``Cancelled`` and leaves the last complete checkpoint in place,
from which ``resume=True`` continues. Random draws are seeded per (seed, stage, epoch), so a
resumed run repeats exactly what an uninterrupted run would have done.
"""
from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..choices import CHECKPOINT_SELECTIONS
from ..errors import InputError, ModelError
from ..io.atomic import write_text
from ..progress import Reporter
from .model_file import FORMAT, FORMAT_VERSION, require_torch, save_model
from .normalise import DEFAULT as NORM_DEFAULT
from .train_request import check_train_request

STAGES = ("0", "1", "2")

DEFAULT_CONFIG = {
    "bands": 128,
    "patch": 32,
    "batch": 16,
    "steps_per_epoch": 40,
    "epochs": {"0": 6, "1": 6, "2": 4},
    "lr": {"0": 2e-3, "1": 1e-3, "2": 1e-3},
    "spectral": {"width": 24, "hidden": 64, "dilations": [1], "out_act": "none", "skip": True},
    "spatial": {"width": 16, "rgb_hidden": 32, "dilations": [1, 2, 4], "pools": [1, 5, 9, 17], "hidden": 64},
    "frn": {"width": 32, "blocks": 3},
    "stage1_weights": {"w_cos": 1.0, "w_mse": 0.1, "w_align": 1.0},
    "w_sep": 0.0,
    "stage2_weights": {"cc": 1.0, "cos": 0.1, "var": 0.1, "rec": 1.0, "ssim": 0.01},
    "mask_mode": "mix",
    "dilate": 3,
    "val_fraction": 0.15,
    "random_trunk": False,
    # stages 1-2 keep the epoch (0 = the stage's starting point) whose features give the best
    # mean RX AUC on the labelled training files ("detection"), or the lowest validation loss
    # ("loss"; also the fallback when no training file carries ground truth)
    "select": "detection",
}


def merge_config(config: Optional[dict]) -> dict:
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    for k, v in (config or {}).items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return cfg


def _ckpt_paths(out_path: Path):
    return out_path.with_name(out_path.stem + ".ckpt.safetensors"), out_path.with_name(out_path.stem + ".ckpt.json")


class _State:
    """All modules of the three stages, created lazily from the config."""

    def __init__(self, cfg, device):
        from .spectral import SpectralAE, Stage1Graph
        from .spatial import FeatureRestorationNet, SpatialAE, SpatialNet
        c = cfg["bands"]
        sp, sa = cfg["spectral"], cfg["spatial"]
        self.mods = {
            "ae_spec": SpectralAE(c, sp["width"], sp["dilations"]),
            "ae_spat": SpatialAE(c, sa["width"], sa["dilations"]),
            "stage1": Stage1Graph(c, **sp),
            "spatial": SpatialNet(c, **sa),
            "frn": FeatureRestorationNet(c, **cfg["frn"]),
        }
        for m in self.mods.values():
            m.to(device)

    def tensors(self) -> Dict:
        out = {}
        for name, m in self.mods.items():
            for k, v in m.state_dict().items():
                out[f"{name}.{k}"] = v
        return out

    def load(self, tensors: Dict) -> None:
        for name, m in self.mods.items():
            sd = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
            if sd:
                m.load_state_dict(sd)


def _opt_tensors(opt, prefix: str) -> Dict:
    out = {}
    for i, p in enumerate(opt.param_groups[0]["params"]):
        st = opt.state.get(p)
        if not st:
            continue
        for k, v in st.items():
            out[f"{prefix}.{i}.{k}"] = v if hasattr(v, "shape") else __import__("torch").tensor(float(v))
    return out


def _load_opt(opt, tensors: Dict, prefix: str) -> None:
    import torch
    for i, p in enumerate(opt.param_groups[0]["params"]):
        keys = {k.split(".")[-1]: v for k, v in tensors.items() if k.startswith(f"{prefix}.{i}.")}
        if keys:
            st = {}
            for k, v in keys.items():
                st[k] = v.to(p.device) if k != "step" else v.clone().float()
            opt.state[p] = st


def _trainable(stage: str, st: _State):
    m = st.mods
    if stage == "0":
        return list(m["ae_spec"].parameters()) + list(m["ae_spat"].parameters())
    if stage == "1":
        g = m["stage1"]
        return [p for p in g.parameters() if p.requires_grad]
    return [p for p in m["spatial"].parameters() if p.requires_grad] + list(m["frn"].parameters())


def _stage_modules(stage: str, st: _State):
    if stage == "0":
        return [st.mods["ae_spec"], st.mods["ae_spat"]]
    if stage == "1":
        return [st.mods["stage1"]]
    return [st.mods["spatial"], st.mods["frn"]]


def _loss(stage, st, cfg, x, w, rng_np, masker, torch, train=True):
    from .losses import masked_mse, stage1_loss, stage2_loss
    from .masks import fill_masked
    from .spatial import fixed_pseudo_rgb
    if stage == "0":
        m = masker(rng_np, x.shape[0], x.shape[2], x.shape[3])
        xm = torch.from_numpy(fill_masked(x.cpu().numpy(), m, rng_np, cfg["mask_mode"])).to(x.device)
        l_spec = masked_mse(st.mods["ae_spec"](xm), x, w)
        l_spat = masked_mse(st.mods["ae_spat"](fixed_pseudo_rgb(xm)), x, w)
        return l_spec + l_spat, {"spec": float(l_spec.detach()), "spat": float(l_spat.detach())}
    if stage == "1":
        out = st.mods["stage1"](x)
        total, parts = stage1_loss(out, x, w, **cfg["stage1_weights"])
        if cfg.get("w_sep", 0) > 0:
            from .losses import separation_loss
            xa, tgt = implant_targets(x, rng_np, masker, torch)
            fen = st.mods["stage1"].fen
            sep = separation_loss(xa + fen(xa), tgt, w)
            total = total + cfg["w_sep"] * sep
            parts["sep"] = float(sep.detach())
        return total, parts
    fen = st.mods["stage1"].fen
    with torch.no_grad():
        spe = fen(x)
    spa, _ = st.mods["spatial"](x)
    xr = st.mods["frn"](spa + spe)
    return stage2_loss(x, spe, spa, xr, w, cfg["stage2_weights"])


def implant_targets(x, rng_np, masker, torch):
    """Implant random blobs (method.md 3.3 masks) filled with spectra of *another* patch of the
    batch (mostly another scene), blended with a random abundance in [0.3, 1]."""
    b, c, h, w = x.shape
    m = torch.from_numpy(1.0 - masker(rng_np, b, h, w)).to(x.device)[:, None]  # 1 on targets
    perm = torch.from_numpy((np.arange(b) + 1 + rng_np.integers(0, max(b - 1, 1))) % b).to(x.device)
    src = x[perm]
    # a random spatial shift of the donor patch so its content is not aligned with x
    src = torch.roll(src, shifts=(int(rng_np.integers(0, h)), int(rng_np.integers(0, w))), dims=(2, 3))
    alpha = torch.from_numpy(rng_np.uniform(0.3, 1.0, size=(b, 1, 1, 1)).astype(np.float32)).to(x.device)
    a = alpha * m
    return x * (1 - a) + src * a, m


def _deployed(st: _State, with_spatial: bool) -> Dict:
    out = {f"spectral.{k}": v for k, v in st.mods["stage1"].fen.state_dict().items()}
    if with_spatial:
        out.update({f"spatial.{k}": v for k, v in st.mods["spatial"].state_dict().items()})
    return out


def train(inputs: Sequence[str], exclude: Optional[Sequence[Optional[str]]] = None,
          stages: Sequence[str] = STAGES, epochs: Optional[dict | int] = None, device: str = "auto",
          seed: int = 0, out_path: str | Path = "models/fers-custom.safetensors", resume: bool = False,
          reporter: Optional[Reporter] = None, config: Optional[dict] = None, name: Optional[str] = None) -> Path:
    """Train an enhancer on background patches of ``inputs``; returns the written model path.

    ``exclude``: one mask path (or None) per input; None for an input that carries ground truth
    excludes its anomaly pixels dilated by ``config['dilate']`` px. ``epochs``: an int for every
    stage or a {stage: n} dict. ``stages``: a subset of ('0', '1', '2'); stages 1-2 without 0 use
    randomly initialised frozen trunks (the ablation) unless a resumed checkpoint holds stage 0.
    """
    torch = require_torch()
    from .data import PatchSampler, prepare_scene, sha256
    from ..detectors.device import choose_device
    from .masks import MaskGenerator
    reporter = reporter or Reporter()
    cfg = merge_config(config)
    if epochs is not None:
        cfg["epochs"] = {s: int(epochs) for s in STAGES} if isinstance(epochs, int) else {**cfg["epochs"], **{str(k): int(v) for k, v in epochs.items()}}
    stages = tuple(sorted(str(s) for s in stages))
    if not stages or any(s not in STAGES for s in stages):
        raise InputError(f"stages must be a subset of {STAGES}, got {stages}")
    if cfg["random_trunk"]:
        stages = tuple(s for s in stages if s != "0")
    if cfg["select"] not in CHECKPOINT_SELECTIONS:
        raise InputError(f"unknown checkpoint selection {cfg['select']!r}: choose one of "
                         f"{', '.join(CHECKPOINT_SELECTIONS)}")
    inputs = [str(p) for p in inputs]
    if not inputs:
        raise InputError("no training input given")
    if exclude is not None and len(exclude) != len(inputs):
        raise InputError(f"{len(exclude)} exclusion masks given for {len(inputs)} inputs")
    for p in inputs:
        if not Path(p).is_file():
            raise InputError(f"training input not found: {p}")
    out_path = Path(out_path)
    ck_w, ck_j = _ckpt_paths(out_path)
    check_train_request(inputs, exclude, {s: cfg["epochs"][s] for s in stages}, out_path, (ck_w, ck_j), reporter)
    dev = choose_device(device, reporter)
    torch.manual_seed(seed)
    t_start = time.time()

    reporter.info(f"training on {len(inputs)} file(s), stages {', '.join(stages)}, device {dev}")
    files = [{"name": Path(p).name, "sha256": sha256(p)} for p in inputs]
    scenes = []
    for i, p in enumerate(inputs):
        reporter.check()
        scenes.append(prepare_scene(p, cfg["bands"], None if exclude is None else exclude[i], cfg["dilate"],
                                    cfg["patch"], cfg["val_fraction"], seed, reporter,
                                    keep_labelled=cfg["select"] == "detection"))
    sampler = PatchSampler(scenes, cfg["patch"])
    xv_np, wv_np = sampler.validation()
    reporter.info(f"{len(xv_np)} validation patches of {cfg['patch']} px (background only)")
    masker = MaskGenerator(seed)
    from .validation import DetectionValidator
    validator = DetectionValidator([s.labelled for s in scenes if s.labelled is not None])
    if cfg["select"] == "detection":
        reporter.info(f"checkpoint selection: mean RX AUC on {len(validator.names)} labelled training file(s)"
                      if validator else "checkpoint selection: no training file has ground truth, "
                      "so stages keep their lowest validation loss")

    st = _State(cfg, dev)
    state = {"config": cfg, "files": files, "stages": list(stages), "seed": seed, "done": [],
             "history": {}, "epoch": {}, "best": {}, "best_epoch": {}, "criterion": {},
             "validation_auc": {}, "elapsed_s": 0.0}
    resumed_tensors = None
    if resume and ck_w.is_file() and ck_j.is_file():
        old = json.loads(ck_j.read_text())
        if old.get("config") != json.loads(json.dumps(cfg)) or old.get("files") != files or old.get("seed") != seed:
            raise ModelError(f"cannot resume from {ck_w}: it was made with other inputs, seed or settings")
        from .model_file import load_model, torch_tensors
        resumed_tensors = torch_tensors(load_model(ck_w, expect_format=None)[0])
        st.load({k[4:]: v for k, v in resumed_tensors.items() if k.startswith("cur.")})
        state.update({k: old[k] for k in ("done", "history", "epoch", "best", "best_epoch", "criterion",
                                          "validation_auc", "elapsed_s")})
        reporter.info(f"resuming from {ck_w.name}: stages done {state['done'] or 'none'}, "
                      f"epochs {state['epoch']}")
    elif resume:
        reporter.info("no checkpoint to resume from: starting from scratch")

    total_steps = sum(cfg["epochs"][s] * cfg["steps_per_epoch"] for s in stages)
    steps_before = {s: sum(cfg["epochs"][t] * cfg["steps_per_epoch"] for t in stages if t < s) for s in stages}
    xv = torch.from_numpy(xv_np).to(dev)
    wv = torch.from_numpy(wv_np).to(dev)

    def save_ckpt(stage, opt, best_sd):
        tens = {f"cur.{k}": v for k, v in st.tensors().items()}
        if opt is not None:
            tens.update(_opt_tensors(opt, f"opt.{stage}"))
        if best_sd is not None:
            tens.update({f"best.{k}": v for k, v in best_sd.items()})
        state["elapsed_s"] = state["elapsed_s"] + (time.time() - save_ckpt.t0)
        save_ckpt.t0 = time.time()
        save_model(ck_w, tens, {"format": "fers-checkpoint"}, sidecar=False)
        write_text(ck_j, json.dumps(state, indent=1))
    save_ckpt.t0 = time.time()

    for stage in stages:
        if stage in state["done"]:
            continue
        if stage == "1" and state["epoch"].get("1", 0) == 0 and not cfg["random_trunk"] and ("0" in state["done"]):
            st.mods["stage1"].load_pretrained(st.mods["ae_spec"])
        if stage == "2" and state["epoch"].get("2", 0) == 0 and not cfg["random_trunk"] and ("0" in state["done"]):
            st.mods["spatial"].trunk.module.load_state_dict(st.mods["ae_spat"].trunk.state_dict())
        if stage in ("1", "2") and "0" not in state["done"]:
            reporter.info(f"stage {stage}: frozen trunks are randomly initialised (no stage 0)")
        params = _trainable(stage, st)
        opt = torch.optim.Adam(params, lr=cfg["lr"][stage], betas=(0.5, 0.999))
        best_sd = None
        if resumed_tensors is not None and state["epoch"].get(stage, 0) > 0:
            _load_opt(opt, resumed_tensors, f"opt.{stage}")
            b = {k[5:]: v for k, v in resumed_tensors.items() if k.startswith("best.")}
            best_sd = b or None
        hist = state["history"].setdefault(stage, [])
        n_ep = cfg["epochs"][stage]
        by_auc = stage in ("1", "2") and bool(validator)
        state["criterion"][stage] = "auc" if by_auc else "loss"
        aucs = state["validation_auc"].setdefault(stage, [])

        def detection_auc() -> float:
            for m in _stage_modules(stage, st):
                m.eval()
            res = validator.score(stage, st.mods["stage1"].fen, st.mods["spatial"])
            aucs.append(res["mean"])
            return res["mean"]

        if by_auc and state["epoch"].get(stage, 0) == 0:
            auc0 = detection_auc()
            reporter.info(f"stage {stage} epoch 0 (before training): validation mean RX AUC {auc0:.4f}")
            state["best"][stage], state["best_epoch"][stage] = auc0, 0
            best_sd = _stage_weights(st, stage)
        for ep in range(state["epoch"].get(stage, 0), n_ep):
            rng = np.random.default_rng([seed, int(stage), ep])
            torch.manual_seed(seed * 1000 + int(stage) * 100 + ep)
            for m in _stage_modules(stage, st):
                m.train()
            tl = 0.0
            for it in range(cfg["steps_per_epoch"]):
                x_np, w_np = sampler.batch(rng, cfg["batch"])
                x = torch.from_numpy(x_np).to(dev)
                w = torch.from_numpy(w_np).to(dev)
                loss, parts = _loss(stage, st, cfg, x, w, rng, masker, torch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tl += float(loss.detach())
                done = steps_before[stage] + ep * cfg["steps_per_epoch"] + it + 1
                reporter.step(done / total_steps)
            for m in _stage_modules(stage, st):
                m.eval()
            vrng = np.random.default_rng([seed, 999])
            with torch.no_grad():
                vals, vparts = [], []
                for i in range(0, len(xv), 32):
                    l, pp = _loss(stage, st, cfg, xv[i:i + 32], wv[i:i + 32], vrng, masker, torch, train=False)
                    vals.append(float(l) * len(xv[i:i + 32]))
                    vparts.append(pp)
                vloss = sum(vals) / len(xv)
            hist.append({"epoch": ep + 1, "train": tl / cfg["steps_per_epoch"], "val": vloss,
                         "val_parts": {k: float(np.mean([p[k] for p in vparts])) for k in vparts[0]}})
            auc_text = ""
            if by_auc:
                hist[-1]["val_auc"] = detection_auc()
                auc_text = f", mean RX AUC {hist[-1]['val_auc']:.4f}"
            reporter.info(f"stage {stage} epoch {ep + 1}/{n_ep}: train {tl / cfg['steps_per_epoch']:.4f} "
                          f"val {vloss:.4f} ({', '.join(f'{k} {v:.4f}' for k, v in hist[-1]['val_parts'].items())})"
                          f"{auc_text}")
            better = (hist[-1]["val_auc"] > state["best"][stage] if by_auc else
                      stage not in state["best"] or vloss < state["best"][stage])
            if better:
                state["best"][stage] = hist[-1]["val_auc"] if by_auc else vloss
                state["best_epoch"][stage] = ep + 1
                best_sd = _stage_weights(st, stage)
            state["epoch"][stage] = ep + 1
            save_ckpt(stage, opt, best_sd)
        if best_sd is not None:
            st.load(best_sd)
        state["done"].append(stage)
        what = "mean RX AUC" if state["criterion"][stage] == "auc" else "validation loss"
        reporter.info(f"stage {stage} done: best {what} {state['best'].get(stage, float('nan')):.4f} "
                      f"at epoch {state['best_epoch'].get(stage)}")
        save_ckpt(stage, None, None)

    with_spatial = "2" in state["done"]
    if "1" not in state["done"]:
        raise InputError("no trained spectral enhancer: stage 1 must be trained (or resumed) to write a model")
    arch = {"bands": cfg["bands"], "spectral": cfg["spectral"], "spatial": cfg["spatial"] if with_spatial else None}
    from .. import __version__
    card = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "name": name or out_path.stem,
        "arch": arch,
        "parts": ["spectral", "spatial"] if with_spatial else ["spectral"],
        "wavelengths": None,
        "band_grid": f"band axis: any input is resampled along its band axis onto {cfg['bands']} bands "
                     "(training scenes carry no wavelengths)",
        "normalisation": dict(NORM_DEFAULT),
        "halo": None,
        "training": {
            "files": files,
            "exclusion": "explicit masks" if exclude is not None else
            f"ground-truth anomaly pixels dilated by {cfg['dilate']} px (files with ground truth)",
            "stages": list(state["done"]),
            "epochs": {s: cfg["epochs"][s] for s in state["done"]},
            "steps_per_epoch": cfg["steps_per_epoch"], "batch": cfg["batch"], "patch": cfg["patch"],
            "validation_loss": {s: [h["val"] for h in state["history"].get(s, [])] for s in state["done"]},
            "best_epoch": state["best_epoch"],
            "selection": {s: ("the epoch (0 = before the stage's training) with the best mean RX AUC on the "
                              "labelled training files" if state["criterion"].get(s) == "auc" else
                              "the epoch with the lowest validation loss (background patches only)")
                          for s in state["done"]},
            "validation_auc": {s: state["validation_auc"][s] for s in state["done"]
                               if state["criterion"].get(s) == "auc"},
            "validation_auc_files": validator.names,
            "seed": seed,
            "device": dev,
            "time_s": round(state["elapsed_s"] + (time.time() - save_ckpt.t0), 1),
            "config": cfg,
            "trunks": "random frozen (ablation)" if (cfg["random_trunk"] or "0" not in state["done"]) else
            "pre-trained in stage 0 (masked auto-encoding of background patches), then frozen",
        },
        "code_version": __version__,
    }
    from .spectral import SpectralFEN
    from .spatial import SpatialNet
    card["halo"] = max(SpectralFEN(2, **cfg["spectral"]).halo, SpatialNet(2, **cfg["spatial"]).halo if with_spatial else 0)
    save_model(out_path, _deployed(st, with_spatial), card)
    reporter.info(f"model written: {out_path} ({card['training']['time_s']:.0f} s)")
    return out_path


def selection_summary(training: dict) -> List[str]:
    """One phrase per trained stage of a model card: the criterion's value at the kept epoch."""
    out = []
    for s in training["stages"]:
        ep, n = training["best_epoch"][s], training["epochs"][s]
        aucs = training.get("validation_auc", {}).get(s)
        if aucs:
            out.append(f"stage {s}: AUC {aucs[ep]:.4f} (epoch {ep}/{n})")
        else:
            out.append(f"stage {s}: loss {training['validation_loss'][s][ep - 1]:.4f} (epoch {ep}/{n})")
    return out


def _stage_weights(st: _State, stage: str) -> Dict:
    """A detached copy of the weights a stage trains, to restore its best epoch."""
    return {k: v.detach().clone() for mm in _stage_modules(stage, st) for k, v in _prefixed(st, mm).items()}


def _prefixed(st: _State, module) -> Dict:
    for name, m in st.mods.items():
        if m is module:
            return {f"{name}.{k}": v for k, v in m.state_dict().items()}
    return {}
