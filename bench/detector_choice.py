"""Which enhancer and detector to pair by default, chosen on training files' labels only:
writes bench/results/detector_choice.md (+ .json).

    .venv/bin/python bench/detector_choice.py

The product offers the enhancers (none, spectral, full) with global RX or CRD. The choice of the
default pairing must not use the labels of the scenes it is judged on, so it is made the way
epochs and candidates are chosen (``nets/validation.py``): by the mean AUC on the labelled
*training* files of a model, scored as ``fers detect`` scores (``accuracy.enhanced_scores``,
``accuracy.rx`` / ``accuracy.crd``).

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
    ("spectral + RX", "spectral"),
    ("spectral + CRD", "spectral+CRD"),
    ("full + RX", "full"),
    ("full + CRD", "full+CRD"),
)
#: the column of bench/results/accuracy.json that holds each pairing's leave-scene-out AUC
ACCURACY_COLUMN = {
    "RX": "RX",
    "CRD": "CRD",
    **{k: f"{DEFAULT_RECIPE} {k}" for k in ("spectral", "spectral+CRD", "full", "full+CRD")},
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
            cache[name] = {
                "raw": raw,
                "RX": roc_auc(accuracy.rx(raw.cube, raw.valid), raw.truth, valid=raw.valid),
                "CRD": roc_auc(accuracy.crd(raw.cube, raw.valid), raw.truth, valid=raw.valid),
            }
        entry = cache[name]
        if entry is None:
            continue
        raw = entry["raw"]
        enhanced = accuracy.enhanced_scores(enh, raw.cube, raw.valid, enh.parts, with_crd=True)
        out[name] = {
            "RX": entry["RX"],
            "CRD": entry["CRD"],
            **{k: roc_auc(s, raw.truth, valid=raw.valid) for k, s in enhanced.items() if k != "hadamard"},
        }
        log(f"  {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in out[name].items()))
    return out


def choose(aucs):
    """(the pairing label with the best mean AUC over the files, {label: mean})."""
    means = {label: float(np.mean([a[key] for a in aucs.values()])) for label, key in PAIRINGS}
    return max(means, key=means.get), means


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=4, choices=sorted(FOLDS))
    ap.add_argument("--accuracy", default=str(RESULTS / "accuracy.json"))
    ap.add_argument("--out", default=str(RESULTS / "detector_choice.md"))
    args = ap.parse_args(argv)
    t0 = time.time()
    cache, folds = {}, []
    for i in range(args.k):
        model = accuracy.fold_model_path(accuracy.MODELS, args.k, i)
        print(f"fold {i + 1}/{args.k}: {model.relative_to(REPO)}", flush=True)
        aucs = pairing_aucs(model, training_files(i, args.k), cache)
        chosen, means = choose(aucs)
        folds.append(
            {
                "fold": i + 1,
                "held_out": FOLDS[args.k][i],
                "files": sorted(aucs),
                "means": means,
                "chosen": chosen,
                "aucs": aucs,
            }
        )
    print(f"default model: {DEFAULT_MODEL.relative_to(REPO)}", flush=True)
    product_aucs = pairing_aucs(DEFAULT_MODEL, all_training_files(), cache)
    product, product_means = choose(product_aucs)
    seconds = time.time() - t0

    test = json.loads(Path(args.accuracy).read_text())["auc"]
    key = dict(PAIRINGS)
    rows = {}
    for scene in SCENES:
        if scene not in test:
            continue
        chosen = folds[fold_of(scene, args.k)]["chosen"]
        rows[scene] = {
            label: test[scene][ACCURACY_COLUMN[k]]
            for label, k in PAIRINGS
            if ACCURACY_COLUMN[k] in test[scene]
        }
        rows[scene]["chosen per fold"] = test[scene][ACCURACY_COLUMN[key[chosen]]]
        rows[scene]["(pairing)"] = chosen
    cols = [label for label, _ in PAIRINGS] + ["chosen per fold"]
    lines = [
        "# Default enhancer + detector pairing, chosen on training labels",
        "",
        f"Generated by `bench/detector_choice.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"({seconds:.0f} s). Each model picks, among the pairings `fers detect` offers, "
        "the one with the best mean "
        "pixel ROC AUC on its own labelled training files (anomalies left in; the files it was trained on, "
        "anomaly pixels excluded from its losses, as epoch selection does). No held-out scene takes part. "
        "CRD: windows "
        f"{accuracy.CRD_WINDOWS[0]} / {accuracy.CRD_WINDOWS[1]}, the product's lambda.",
        "",
        "## Choice per fold model (mean AUC on its labelled training files)",
        "",
        "| fold | held-out groups | labelled files | "
        + " | ".join(label for label, _ in PAIRINGS)
        + " | chosen |",
        "|---|---|---|" + "---|" * len(PAIRINGS) + "---|",
    ]
    for f in folds:
        lines.append(
            f"| {f['fold']} | {', '.join(f['held_out'])} | {len(f['files'])} | "
            + " | ".join(f"{f['means'][label]:.4f}" for label, _ in PAIRINGS)
            + f" | **{f['chosen']}** |"
        )
    lines.append(
        f"| default model | (none) | {len(product_aucs)} | "
        + " | ".join(f"{product_means[label]:.4f}" for label, _ in PAIRINGS)
        + f" | **{product}** |"
    )
    lines += [
        "",
        "## Leave-scene-out AUC of each pairing and of the per-fold choice (bench/results/accuracy.json)",
        "",
        "| scene | " + " | ".join(cols) + " | pairing chosen |",
        "|---|" + "---|" * (len(cols) + 1),
    ]
    for scene, r in rows.items():
        lines.append(
            f"| {scene} | "
            + " | ".join(f"{r[c]:.4f}" if c in r else "—" for c in cols)
            + f" | {r['(pairing)']} |"
        )
    means = {
        c: float(np.mean([r[c] for r in rows.values()])) for c in cols if all(c in r for r in rows.values())
    }
    lines.append(
        f"| **mean of these {len(rows)}** | "
        + " | ".join(f"**{means[c]:.4f}**" if c in means else "—" for c in cols)
        + " | |"
    )
    lines += [
        "",
        f"The rule picks **{product}** for the shipped default model; on held-out scenes the per-fold "
        f"choice scores {means['chosen per fold']:.4f} (13-window mean).",
    ]
    md = "\n".join(lines) + "\n"
    print(md)
    Path(args.out).write_text(md)
    Path(args.out).with_suffix(".json").write_text(
        json.dumps(
            {
                "folds": folds,
                "default_model": {"means": product_means, "chosen": product, "aucs": product_aucs},
                "held_out": rows,
            },
            indent=1,
        )
    )
    return product


if __name__ == "__main__":
    main()
