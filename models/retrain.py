"""Retrain every shipped model from ../shared/data and regenerate models/README.md.

    .venv/bin/python models/retrain.py            # default model + 4 fold models (+ their candidates)
    .venv/bin/python models/retrain.py --only default

Every model trains the candidate recipes of fers_engine/nets/candidates.py and keeps the best by
RX AUC on its own training files' labels. Writes models/fers-default.safetensors (+ .json card),
models/folds/fold<i>of4.safetensors and the fold candidates models/folds/fold<i>of4-<tag>.safetensors
(the leave-scene-out models of bench/accuracy.py and its ablation), then models/README.md with
the measured run times and validation figures read back from the model cards.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from folds import DATA, FOLDS, all_training_files  # noqa: E402

K = 4


def write_readme(timings: dict) -> None:
    from fers_engine.nets.candidates import CANDIDATES
    from fers_engine.nets.trainer import DEFAULT_CONFIG, selection_summary
    rows = []
    models = [HERE / "fers-default.safetensors"] + sorted((HERE / "folds").glob(f"fold?of{K}.safetensors"))
    total = 0.0
    for p in models:
        if not p.is_file():
            continue
        card = json.loads(p.with_suffix(".json").read_text())
        tr = card["training"]
        cands = tr.get("candidates") or [{"tag": "-", "time_s": tr["time_s"], "validation_auc": None}]
        spent = sum(c.get("time_s", 0.0) for c in cands)
        total += spent
        aucs = ", ".join(f"{c['tag']} {c['validation_auc']:.4f}" for c in cands if c["validation_auc"] is not None)
        rows.append(f"| `{p.relative_to(HERE)}` | {p.stat().st_size / 1024:.0f} KiB | {len(tr['files'])} | "
                    f"{spent:.0f} | **{tr.get('chosen', '-')}** ({aucs}) | {'; '.join(selection_summary(tr))} |")
    size = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file()) / 2**20
    cfg = DEFAULT_CONFIG
    wall = f"; wall clock of the whole command {timings['wall_s']:.0f} s" if "wall_s" in timings else ""
    text = f"""# Shipped enhancer models

All weights here were trained by us from scratch on the development scenes in `../shared/data`
(no ImageNet or other pre-trained weights exist anywhere in this project). Regenerate all of
them, and this file, with ONE command from the repository root:

    .venv/bin/python models/retrain.py

Last written: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, CPU ({timings.get('device', 'cpu')}, 2 threads),
total training time {total:.0f} s ({total / 60:.1f} min, every candidate counted{wall}).
Folder size {size:.2f} MiB.

| model | size | training files | train time (s) | kept candidate | kept epoch per stage and its validation value |
|---|---|---|---|---|---|
{chr(10).join(rows)}

* `fers-default`: the model `load_enhancer(None)` / `fers detect --enhance` uses. Trained on every
  file of `../shared/data` (all versions and the background scenes); pixels of each file's
  ground-truth anomalies, dilated by {cfg['dilate']} px, are excluded from the loss and replaced in the input.
  **It has seen the anomaly-free parts of every benchmark scene, so never score it on those
  scenes**: the accuracy benchmark uses the fold models.
* `folds/fold<i>of{K}`: leave-scene-out models of `bench/accuracy.py`; fold i never saw any
  version of the windows in its held-out groups ({'; '.join(f'fold {i + 1}: ' + ', '.join(g) for i, g in enumerate(FOLDS[K]))}).
* Candidates: every model above trains the {len(CANDIDATES)} recipes of `fers_engine/nets/candidates.py`
  (frozen trunks pre-trained in stage 0 or left random, seeds 0 and 1) and keeps the one whose
  weights give the best mean RX AUC on its own training files' ground truth (in brackets; train
  time counts every candidate). The fold candidates stay beside their fold model
  (`folds/fold<i>of{K}-<tag>`) for the accuracy benchmark's ablation.
* Checkpoint selection: stage 0 keeps its lowest validation loss (fixed background patches,
  seeded cells of a patch grid, never used for training). Stages 1 and 2 keep the epoch whose
  enhanced features give the best mean RX AUC on the *training* files' own ground truth
  (`training.validation_auc` in each card; epoch 0 is the stage's untrained starting point, so
  a stage that does not help is not forced on the model). A fold model's training files never
  include its held-out scenes, so no test label takes part. Both curves are in each card.

Each `.safetensors` file embeds its model card (`__metadata__['fers_card']`); the `.json`
beside it is the same card for reading. The card records the expected band grid
({cfg['bands']} bands along the band axis, no wavelengths), the normalisation, the
architecture, the training files with sha256, epochs, validation losses, seed, code version
and training time.
"""
    (HERE / "README.md").write_text(text)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["default", "folds", "readme"], default=None)
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(2)
    from fers_engine.nets.candidates import train_best
    from fers_engine.progress import Reporter
    import accuracy
    rep = Reporter(log=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True))
    t0 = time.time()
    if args.only in (None, "default"):
        train_best(all_training_files(), HERE / "fers-default.safetensors", reporter=rep, name="fers-default")
    if args.only in (None, "folds"):
        for old in (HERE / "folds").glob("*-randomtrunk.*"):  # the previous layout's ablation files
            old.unlink()
        accuracy.train_folds(HERE / "folds", K, None, rep)
    timings = {"device": "cpu"}
    if args.only is None:
        timings["wall_s"] = time.time() - t0
    write_readme(timings)
    print("done in", round(time.time() - t0), "s")


if __name__ == "__main__":
    main()
