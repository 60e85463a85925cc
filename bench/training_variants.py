"""Training variants of the default recipe, leave-scene-out: writes bench/results/training_variants.md.

    .venv/bin/python bench/training_variants.py                    # train missing folds, then score
    .venv/bin/python bench/training_variants.py --variants lr1e-3-s1 --retrain

Issue 13's bar "trained beats untrained by more than two standard errors" is missed by the
shipped recipe. Each variant here changes one training setting of the default recipe, trains the
four leave-scene-out fold models (bench/folds.py) into ``--models-dir`` (build/, not shipped) and
scores them on the 13 windows with the product's scoring (``accuracy.evaluate``: full method,
sum fusion, global RX). Epochs are chosen on the training files' own labels as always; no test
label takes part. The shipped fold models and the untrained seeds are read from
bench/results/accuracy.json (the same windows and scoring), so every variant tried, failures
included, is reported against the same reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import accuracy  # noqa: E402

from fers_engine.nets.recipes import DEFAULT_RECIPE  # noqa: E402

RESULTS = REPO / "bench" / "results"
#: name -> (what it changes, seed (None: the recipe's candidates), config overrides)
VARIANTS = {
    # the recipe's learning rate (3e-4) moves the weights little in 6 x 30 steps: the kept epochs'
    # training-label AUC is within +-0.003 of the start; 3.3x the step size, the seed every fold
    # model kept (s1, chosen on the training labels by the shipped run) to halve the cost
    "lr1e-3-s1": ("learning rate 1e-3 (recipe: 3e-4), candidate s1 only", 1, {"lr": {"sep": 1e-3}}),
    # real target materials: 40 % of the implanted spectra are labelled anomaly pixels of *other*
    # training scenes (never a held-out scene: the fold's trainer is not given one); the same labels
    # then also choose the epoch, in-sample (optimistic for the choice, not for the test windows)
    "real-donors-s1": (
        "implanted spectra: 40 % labelled anomalies of other training scenes, 30 % host "
        "reshaped, 30 % other scenes' pixels (recipe: 0 / 60 / 40 %), candidate s1 only",
        1,
        {"separation": {"implant": {"other_anomaly": 0.4, "host_shape": 0.3, "other_pixel": 0.3}}},
    ),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=sorted(VARIANTS))
    ap.add_argument("--models-dir", default=str(REPO / "build" / "variants"))
    ap.add_argument("--retrain", action="store_true", help="train every fold again, even if its file exists")
    ap.add_argument(
        "--train",
        nargs="*",
        default=None,
        choices=sorted(VARIANTS),
        help="the variants whose missing folds are trained (default: all); the others are "
        "reported from the folds already trained",
    )
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--accuracy", default=str(RESULTS / "accuracy.json"))
    ap.add_argument("--out", default=str(RESULTS / "training_variants.md"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from fers_engine.progress import Reporter

    rep = Reporter(on_info=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True))
    for name in args.variants:  # training first: the reference run may still be writing its results
        _, seed, config = VARIANTS[name]
        if args.train is not None and name not in args.train:
            continue
        root = Path(args.models_dir) / name
        for i in range(args.k):
            if args.retrain or not accuracy.fold_model_path(root, args.k, i).is_file():
                accuracy.train_folds(root, args.k, DEFAULT_RECIPE, rep, only={i}, seed=seed, config=config)
    ref = json.loads(Path(args.accuracy).read_text())["auc"]
    scenes = list(ref)
    shipped = f"{DEFAULT_RECIPE} full"
    seeds = sorted(
        {int(c.split()[1][1:]) for c in ref[scenes[0]] if c.startswith("untrained s") and c.endswith(" full")}
    )
    unt_means = [float(np.mean([ref[n][f"untrained s{s} full"] for n in scenes])) for s in seeds]
    unt, sd = float(np.mean(unt_means)), float(np.std(unt_means, ddof=1))
    se = sd / np.sqrt(len(unt_means))
    results = {}
    for name in args.variants:
        what = VARIANTS[name][0]
        root = Path(args.models_dir) / name
        kept, curves, seconds = [], [], 0.0
        for i in range(args.k):
            path = accuracy.fold_model_path(root, args.k, i)
            if not path.is_file():
                kept.append("not trained")
                continue
            tr = json.loads(path.with_suffix(".json").read_text())["training"]
            kept.append("; ".join(accuracy.selection_summary(tr)))
            curves.append(f"fold {i + 1}: " + ", ".join(f"{v:.4f}" for v in tr["validation_auc"]["sep"]))
            seconds += float(tr["time_s"])
        done = all(k != "not trained" for k in kept)
        auc = (
            accuracy.evaluate(
                root, args.k, (DEFAULT_RECIPE,), untrained_seeds=0, with_lrx=False, with_crd=False
            )[0]
            if done
            else {}
        )
        results[name] = {
            "what": what,
            "auc": {n: auc[n][shipped] for n in scenes} if done else None,
            "kept": kept,
            "curves": curves,
            "train_s": seconds,
        }
    lines = [
        "# Training variants of the default recipe (leave-scene-out)",
        "",
        f"Generated by `bench/training_variants.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "Full method (sum fusion) + global RX, each window scored by the fold model that never saw it; "
        f"reference columns from {Path(args.accuracy).relative_to(REPO)}. Untrained: {len(seeds)} "
        f"initialisation seeds, mean {unt:.4f}, sd {sd:.4f}, standard error {se:.4f}; the bar is "
        f"{unt + 2 * se:.4f} (mean + 2 SE). The time is each fold model's training time from its card, "
        "on a shared 2-core machine.",
        "",
    ]
    scored = {name: r for name, r in results.items() if r["auc"] is not None}
    lines += [
        "| scene | shipped fold models | untrained (mean) | " + " | ".join(scored) + " |",
        "|---|---|---|" + "---|" * len(scored),
    ]
    for n in scenes:
        u = np.mean([ref[n][f"untrained s{s} full"] for s in seeds])
        lines.append(
            f"| {n} | {ref[n][shipped]:.4f} | {u:.4f} | "
            + " | ".join(f"{r['auc'][n]:.4f}" for r in scored.values())
            + " |"
        )
    means = {name: float(np.mean(list(r["auc"].values()))) for name, r in scored.items()}
    lines.append(
        f"| **mean of these {len(scenes)}** | **{np.mean([ref[n][shipped] for n in scenes]):.4f}** | "
        f"**{unt:.4f}** | " + " | ".join(f"**{m:.4f}**" for m in means.values()) + " |"
    )
    lines += [
        "",
        "| variant | what changes | 13-window mean | vs untrained | beats untrained by > 2 SE | "
        "kept epoch per fold | training time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if name in means:
            d = means[name] - unt
            cells = f"{means[name]:.4f} | {d:+.4f} | {'yes' if d > 2 * se else 'no'}"
        else:
            cells = "not scored (folds missing) | — | —"
        lines.append(f"| {name} | {r['what']} | {cells} | {' / '.join(r['kept'])} | {r['train_s']:.0f} |")
    lines += [
        "",
        "Training-label curves (mean RX AUC on each fold's labelled training files, epoch 0 = the "
        "untrained start, then each epoch):",
        "",
    ]
    lines += [f"- {name}: " + "; ".join(r["curves"]) for name, r in results.items() if r["curves"]]
    md = "\n".join(lines) + "\n"
    print(md)
    Path(args.out).write_text(md)
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
