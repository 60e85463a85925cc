"""Quick screen of a training recipe on some leave-scene-out folds: train, then score the held-out
windows (and the untrained start), so a recipe change can be judged before a full retrain.

    .venv/bin/python bench/screen.py --recipe separation --folds 1 --epochs 4 --steps 30
    .venv/bin/python bench/screen.py --recipe separation --config '{"lr": {"sep": 1e-3}}' --tag lr3

Prints, per fold: the validation AUC curve (training files' own labels, epoch 0 = untrained), the
kept epoch, and the held-out windows' AUC of the kept model against the same architecture
untrained (same seed) and plain RX; appends one JSON line per run to bench/results/screens.jsonl
(the record of every screen behind a recipe choice). The held-out AUCs are test numbers: a
recipe is chosen on the validation AUC, the held-out columns show whether that choice transfers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from folds import DATA, FOLDS, SCENES, fold_of, training_files  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="separation")
    ap.add_argument("--k", type=int, default=4, choices=sorted(FOLDS))
    ap.add_argument("--folds", type=int, nargs="+", default=[1], help="1-based fold numbers")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default=None, help="JSON overrides of the recipe's config")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out-dir", default="/tmp/fers-screen")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--score-only", action="store_true", help="score the models a previous screen wrote")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    import accuracy

    from fers_engine.metrics import roc_auc
    from fers_engine.nets.enhancer import load_enhancer
    from fers_engine.nets.trainer import train
    from fers_engine.progress import Reporter

    rep = Reporter(on_info=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True))
    cfg = json.loads(args.config) if args.config else None
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for fold in args.folds:
        i = fold - 1
        t0 = time.time()
        path = out_dir / f"{args.recipe}{args.tag}-f{fold}of{args.k}.safetensors"
        if args.score_only:
            from fers_engine.nets.model_file import read_card
            from fers_engine.nets.trainer import result_from_card

            card = read_card(path)
            res = result_from_card(path, card, card["training"]["time_s"])
        else:
            res = train(
                training_files(i, args.k),
                path,
                recipe=args.recipe,
                seed=args.seed,
                epochs=args.epochs,
                steps_per_epoch=args.steps,
                config=cfg,
                reporter=rep,
                name=path.stem,
            )
        seconds = time.time() - t0 if not args.score_only else res.seconds
        enh = load_enhancer(str(path), device="cpu")
        column = "full" if "spatial" in enh.parts else "spectral"
        rows = {}
        for name, (rel, _) in SCENES.items():
            if fold_of(name, args.k) != i:
                continue
            raw = accuracy.read(DATA / rel)
            trained = roc_auc(
                accuracy.enhanced_scores(enh, raw.cube, raw.valid, enh.parts)[column], raw.truth
            )
            torch.manual_seed(args.seed)
            unt = accuracy.untrained_enhancer(enh.card, seed=args.seed)
            untrained = roc_auc(
                accuracy.enhanced_scores(unt, raw.cube, raw.valid, unt.parts)[column], raw.truth
            )
            rows[name] = {
                "trained": trained,
                "untrained": untrained,
                "RX": roc_auc(accuracy.rx(raw.cube, raw.valid), raw.truth),
            }
        stage = list(res.stages.values())[-1]
        record = {
            "time": time.strftime("%Y-%m-%d %H:%M"),
            "recipe": args.recipe,
            "tag": args.tag,
            "fold": fold,
            "k": args.k,
            "seed": args.seed,
            "config": cfg,
            "epochs": stage.epochs,
            "steps": args.steps,
            "validation_auc": list(stage.validation_auc),
            "kept": stage.kept_epoch,
            "train_s": round(seconds),
            "held_out": rows,
            "held_out_mean": {
                c: float(np.mean([r[c] for r in rows.values()])) for c in ("trained", "untrained", "RX")
            },
        }
        print(json.dumps(record, indent=1), flush=True)
        results = REPO / "bench" / "results" / "screens.jsonl"
        with open(results, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        os.sync()


if __name__ == "__main__":
    main()
