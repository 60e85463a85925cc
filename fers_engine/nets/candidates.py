"""Train several recipes on the same files and keep the one that detects best on their labels.

Two choices move the leave-scene-out result by more than the training itself does: whether the
frozen trunks are pre-trained (stage 0) or left at their random initialisation, and the seed
(the accuracy benchmark measures the spread). Rather than fix them by looking at test scenes,
each model trains every candidate and keeps the one whose kept weights give the best mean RX
AUC on the *training* files' own ground truth (``validation.py``), the same criterion that
picks epochs. A fold model therefore chooses with its own training files only.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import InputError
from ..progress import Reporter
from .model_file import load_model, save_model

#: The recipes every shipped model chooses from: trunks pre-trained or random, two seeds each.
CANDIDATES: List[Dict] = [
    {"tag": f"{trunks}-s{seed}", "seed": seed, "config": {"random_trunk": trunks == "random"}}
    for seed in (0, 1) for trunks in ("pretrained", "random")
]


def kept_auc(training: dict) -> Optional[float]:
    """The validation AUC at the kept epoch of the last trained stage (None without labels)."""
    aucs = training.get("validation_auc") or {}
    for stage in reversed(training.get("stages", [])):
        if aucs.get(stage):
            return float(aucs[stage][training["best_epoch"][stage]])
    return None


def candidate_path(out_path: Path, tag: str) -> Path:
    return out_path.with_name(f"{out_path.stem}-{tag}.safetensors")


def train_best(inputs: Sequence[str], out_path, candidates: Sequence[Dict] = CANDIDATES,
               exclude=None, device: str = "auto", reporter: Optional[Reporter] = None,
               name: Optional[str] = None, keep_candidates: bool = False) -> Path:
    """Train each candidate beside ``out_path`` and write the best one to ``out_path``.

    The written card gains ``training.candidates`` (tag, seed, trunks, validation AUC of each)
    and ``training.chosen``. Candidate files are deleted unless ``keep_candidates`` (the
    benchmark keeps them for its ablation columns).
    """
    from .trainer import train

    reporter = reporter or Reporter()
    out_path = Path(out_path)
    if not candidates:
        raise InputError("no candidate recipe to train")
    done = []
    for c in candidates:
        path = candidate_path(out_path, c["tag"])
        reporter.info(f"candidate {c['tag']}: training")
        train(inputs, exclude=exclude, device=device, seed=int(c["seed"]), out_path=path,
              reporter=reporter, config=c.get("config"), name=f"{name or out_path.stem} ({c['tag']})")
        for suffix in (".ckpt.safetensors", ".ckpt.json"):
            path.with_name(path.stem + suffix).unlink(missing_ok=True)
        card = json.loads(path.with_suffix(".json").read_text())
        done.append({"tag": c["tag"], "seed": int(c["seed"]), "trunks": card["training"]["trunks"],
                     "validation_auc": kept_auc(card["training"]), "time_s": card["training"]["time_s"],
                     "path": path})
        reporter.info(f"candidate {c['tag']}: validation mean RX AUC {done[-1]['validation_auc']}")
    scored = [d for d in done if d["validation_auc"] is not None]
    best = max(scored, key=lambda d: d["validation_auc"]) if scored else done[0]
    reporter.info(f"kept candidate {best['tag']}" + ("" if scored else
                  " (no training file has ground truth: the first candidate is kept)"))
    tensors, card = load_model(best["path"])
    card["name"] = name or out_path.stem
    card["training"]["chosen"] = best["tag"]
    card["training"]["candidates"] = [{k: v for k, v in d.items() if k != "path"} for d in done]
    save_model(out_path, tensors, card)
    if not keep_candidates:
        for d in done:
            d["path"].unlink(missing_ok=True)
            d["path"].with_suffix(".json").unlink(missing_ok=True)
    return out_path
