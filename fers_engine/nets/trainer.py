"""``train()``: one entry point that trains a recipe's candidates and writes the best model.

    result = train(["../shared/data/abu-airport-1/abu-airport-1.mat", ...], "models/x.safetensors")
    result.model, result.chosen, result.stages["sep"].kept_epoch

Each candidate runs the recipe's stages (``stages.py``) the same way: every epoch is
``steps_per_epoch`` batches; after each epoch come the validation loss (fixed background
patches, seeded) and, when training files carry labels, the mean RX AUC of the stage's features
on those files (``validation.py``; epoch 0, the stage's starting point, is scored too). A stage
keeps its best epoch by that AUC, else by the loss. A diverged epoch (non-finite features) scores
NaN and is never kept. The candidate with the best kept AUC is written to ``out_path`` with its
model card; with no labelled file, the first candidate.

While a candidate trains, a checkpoint (weights, optimiser state, progress) is written atomically
after every epoch (``checkpoint.py`` names the files). ``Reporter.check`` is called every step: a
cancel raises ``Cancelled`` and leaves the last complete checkpoint and any finished candidate,
from which ``resume=True`` continues exactly (random draws are seeded per seed, stage and epoch).
A finished run deletes every intermediate file unless ``keep_checkpoints``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..choices import CheckpointSelection, TruthPolicy
from ..errors import InputError, ModelError
from ..io.atomic import write_text
from ..progress import Reporter
from .checkpoint import candidate_path, checkpoint_paths, run_files
from .model_file import FORMAT, FORMAT_VERSION, load_model, require_torch, save_model, torch_tensors
from .normalise import DEFAULT as NORM_DEFAULT
from .recipes import Recipe, get_recipe
from .train_request import check_train_request

__all__ = [
    "StageResult",
    "TrainResult",
    "train",
]


@dataclass(frozen=True)
class StageResult:
    """One trained stage of the written model: epochs run, the kept one and the curves."""

    stage: str
    epochs: int
    kept_epoch: int
    criterion: str  # "auc" or "loss"
    train_loss: Tuple[float, ...]
    validation_loss: Tuple[float, ...]
    validation_auc: Tuple[float, ...]  # epoch 0 first; empty when judged by the loss


@dataclass(frozen=True)
class TrainResult:
    """What a ``train()`` call produced."""

    model: Path
    card: Path
    recipe: str
    device: str
    seed: int
    stages: Dict[str, StageResult]
    chosen: str
    candidates: Tuple[Dict, ...]  # tag, seed, validation_auc, time_s of every candidate
    validation_auc: Optional[float]  # the kept candidate's, None without labelled files
    seconds: float
    kept_files: Tuple[Path, ...] = field(default_factory=tuple)  # checkpoints kept on request

    @property
    def validation_loss(self) -> Optional[float]:
        """The kept epoch's validation loss of the last stage."""
        last = list(self.stages.values())[-1] if self.stages else None
        if last is None or not last.validation_loss:
            return None
        return last.validation_loss[max(last.kept_epoch, 1) - 1]


def train(
    inputs: Sequence[str],
    out_path="models/fers-custom.safetensors",
    recipe: Optional[str] = None,
    exclude: Optional[Sequence[Optional[str]]] = None,
    truth: str = "found",
    stages: Optional[Sequence[str]] = None,
    epochs: Optional[dict | int] = None,
    steps_per_epoch: Optional[int] = None,
    seed: Optional[int] = None,
    device: str = "auto",
    resume: bool = False,
    keep_checkpoints: bool = False,
    reporter: Optional[Reporter] = None,
    config: Optional[dict] = None,
    name: Optional[str] = None,
) -> TrainResult:
    """Train ``recipe`` (None / "default": the shipped default's) on ``inputs``; write the best
    candidate to ``out_path``.

    ``exclude``: one mask path (or None) per input, non-zero pixels left out of training.
    ``truth``: "found" uses the anomaly truth stored in or beside each input (to exclude its
    pixels and to choose epochs and candidates; every use is logged), "none" uses no label.
    ``stages``: a subset of the recipe's stages. ``epochs``: an int for every stage or a
    {stage: n} dict. ``seed``: train only this seed instead of the recipe's candidates.
    ``config``: overrides of the recipe's settings (experiments).

    Args:
        inputs: background scenes (any format ``open_scene`` reads).
        out_path: the ``.safetensors`` model to write; its card is written beside it as JSON.
        recipe: a ``choices.TrainingRecipe``; None is "default", the shipped model's recipe.
        exclude, truth, stages, epochs, seed, config: as above.
        steps_per_epoch: optimiser steps per epoch (the recipe's when None).
        device: ``choices.Device``; training needs torch (``hints`` names how to install it).
        resume: continue from the checkpoints a stopped run left beside ``out_path``.
        keep_checkpoints: keep those checkpoints after a successful run.
        reporter: progress, messages and cancel.
        name: the model's name in its card (the file's stem when None).

    Returns:
        A ``TrainResult``: the model and card written, the kept candidate and epochs, the
        validation curves, the device and the time taken.

    Raises:
        FersError: a bad request (checked before any work), no torch, or cancelled.
    """
    require_torch()
    from ..detectors.device import choose_device
    from .data import model_grid, prepare_scene, read_scene, sha256

    reporter = reporter or Reporter()
    rec = get_recipe(recipe)
    cfg = rec.full_config(config)
    if epochs is not None:
        cfg["epochs"] = (
            {s: int(epochs) for s in cfg["epochs"]}
            if isinstance(epochs, int)
            else {**cfg["epochs"], **{str(k): int(v) for k, v in epochs.items()}}
        )
    if steps_per_epoch is not None:
        cfg["steps_per_epoch"] = int(steps_per_epoch)
    run_stages = _check_stages(rec, stages, cfg)
    CheckpointSelection.parse(cfg["select"], "checkpoint selection")
    inputs = [str(p) for p in inputs]
    out_path = Path(out_path)
    candidates = (
        [c for c in rec.candidates]
        if seed is None
        else [{"tag": f"s{seed}", "seed": int(seed), "config": {}}]
    )
    # inputs, exclusion masks, epochs and every file the run writes, before any work
    check_train_request(
        inputs,
        exclude,
        {s: cfg["epochs"][s] for s in run_stages},
        out_path,
        run_files(out_path, [c["tag"] for c in candidates]),
        reporter,
    )
    TruthPolicy.parse(truth, "ground-truth policy")
    if int(cfg["steps_per_epoch"]) < 1:
        raise InputError("steps per epoch must be at least 1")
    if out_path.suffix != ".safetensors":
        raise InputError(f"the model file must end in .safetensors: {out_path}")
    dev = choose_device(device, reporter)
    t0 = time.time()

    reporter.info(
        f"training recipe '{rec.name}' ({rec.description}) on {len(inputs)} file(s), stages "
        f"{', '.join(run_stages)}, {len(candidates)} candidate(s), device {dev}"
    )
    raws = []
    for i, p in enumerate(inputs):
        reporter.check()
        raws.append(read_scene(p, truth="none" if exclude is not None and exclude[i] else truth))
    labelled = [r for r in raws if r.truth is not None]
    if truth == "none":
        reporter.info("ground truth: not used (truth=none): epochs are chosen by the validation loss")
    elif labelled:
        reporter.info(
            f"ground truth used from {len(labelled)} of {len(raws)} file(s): "
            + ", ".join(
                f"{r.name} ({r.truth_source}, {int(r.truth.sum()) if r.truth is not None else 0} px)"
                for r in labelled
            )
            + "; their anomaly pixels are excluded from training and they choose epochs and candidates"
        )
    else:
        reporter.info("ground truth: none found with the inputs: epochs are chosen by the validation loss")
    grid = model_grid(raws, int(cfg["bands"]), reporter)
    files = [{"name": r.name, "sha256": sha256(r.path), "truth": r.truth_source} for r in raws]
    scenes = []
    for i, r in enumerate(raws):
        reporter.check()
        scenes.append(
            prepare_scene(
                r,
                grid,
                None if exclude is None else exclude[i],
                cfg["dilate"],
                cfg["patch"],
                cfg["val_fraction"],
                0,
                reporter,
                keep_labelled=cfg["select"] == "detection",
                band_variants=int(cfg["band_variants"]) if "sep" in run_stages else 0,
            )
        )
    del raws
    data = _Data(scenes, files, grid, cfg["patch"])

    done: List[Dict] = []
    n = len(candidates)
    for k, c in enumerate(candidates):
        path = out_path if n == 1 else candidate_path(out_path, c["tag"])
        ccfg = rec.full_config({**(config or {}), **c["config"]})
        ccfg["epochs"], ccfg["steps_per_epoch"] = cfg["epochs"], cfg["steps_per_epoch"]
        title = f"{name or out_path.stem}" + ("" if n == 1 else f" ({c['tag']})")
        rep = reporter.stage(k / n, (k + 1) / n)
        if n > 1:
            reporter.info(f"candidate {c['tag']} ({k + 1} of {n})")
        card = _train_candidate(data, rec, ccfg, run_stages, int(c["seed"]), path, dev, resume, rep, title)
        done.append(
            {
                "tag": c["tag"],
                "seed": int(c["seed"]),
                "path": path,
                "card": card,
                "validation_auc": kept_auc(card["training"]),
                "time_s": card["training"]["time_s"],
            }
        )
        if n > 1:
            reporter.info(f"candidate {c['tag']}: validation mean RX AUC {_fmt(done[-1]['validation_auc'])}")
    scored = [d for d in done if d["validation_auc"] is not None and np.isfinite(d["validation_auc"])]
    best = max(scored, key=lambda d: d["validation_auc"]) if scored else done[0]
    summary = tuple({k: v for k, v in d.items() if k not in ("path", "card")} for d in done)
    if n > 1:
        reporter.info(
            f"kept candidate {best['tag']}"
            + ("" if scored else " (no training file has ground truth: the first candidate is kept)")
        )
        tensors, card = load_model(best["path"])
        card["name"] = name or out_path.stem
        card["training"]["chosen"] = best["tag"]
        card["training"]["candidates"] = list(summary)
        save_model(out_path, tensors, card)
    else:
        card = best["card"]
    kept: Tuple[Path, ...] = ()
    leftovers = [p for p in run_files(out_path, [c["tag"] for c in candidates]) if p.exists()]
    if keep_checkpoints:
        kept = tuple(leftovers)
    else:
        for leftover in leftovers:
            leftover.unlink()
    seconds = time.time() - t0
    reporter.info(f"model written: {out_path} ({seconds:.0f} s)")
    return result_from_card(out_path, card, seconds, kept)


def kept_auc(training: dict) -> Optional[float]:
    """The validation AUC at the kept epoch of the last stage judged by detection (None without)."""
    aucs = training.get("validation_auc") or {}
    for stage in reversed(training.get("stages", [])):
        if aucs.get(stage):
            return float(aucs[stage][training["best_epoch"][stage]])
    return None


def result_from_card(path: Path, card: dict, seconds: float, kept=()) -> TrainResult:
    tr = card["training"]
    stages = {}
    for s in tr["stages"]:
        stages[s] = StageResult(
            s,
            int(tr["epochs"][s]),
            int(tr["best_epoch"][s]),
            "auc" if tr.get("validation_auc", {}).get(s) else "loss",
            tuple(tr.get("train_loss", {}).get(s, [])),
            tuple(tr["validation_loss"].get(s, [])),
            tuple(tr.get("validation_auc", {}).get(s, [])),
        )
    return TrainResult(
        Path(path),
        Path(path).with_suffix(".json"),
        tr.get("recipe", "?"),
        tr["device"],
        int(tr["seed"]),
        stages,
        tr.get("chosen", f"s{tr['seed']}"),
        tuple(tr.get("candidates", [])),
        kept_auc(tr),
        float(seconds),
        tuple(kept),
    )


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


# -- internals --------------------------------------------------------------------------------
@dataclass
class _Data:
    scenes: list
    files: list
    grid: Any  # nets.inputs.Grid
    patch: int


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _check_stages(rec: Recipe, stages, cfg) -> Tuple[str, ...]:
    if stages is None:
        chosen = tuple(rec.stages)
    else:
        chosen = tuple(str(s) for s in stages)
        bad = [s for s in chosen if s not in rec.stages]
        if not chosen or bad:
            raise InputError(
                f"recipe '{rec.name}' has the stages {', '.join(rec.stages)}; got "
                f"{', '.join(chosen) or 'none'}"
            )
        chosen = tuple(s for s in rec.stages if s in chosen)
    if cfg.get("random_trunk"):
        chosen = tuple(s for s in chosen if s != "0")
    if not any(s in ("1", "sep") for s in chosen):
        raise InputError("no stage trains the spectral enhancer: include stage 1 (published) or sep")
    return chosen


def _opt_tensors(opt, prefix: str) -> Dict:
    import torch

    out = {}
    for i, p in enumerate(opt.param_groups[0]["params"]):
        for k, v in (opt.state.get(p) or {}).items():
            out[f"{prefix}.{i}.{k}"] = v if hasattr(v, "shape") else torch.tensor(float(v))
    return out


def _load_opt(opt, tensors: Dict, prefix: str) -> None:
    for i, p in enumerate(opt.param_groups[0]["params"]):
        keys = {k.split(".")[-1]: v for k, v in tensors.items() if k.startswith(f"{prefix}.{i}.")}
        if keys:
            opt.state[p] = {
                k: (v.to(p.device) if k != "step" else v.clone().float()) for k, v in keys.items()
            }


def _train_candidate(
    data: _Data,
    rec: Recipe,
    cfg: dict,
    run_stages,
    seed: int,
    out_path: Path,
    dev: str,
    resume: bool,
    reporter: Reporter,
    name: str,
) -> dict:
    """Train one candidate to ``out_path``; returns its model card."""
    run = _CandidateRun(data, rec, cfg, run_stages, seed, out_path, dev, reporter, name)
    if resume:
        finished = run.finished_card()
        if finished is not None:
            reporter.info(f"{out_path.name}: already trained, reused")
            return finished
        run.resume()
    for sname in run_stages:
        if sname not in run.state["done"]:
            run.train_stage(sname)
    return run.write_model()


class _CandidateRun:
    """One candidate's training: its networks, data, progress state and checkpoint files."""

    def __init__(
        self,
        data: _Data,
        rec: Recipe,
        cfg: dict,
        run_stages,
        seed: int,
        out_path: Path,
        dev: str,
        reporter: Reporter,
        name: str,
    ):
        import torch

        from .data import PatchSampler
        from .networks import Networks
        from .stages import STAGES
        from .validation import DetectionValidator

        self.data, self.rec, self.cfg, self.run_stages, self.seed = data, rec, cfg, tuple(run_stages), seed
        self.out_path, self.dev, self.reporter, self.name = out_path, dev, reporter, name
        self.ck_w, self.ck_j = checkpoint_paths(out_path)
        self.fingerprint = {
            "recipe": rec.name,
            "config": json.loads(json.dumps(cfg)),
            "files": data.files,
            "seed": seed,
            "stages": list(run_stages),
        }
        torch.manual_seed(seed)
        self.nets = Networks(cfg, {m for s in run_stages for m in STAGES[s].needs}).to(dev)
        self.sampler = PatchSampler(data.scenes, data.patch)
        self.validator = DetectionValidator([s.labelled for s in data.scenes if s.labelled is not None])
        if cfg["select"] == "detection":
            reporter.info(
                f"checkpoint selection: mean RX AUC on {len(self.validator.names)} labelled training file(s)"
                if self.validator
                else "checkpoint selection: no training file has ground "
                "truth, so stages keep their lowest validation loss"
            )
        self.state: Dict[str, Any] = {
            "fingerprint": self.fingerprint,
            "done": [],
            "history": {},
            "epoch": {},
            "best": {},
            "best_epoch": {},
            "criterion": {},
            "validation_auc": {},
            "elapsed_s": 0.0,
        }
        self.resumed: Optional[Dict] = None
        self.t_mark = time.time()
        steps = int(cfg["steps_per_epoch"])
        self.total_steps = sum(int(cfg["epochs"][s]) * steps for s in self.run_stages)
        self.steps_before = {
            s: sum(int(cfg["epochs"][t]) * steps for t in self.run_stages[:i])
            for i, s in enumerate(self.run_stages)
        }

    # -- resuming ------------------------------------------------------------------------------
    def finished_card(self) -> Optional[dict]:
        """The card of a model this very run already wrote (a resumed multi-candidate run)."""
        card_path = self.out_path.with_suffix(".json")
        if self.out_path.is_file() and card_path.is_file():
            old = json.loads(card_path.read_text())
            if old.get("training", {}).get("fingerprint") == self.fingerprint:
                return old
        return None

    def resume(self) -> None:
        if not (self.ck_w.is_file() and self.ck_j.is_file()):
            self.reporter.info("no checkpoint to resume from: starting from scratch")
            return
        old = json.loads(self.ck_j.read_text())
        if old.get("fingerprint") != self.fingerprint:
            raise ModelError(
                f"cannot resume from {self.ck_w}: it was made with other inputs, seed or settings"
            )
        self.resumed = torch_tensors(load_model(self.ck_w, expect_format=None)[0])
        self._load_current()
        self.state.update({k: old[k] for k in self.state if k in old})
        self.reporter.info(
            f"resuming from {self.ck_w.name}: stages done {self.state['done'] or 'none'}, "
            f"epochs {self.state['epoch']}"
        )

    def _load_current(self) -> None:
        assert self.resumed is not None, "called after a checkpoint was loaded"
        self.nets.load_checkpoint_state({k[4:]: v for k, v in self.resumed.items() if k.startswith("cur.")})

    def save_checkpoint(self, opt, best_sd) -> None:
        tensors = {f"cur.{k}": v for k, v in self.nets.checkpoint_state().items()}
        if opt is not None:
            tensors.update(_opt_tensors(opt, "opt"))
        if best_sd is not None:
            tensors.update({f"best.{k}": v for k, v in best_sd.items()})
        self.state["elapsed_s"] += time.time() - self.t_mark
        self.t_mark = time.time()
        save_model(self.ck_w, tensors, {"format": "fers-checkpoint"}, sidecar=False)
        write_text(self.ck_j, json.dumps(self.state, indent=1))

    # -- one stage -----------------------------------------------------------------------------
    def train_stage(self, sname: str) -> None:
        """Epochs of one stage, its best epoch kept (by detection AUC when labels exist, else by the
        validation loss), a checkpoint after each epoch; a non-finite loss stops the stage."""
        import torch

        from .stages import STAGE_CODES, STAGES

        cfg, state, rep = self.cfg, self.state, self.reporter
        stage = STAGES[sname](self.nets, cfg, self.sampler, self.seed)
        first = state["epoch"].get(sname, 0) == 0
        note = stage.begin(state["done"])
        if not first:  # resumed mid-stage: the weights are the checkpoint's, whatever begin() loaded
            note = None
            self._load_current()
        if note:
            rep.info(note)
        opt = stage.optimiser()
        best_sd = None
        if self.resumed is not None and not first:
            _load_opt(opt, self.resumed, "opt")
            best_sd = {k[5:]: v for k, v in self.resumed.items() if k.startswith("best.")} or None
        hist = state["history"].setdefault(sname, [])
        aucs = state["validation_auc"].setdefault(sname, [])
        by_auc = stage.by_detection and bool(self.validator) and cfg["select"] == "detection"
        state["criterion"][sname] = "auc" if by_auc else "loss"

        def detection_auc() -> float:
            for m in stage.modules():
                m.eval()
            value = self.validator.score(*stage.scored())["mean"]
            aucs.append(value)
            return value

        if by_auc and first:
            auc0 = detection_auc()
            rep.info(f"stage {sname} epoch 0 (before training): validation mean RX AUC {auc0:.4f}")
            state["best"][sname], state["best_epoch"][sname] = auc0, 0
            best_sd = _copy(self.nets)
        n_ep, steps = int(cfg["epochs"][sname]), int(cfg["steps_per_epoch"])
        for ep in range(state["epoch"].get(sname, 0), n_ep):
            rng = np.random.default_rng([self.seed, STAGE_CODES[sname], ep])
            torch.manual_seed(self.seed * 1000 + STAGE_CODES[sname] * 100 + ep)
            for m in stage.modules():
                m.train()
            total, finite = 0.0, True
            for it in range(steps):
                loss, _ = stage.train_loss(rng, self.dev)
                if not torch.isfinite(loss):
                    finite = False
                    break
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                rep.step((self.steps_before[sname] + ep * steps + it + 1) / self.total_steps)
            if not finite:
                rep.warning(
                    f"stage {sname} diverged in epoch {ep + 1} (the training loss is not finite): "
                    f"the stage stops and keeps its best epoch, {state['best_epoch'].get(sname, 0)}"
                )
                state["diverged"] = {**state.get("diverged", {}), sname: ep + 1}
                break
            for m in stage.modules():
                m.eval()
            vloss, vparts = stage.validation_loss(self.dev)
            hist.append({"epoch": ep + 1, "train": total / steps, "val": vloss, "val_parts": vparts})
            text = ""
            if by_auc:
                hist[-1]["val_auc"] = detection_auc()
                text = f", mean RX AUC {hist[-1]['val_auc']:.4f}"
            rep.info(
                f"stage {sname} epoch {ep + 1}/{n_ep}: train {total / steps:.4f} val {vloss:.4f} "
                f"({', '.join(f'{k} {v:.4f}' for k, v in vparts.items())}){text}"
            )
            value = hist[-1]["val_auc"] if by_auc else vloss
            # NaN (a diverged epoch) is never better: every comparison with NaN is False
            better = (
                (value > state["best"][sname])
                if by_auc
                else (sname not in state["best"] or value < state["best"][sname])
            )
            if better:
                state["best"][sname], state["best_epoch"][sname] = value, ep + 1
                best_sd = _copy(self.nets)
            state["epoch"][sname] = ep + 1
            self.save_checkpoint(opt, best_sd)
        if best_sd is not None:
            self.nets.load_checkpoint_state(best_sd)
        elif sname in state.get("diverged", {}):
            raise ModelError(
                f"training diverged in stage {sname} before any usable epoch; try a lower "
                "learning rate or other inputs"
            )
        state["done"].append(sname)
        what = "mean RX AUC" if by_auc else "validation loss"
        rep.info(
            f"stage {sname} done: best {what} {state['best'].get(sname, float('nan')):.4f} "
            f"at epoch {state['best_epoch'].get(sname)}"
        )
        self.save_checkpoint(None, None)

    # -- the model file ------------------------------------------------------------------------
    def write_model(self) -> dict:
        from .. import __version__
        from .networks import deployed_arch

        cfg, state, grid = self.cfg, self.state, self.data.grid
        with_spatial = "2" in state["done"] or ("sep" in state["done"] and "spatial" in cfg["parts"])
        done = state["done"]
        card: Dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "arch": deployed_arch(cfg, with_spatial),
            "parts": ["spectral", "spatial"] if with_spatial else ["spectral"],
            "wavelengths": None if grid.wavelengths is None else [float(w) for w in grid.wavelengths],
            "band_grid": (
                f"band axis: any input is resampled along its band axis onto {cfg['bands']} bands"
                if grid.wavelengths is None
                else f"{cfg['bands']} bands, {grid.wavelengths[0]:.1f}-{grid.wavelengths[-1]:.1f} nm"
            ),
            "normalisation": {**NORM_DEFAULT, **(grid.normalisation or {})},
            "halo": max(self.nets.fen.halo, self.nets.spatial.halo if with_spatial else 0),
            "training": {
                "recipe": self.rec.name,
                "fingerprint": self.fingerprint,
                "files": self.data.files,
                "stages": list(done),
                "epochs": {s: int(cfg["epochs"][s]) for s in done},
                "steps_per_epoch": int(cfg["steps_per_epoch"]),
                "batch": cfg["batch"],
                "patch": cfg["patch"],
                "train_loss": {s: [h["train"] for h in state["history"].get(s, [])] for s in done},
                "validation_loss": {s: [h["val"] for h in state["history"].get(s, [])] for s in done},
                "best_epoch": state["best_epoch"],
                "selection": {
                    s: (
                        "the epoch (0 = before the stage's training) with the best mean RX AUC on the "
                        "labelled training files"
                        if state["criterion"].get(s) == "auc"
                        else "the epoch with the lowest validation loss (background patches only)"
                    )
                    for s in done
                },
                "validation_auc": {
                    s: state["validation_auc"][s] for s in done if state["criterion"].get(s) == "auc"
                },
                "validation_auc_files": self.validator.names,
                "diverged": state.get("diverged", {}),
                "seed": self.seed,
                "device": self.dev,
                "time_s": round(state["elapsed_s"] + (time.time() - self.t_mark), 1),
                "config": cfg,
                "trunks": (
                    "trained (separation objective)"
                    if "sep" in done
                    else "random frozen (ablation)"
                    if (cfg["random_trunk"] or "0" not in done)
                    else "pre-trained in stage 0 (masked auto-encoding of background patches), then frozen"
                ),
            },
            "code_version": __version__,
        }
        save_model(self.out_path, self.nets.deployed_tensors(with_spatial), card)
        return card


def _copy(nets) -> Dict:
    return {k: v.detach().clone() for k, v in nets.checkpoint_state().items()}
