"""Which enhancer and detector to pair by default, chosen on training files' labels only:
writes bench/results/detector_choice.md (+ .json).

    .venv/bin/python bench/detector_choice.py                # score and choose (about 8 min)
    .venv/bin/python bench/detector_choice.py --report-only  # the report again, from the .json

The product offers the enhancers (none, spectral, full) with global RX, CRD or CRD+RX. The
choice of the default pairing must not use the labels of the scenes it is judged on, so it is
made the way epochs and candidates are chosen (``nets/validation.py``): on the labelled
*training* files of a model, scored as ``fers detect`` scores (``accuracy.enhanced_scores``,
``accuracy.rx`` / ``accuracy.crd``).

The rule: the best mean AUC among the pairings that no training file scores more than
``BELOW_RX`` below plain RX (the product's promise, issue 13's per-scene bar, applied to
training files only); the best mean overall if none qualifies. It was the best mean alone
until the session that added CRD+RX; the report shows what that rule would pick too.

* Nested, per fold: each leave-scene-out fold model (``models/folds/<default recipe>/``) picks the
  pairing with the best mean AUC on its own labelled training files (never a held-out scene);
  the held-out windows of the fold are then scored with that pairing. The 13-window mean of these
  is an honest estimate of "the pairing this rule picks" (the AUCs come from
  bench/results/accuracy.json, the same run's scores).
* Product: the shipped default model (``models/fers-default``) picks on all of its labelled
  training files; that is the default this rule gives ``fers detect``.
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
from folds import FOLDS, SCENES, all_training_files, fold_of, training_files  # noqa: E402

from fers_engine.metrics import roc_auc  # noqa: E402
from fers_engine.nets.recipes import DEFAULT_RECIPE  # noqa: E402

RESULTS = REPO / "bench" / "results"
DEFAULT_MODEL = REPO / "models" / "fers-default.safetensors"
#: (label, the enhanced_scores key or a plain detector); ``fers detect`` options in brackets
PAIRINGS = (
    ("none + RX", "RX"),
    ("none + CRD", "CRD"),
    ("none + CRD+RX", "CRD+RX"),
    ("spectral + RX", "spectral"),
    ("spectral + CRD", "spectral+CRD"),
    ("spectral + CRD+RX", "spectral+CRD+RX"),
    ("full + RX", "full"),
    ("full + CRD", "full+CRD"),
    ("full + CRD+RX", "full+CRD+RX"),
)
#: A pairing qualifies when no training file scores more than this below plain RX.
BELOW_RX = 0.005
#: the column of bench/results/accuracy.json that holds each pairing's leave-scene-out AUC
ACCURACY_COLUMN = {
    "RX": "RX",
    "CRD": "CRD",
    "CRD+RX": "CRD+RX",
    **{
        k: f"{DEFAULT_RECIPE} {k}"
        for k in ("spectral", "spectral+CRD", "spectral+CRD+RX", "full", "full+CRD", "full+CRD+RX")
    },
}


def labelled(path: str):
    """The scene read as the benchmark reads it, or None without usable anomaly truth."""
    raw = accuracy.read(path)
    t = raw.truth
    if t is None or not t[raw.valid].any() or t[raw.valid].all():
        return None
    return raw


def pairing_aucs(model_path: Path, files, cache, log=print):
    """{file: {pairing key: AUC}} of one model on its labelled training files; plain RX / CRD
    scores do not depend on the model and are cached in ``cache`` across models."""
    from fers_engine.nets.enhancer import load_enhancer

    enh = load_enhancer(str(model_path), device="cpu")
    out = {}
    for f in files:
        name = str(Path(f).relative_to(accuracy.DATA))
        if name not in cache:
            raw = labelled(f)
            if raw is None:
                cache[name] = None
                continue
            plain = {"RX": accuracy.rx(raw.cube, raw.valid), "CRD": accuracy.crd(raw.cube, raw.valid)}
            plain["CRD+RX"] = accuracy.geometric_mean(plain["RX"], plain["CRD"])
            cache[name] = {
                "raw": raw,
                **{k: roc_auc(m, raw.truth, valid=raw.valid) for k, m in plain.items()},
            }
        entry = cache[name]
        if entry is None:
            continue
        raw = entry["raw"]
        enhanced = accuracy.enhanced_scores(enh, raw.cube, raw.valid, enh.parts, with_crd=True)
        out[name] = {
            **{k: entry[k] for k in ("RX", "CRD", "CRD+RX")},
            **{k: roc_auc(s, raw.truth, valid=raw.valid) for k, s in enhanced.items() if k != "hadamard"},
        }
        log(f"  {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in out[name].items()))
    return out


def choose(aucs):
    """(the pairing label the rule picks, {label: mean AUC}, {label: worst AUC minus plain RX's})
    over a model's labelled training files; the rule: module docstring."""
    means = {label: float(np.mean([a[key] for a in aucs.values()])) for label, key in PAIRINGS}
    worst = {label: float(min(a[key] - a["RX"] for a in aucs.values())) for label, key in PAIRINGS}
    qualified = [label for label in means if worst[label] >= -BELOW_RX] or list(means)
    return max(qualified, key=means.get), means, worst


def best_mean(means) -> str:
    """What the rule before CRD+RX picked: the best mean alone."""
    return max(means, key=means.get)


def score(args):
    """Every model's AUCs on its labelled training files: (fold entries, the default model's)."""
    cache, folds = {}, []
    for i in range(args.k):
        model = accuracy.fold_model_path(accuracy.MODELS, args.k, i)
        print(f"fold {i + 1}/{args.k}: {model.relative_to(REPO)}", flush=True)
        aucs = pairing_aucs(model, training_files(i, args.k), cache)
        folds.append({"fold": i + 1, "held_out": FOLDS[args.k][i], "files": sorted(aucs), "aucs": aucs})
    print(f"default model: {DEFAULT_MODEL.relative_to(REPO)}", flush=True)
    return folds, {"aucs": pairing_aucs(DEFAULT_MODEL, all_training_files(), cache)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=4, choices=sorted(FOLDS))
    ap.add_argument("--accuracy", default=str(RESULTS / "accuracy.json"))
    ap.add_argument("--out", default=str(RESULTS / "detector_choice.md"))
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="choose and report again from the AUCs of the last run (the --out .json), scoring nothing",
    )
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.report_only:
        saved = json.loads(Path(args.out).with_suffix(".json").read_text())
        folds, product_entry, seconds = saved["folds"], saved["default_model"], saved.get("seconds", 0.0)
        scored = saved.get("scored")
    else:
        folds, product_entry = score(args)
        seconds = time.time() - t0
        scored = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for f in folds + [product_entry]:
        f["chosen"], f["means"], f["worst"] = choose(f["aucs"])
        f["best_mean"] = best_mean(f["means"])
    product = product_entry["chosen"]

    test = json.loads(Path(args.accuracy).read_text())["auc"]
    key = dict(PAIRINGS)

    def held_out(scene, label):
        return test[scene].get(ACCURACY_COLUMN[key[label]])

    rows = {}
    for scene in SCENES:
        if scene not in test:
            continue
        fold = folds[fold_of(scene, args.k)]
        rows[scene] = {label: held_out(scene, label) for label, _ in PAIRINGS}
        rows[scene]["chosen per fold"] = held_out(scene, fold["chosen"])
        rows[scene]["best mean per fold"] = held_out(scene, fold["best_mean"])
        rows[scene]["(pairing)"] = fold["chosen"]
    cols = [label for label, _ in PAIRINGS] + ["chosen per fold", "best mean per fold"]
    means = {
        c: float(np.mean([r[c] for r in rows.values()]))
        for c in cols
        if all(r[c] is not None for r in rows.values())
    }
    worst_vs_rx = {c: min((r[c] - r["none + RX"], s) for s, r in rows.items()) for c in cols if c in means}

    def choice_table(title, field, fmt):
        out = [
            title,
            "",
            "| fold | held-out groups | labelled files | "
            + " | ".join(label for label, _ in PAIRINGS)
            + " | chosen | best mean alone |",
            "|---|---|---|" + "---|" * len(PAIRINGS) + "---|---|",
        ]
        for f in folds + [product_entry]:
            name = (f"{f['fold']} | {', '.join(f['held_out'])}") if "fold" in f else "default model | (none)"
            out.append(
                f"| {name} | {len(f['aucs'])} | "
                + " | ".join(fmt(f[field][label]) for label, _ in PAIRINGS)
                + f" | **{f['chosen']}** | {f['best_mean']} |"
            )
        return out

    lines = [
        "# Default enhancer + detector pairing, chosen on training labels",
        "",
        f"{accuracy.generated('bench/detector_choice.py', scored, args.report_only)} "
        f"(scoring took {seconds:.0f} s). Each model picks, among the pairings `fers detect` offers, "
        f"the one with the best mean pixel ROC AUC on its own labelled training files among those that no "
        f"training file scores more than {BELOW_RX} below plain RX (the product's per-scene promise applied "
        "to training files; the best mean alone, the rule before CRD+RX existed, is shown beside it). "
        "Anomalies are left in; the files are those the model was trained on, anomaly pixels excluded from "
        "its losses, as epoch selection does. No held-out scene takes part. CRD: windows "
        f"{accuracy.CRD_WINDOWS[0]} / {accuracy.CRD_WINDOWS[1]}, the product's lambda; CRD+RX: the "
        "geometric mean of that CRD and global RX.",
        "",
        *choice_table("## Mean AUC on each model's labelled training files", "means", lambda v: f"{v:.4f}"),
        "",
        *choice_table("## Worst training file: AUC minus plain RX's", "worst", lambda v: f"{v:+.4f}"),
        "",
        "## Leave-scene-out AUC of each pairing and of the per-fold choices (bench/results/accuracy.json)",
        "",
        "| scene | " + " | ".join(cols) + " | pairing chosen |",
        "|---|" + "---|" * (len(cols) + 1),
    ]
    for scene, r in rows.items():
        lines.append(
            f"| {scene} | "
            + " | ".join(f"{r[c]:.4f}" if r[c] is not None else "—" for c in cols)
            + f" | {r['(pairing)']} |"
        )
    lines.append(
        f"| **mean of these {len(rows)}** | "
        + " | ".join(f"**{means[c]:.4f}**" if c in means else "—" for c in cols)
        + " | |"
    )
    lines.append(
        "| **worst vs plain RX** | "
        + " | ".join(
            f"{worst_vs_rx[c][0]:+.4f} ({worst_vs_rx[c][1]})" if c in worst_vs_rx else "—" for c in cols
        )
        + " | |"
    )
    nested = "chosen per fold"
    lines += [
        "",
        f"The rule picks **{product}** for the shipped default model (the best mean alone: "
        f"{product_entry['best_mean']})."
        + (
            f" On held-out scenes the per-fold choice (the honest estimate of the rule) scores "
            f"{means[nested]:.4f} (13-window mean), its worst window {worst_vs_rx[nested][0]:+.4f} against "
            f"plain RX ({worst_vs_rx[nested][1]})."
            if nested in means
            else " The held-out columns need bench/accuracy.py's scores of every pairing."
        ),
    ]
    from fers_engine.pipeline import DetectOptions

    o = DetectOptions()
    runs = f"{o.enhancer} + {o.detector.upper()}"
    if runs != product:
        lines += [
            "",
            f"`fers detect` runs **{runs}**: the detector of this pick, with the enhancer issue 13's "
            "ablation rule gives (the spatial branch must beat the spectral enhancer alone, "
            "leave-scene-out, by more than the seed noise, or `spectral` is the default; "
            "bench/results/accuracy.md checks it with the default detector).",
        ]
    md = "\n".join(lines) + "\n"
    print(md)
    Path(args.out).write_text(md)
    Path(args.out).with_suffix(".json").write_text(
        json.dumps(
            {
                "folds": folds,
                "default_model": product_entry,
                "held_out": rows,
                "seconds": seconds,
                "scored": scored,
            },
            indent=1,
        )
    )
    return product


if __name__ == "__main__":
    main()
