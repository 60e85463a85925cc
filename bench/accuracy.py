"""Leave-scene-out accuracy benchmark of the enhancers: writes bench/results/accuracy.md (+ .json).

    .venv/bin/python bench/accuracy.py                       # score the fold models in models/folds
    .venv/bin/python bench/accuracy.py --retrain             # retrain every recipe's fold models first
    .venv/bin/python bench/accuracy.py --retrain --recipes published

On the 13 development windows (one version each, as docs/peer-baseline.md), in one run:
* the classical detectors: global RX, local RX and CRD (dual window 3 / 15, the product's one
  fixed lambda ``choices.DEFAULT_CRD_LAMBDA``), on the raw cube, as ``fers detect --enhancer none``
  runs them;
* every recipe's leave-scene-out fold models (``models/folds/<recipe>/fold<i>of4``; a scene is
  scored only by the model of the fold that never saw any version of it): the default recipe
  (ours, spectral + spatial), its spectral-only ablation and the published FERD / FERS
  objectives; each model scored as ``fers detect`` scores (``enhanced_scores``); the default
  recipe's models also with CRD and CRD+RX on the enhanced cube (``fers detect --detector crd``
  or ``crd+rx`` with ``--enhancer full`` and ``--enhancer spectral``), to tell whether the
  enhancers help them;
* the same architecture as the default recipe's, untrained, from ``--untrained-seeds``
  initialisations (what training starts from), scored like the default method and with the
  spectral enhancer (the pairings the fold models chose on training labels,
  bench/detector_choice.py), to tell what training adds from what the architecture alone gives;
* per-scene deltas against plain RX, and the boundary false-alarm share (the share of the top
  0.5 % scores on background pixels of high spectral gradient, ``metrics.boundary_false_alarms``).
The bars of issue 13 are checked from these numbers at the end of the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import List

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from folds import DATA, FOLDS, SCENES, fold_of, training_files  # noqa: E402

from fers_engine.choices import DEFAULT_CRD_LAMBDA  # noqa: E402
from fers_engine.detectors.crd_rx import geometric_mean  # noqa: E402
from fers_engine.metrics import boundary_false_alarms, roc_auc  # noqa: E402
from fers_engine.nets.data import read_scene as read  # noqa: E402
from fers_engine.nets.recipes import DEFAULT_RECIPE  # noqa: E402
from fers_engine.nets.trainer import selection_summary  # noqa: E402
from fers_engine.pipeline import hadamard  # noqa: E402

MODELS = REPO / "models" / "folds"
#: The recipes compared, in table order: ours (the default), its spectral-only ablation, the paper's.
RECIPES = (DEFAULT_RECIPE, "separation-spectral", "published")
#: CRD: dual window 3 / 15 (the product's default windows, the best mean of bench/crd_lambda.py),
#: the product's one fixed lambda.
CRD_WINDOWS = (3, 15)
#: Threads of the CRD kernel (the machine's two cores).
CRD_WORKERS = 2
BARS = {"mean": 0.980, "below_rx": 0.005}
#: Fold models train every candidate of their recipe (None), like the shipped default, except the
#: published recipe's four (stage-0 or random trunks x two seeds), of which seed 0 with stage 0
#: stands for it (a fourfold cost on this machine). Our recipe and its spectral-only ablation
#: train the same two seeds, so the ablation compares like with like.
FOLD_SEEDS = {"published": 0}


# -- scoring (the product's paths) -------------------------------------------------------------
def rx(cube, valid=None):
    from fers_engine.detectors.rx import global_rx

    return global_rx(cube, valid)


def local_rx(cube, valid, inner=3, outer=15):
    """Local RX: ring mean between a 3x3 guard and a 15x15 window, scene covariance (SPy's
    ``rx(X, window=(3, 15), cov=C)``); a full local covariance is singular here (216 ring pixels
    for ~200 bands)."""
    from fers_engine.detectors.lrx import local_rx as f

    x = cube[:, valid].astype(np.float64)
    return f(cube, valid, inner=inner, outer=outer, cov=np.cov(x))


def crd(cube, valid):
    """The product's CRD (``fers detect --detector crd``): its default windows and lambda."""
    from fers_engine.detectors.crd import crd as f

    return f(
        cube, valid, inner=CRD_WINDOWS[0], outer=CRD_WINDOWS[1], lam=DEFAULT_CRD_LAMBDA, workers=CRD_WORKERS
    )


def enhanced_scores(enh, cube, valid, parts=("spectral", "spatial"), with_crd=False):
    """The product's enhanced scores of a cube in memory: the same input fit (dead bands, band
    matrix, normalisation) and the same context rule (nodata fill, border) as ``fers detect``.

    Keys: ``spectral`` (RX(x + spe)), ``full`` (RX(x + spe + spa)), ``hadamard``; with
    ``with_crd`` (True, or the parts: ``("spectral",)``) also ``spectral+CRD`` and ``full+CRD``,
    CRD on the same enhanced cubes (what ``fers detect --detector crd`` scores with
    ``--enhancer spectral`` / ``full``), and ``spectral+CRD+RX`` / ``full+CRD+RX``, the product's
    geometric mean of that CRD and RX map (``--detector crd+rx``).
    """
    crd_parts = {"spectral", "full"} if with_crd is True else set(with_crd or ())
    from fers_engine.nets.context import scene_features
    from fers_engine.nets.inputs import fit_cube

    x = fit_cube(enh.grid, cube, valid).apply(cube)
    f = scene_features(lambda b: enh.features(b, parts=parts), x, valid, enh.halo)
    spe = x + f["spectral"]
    out = {"spectral": rx(spe, valid)}
    if "spectral" in crd_parts:
        out["spectral+CRD"] = crd(spe, valid)
        out["spectral+CRD+RX"] = geometric_mean(out["spectral"], out["spectral+CRD"])
    if "spatial" in f:
        full = spe + f["spatial"]
        out["full"] = rx(full, valid)
        out["hadamard"] = hadamard([rx(x + f["spatial"], valid), out["spectral"]])
        if "full" in crd_parts:
            out["full+CRD"] = crd(full, valid)
            out["full+CRD+RX"] = geometric_mean(out["full"], out["full+CRD"])
    return out


def fold_model_path(models_dir: Path, k: int, i: int, recipe: str = DEFAULT_RECIPE) -> Path:
    return Path(models_dir) / recipe / f"fold{i + 1}of{k}.safetensors"


def train_folds(models_dir, k, recipe=DEFAULT_RECIPE, reporter=None, only=None, seed=None, config=None):
    """Train a recipe's fold models (each on its fold's training files only); returns seconds."""
    from fers_engine.nets.trainer import train

    times = []
    for i in range(k):
        if only is not None and i not in only:
            continue
        t = time.time()
        fold_model_path(models_dir, k, i, recipe).parent.mkdir(parents=True, exist_ok=True)
        train(
            training_files(i, k),
            fold_model_path(models_dir, k, i, recipe),
            recipe=recipe,
            seed=seed,
            config=config,
            reporter=reporter,
            name=f"{recipe} fold {i + 1}/{k}",
        )
        times.append(time.time() - t)
    return times


def untrained_enhancer(card, seed=0):
    """The architecture of ``card`` (a typed ``ModelCard``) with the weights training would start
    from under ``seed`` (the untrained-start ablation)."""
    import torch

    from fers_engine.nets.card import ModelCard
    from fers_engine.nets.enhancer import Enhancer
    from fers_engine.nets.networks import Networks
    from fers_engine.nets.recipes import get_recipe

    raw = dict(card.raw)
    cfg = raw.get("training", {}).get("config") or get_recipe(None).full_config()
    torch.manual_seed(seed)
    nets = Networks(cfg)
    tensors = {k: v.detach().cpu().numpy() for k, v in nets.deployed_tensors("spatial" in card.parts).items()}
    return Enhancer(ModelCard.validate(raw, tensors, "untrained"), tensors, "cpu")


# -- the run ----------------------------------------------------------------------------------
def evaluate(
    models_dir=MODELS,
    k=4,
    recipes=RECIPES,
    untrained_seeds=5,
    with_lrx=True,
    with_crd=True,
    scenes=None,
    log=print,
    crd_recipes=(DEFAULT_RECIPE,),
):
    """{scene: {column: AUC}}, {scene: {column: boundary share}}, seconds per detector.

    ``crd_recipes``: the recipes whose models are also scored with CRD on the enhanced cube.
    """
    from fers_engine.nets.enhancer import load_enhancer

    models, auc, fa, seconds = {}, {}, {}, {}

    def timed(name, fn):
        t = time.time()
        out = fn()
        seconds[name] = seconds.get(name, 0.0) + time.time() - t
        return out

    for name, (rel, _) in SCENES.items():
        if scenes is not None and name not in scenes:
            continue
        raw = read(DATA / rel)
        cube, valid, truth = raw.cube, raw.valid, raw.truth
        maps = {"RX": timed("RX", partial(rx, cube, valid))}
        if with_lrx:
            maps["LRX"] = timed("LRX", partial(local_rx, cube, valid))
        if with_crd:
            maps["CRD"] = timed("CRD", partial(crd, cube, valid))
            maps["CRD+RX"] = geometric_mean(maps["RX"], maps["CRD"])
        i = fold_of(name, k)
        for recipe in recipes:
            path = fold_model_path(models_dir, k, i, recipe)
            if not path.is_file():
                continue
            if path not in models:
                models[path] = load_enhancer(str(path), device="cpu")
            enh = models[path]
            plus_crd = with_crd and recipe in crd_recipes
            for part, s in timed(
                recipe + (" (with CRD)" if plus_crd else ""),
                partial(enhanced_scores, enh, cube, valid, enh.parts, plus_crd),
            ).items():
                maps[f"{recipe} {part}"] = s
        default = fold_model_path(models_dir, k, i, recipes[0])
        part, detector = default_method()
        # the untrained start scored like the default method (with CRD too when the default
        # detector uses it) and with the spectral enhancer, which some fold models pick on their
        # training labels (bench/detector_choice.py): what training adds to each
        wanted = ({part} if detector in ("crd", "crd+rx") else set()) | {"spectral"}
        untrained_crd = tuple(sorted(wanted)) if with_crd else ()
        if untrained_seeds and default.is_file():
            card = models[default].card
            for seed in range(untrained_seeds):
                key = ("untrained", i, seed)
                if key not in models:
                    models[key] = untrained_enhancer(card, seed)
                enh = models[key]
                for key, s in timed(
                    "untrained", partial(enhanced_scores, enh, cube, valid, enh.parts, untrained_crd)
                ).items():
                    maps[f"untrained s{seed} {key}"] = s
        auc[name] = {c: roc_auc(s, truth, valid=valid) for c, s in maps.items()}
        fa[name] = {
            c: boundary_false_alarms(s, cube, truth, valid)
            for c, s in maps.items()
            if not c.startswith("untrained") and not c.endswith("hadamard")
        }
        log(
            f"{name}: "
            + ", ".join(f"{c} {v:.4f}" for c, v in auc[name].items() if not c.startswith("untrained"))
        )
    return auc, fa, seconds


def default_method():
    """(enhancer part, detector) of ``fers detect`` without options: ('full' or 'spectral', and
    'rx', 'crd' or 'crd+rx')."""
    from fers_engine.pipeline import DetectOptions

    o = DetectOptions()
    return ("full" if o.enhancer == "full" else "spectral"), o.detector


def method_key(part: str, detector: str) -> str:
    """The ``enhanced_scores`` key of an enhancer part with a detector: 'full', 'spectral+CRD', ..."""
    return part + {"crd": "+CRD", "crd+rx": "+CRD+RX"}.get(detector, "")


def default_column(auc) -> str:
    """The product's default method: the default recipe's model with detect's default enhancer
    and detector."""
    col = f"{DEFAULT_RECIPE} {method_key(*default_method())}"
    return col if col in next(iter(auc.values())) else ""


def nested_choices(path: Path = REPO / "bench" / "results" / "detector_choice.json") -> List[str]:
    """The ``enhanced_scores`` keys of the pairings the fold models chose on their own training
    labels (bench/detector_choice.py), in fold order without repeats; [] before it has run."""
    if not path.is_file():
        return []
    keys: List[str] = []
    for fold in json.loads(path.read_text())["folds"]:
        enhancer, detector = fold["chosen"].split(" + ")
        key = {"none": ""}.get(enhancer, enhancer) + {"RX": "", "CRD": "+CRD", "CRD+RX": "+CRD+RX"}[detector]
        if enhancer != "none" and key not in keys:
            keys.append(key)
    return keys


def product_pick(path: Path = REPO / "bench" / "results" / "detector_choice.json") -> str:
    """The pairing the shipped default model picks on its training labels ('' before
    bench/detector_choice.py has run)."""
    return json.loads(path.read_text())["default_model"]["chosen"] if path.is_file() else ""


def seed_stats(auc, part: str, seeds: int):
    """Mean, sd and standard error over untrained seeds of the 13-window mean AUC."""
    means = [
        float(np.mean([auc[n][f"untrained s{s} {part}"] for n in auc]))
        for s in range(seeds)
        if all(f"untrained s{s} {part}" in auc[n] for n in auc)
    ]
    if len(means) < 2:
        return None
    sd = float(np.std(means, ddof=1))
    return {"means": means, "mean": float(np.mean(means)), "sd": sd, "se": sd / np.sqrt(len(means))}


def fmt(v, signed=False):
    return "—" if v is None else (f"{v:+.4f}" if signed else f"{v:.4f}")


def table(rows, cols, labels=None, signed=()):
    labels = labels or {}
    names = list(rows)
    out = ["| scene | " + " | ".join(labels.get(c, c) for c in cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for n in names:
        out.append(f"| {n} | " + " | ".join(fmt(rows[n].get(c), c in signed) for c in cols) + " |")
    means = {
        c: (float(np.mean([rows[n][c] for n in names])) if all(c in rows[n] for n in names) else None)
        for c in cols
    }
    out.append(
        f"| **mean of these {len(names)}** | "
        + " | ".join(f"**{fmt(means[c], c in signed)}**" for c in cols)
        + " |"
    )
    return "\n".join(out), means


def generated(script: str, scored: str | None, rewritten: bool) -> str:
    """The report's provenance: when its scores were measured (``scored``, UTC; None for saved
    scores that predate this field) and, for ``--report-only`` (``rewritten``), when the report
    was written from them."""
    if not rewritten:
        return f"Generated by `{script}` on {scored}"
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    when = f"on {scored}" if scored else "in an earlier run (its time was not saved)"
    return f"Scores measured by `{script}` {when}; report rewritten from them on {now} (`--report-only`)"


def report(auc, fa, seconds, args, train_time, scored: str | None, rewritten: bool = False) -> str:
    first = next(iter(auc.values()))
    default = default_column(auc)
    base = [c for c in ("RX", "LRX", "CRD", "CRD+RX") if c in first]
    recipe_cols = [
        c
        for r in args.recipes
        for c in (
            f"{r} full",
            f"{r} spectral",
            f"{r} hadamard",
            f"{r} full+CRD",
            f"{r} spectral+CRD",
            f"{r} full+CRD+RX",
            f"{r} spectral+CRD+RX",
        )
        if c in first
    ]
    seeds = args.untrained_seeds
    unt_keys = ("full", "spectral", "full+CRD", "spectral+CRD", "full+CRD+RX", "spectral+CRD+RX")
    unt = {p: seed_stats(auc, p, seeds) for p in unt_keys}
    rows = {n: dict(v) for n, v in auc.items()}
    for n in rows:
        for p in unt_keys:
            vals = [auc[n][f"untrained s{s} {p}"] for s in range(seeds) if f"untrained s{s} {p}" in auc[n]]
            if vals:
                rows[n][f"untrained {p}"] = float(np.mean(vals))
        if default:
            rows[n]["Δ vs RX"] = auc[n][default] - auc[n]["RX"]
            if "CRD" in auc[n]:
                rows[n]["Δ vs CRD"] = auc[n][default] - auc[n]["CRD"]
    main_cols = (
        base
        + ([default, "Δ vs RX"] if default else [])
        + (["Δ vs CRD"] if default and "CRD" in first else [])
        + [c for c in recipe_cols if c != default]
        + [f"untrained {p}" for p in unt_keys if f"untrained {p}" in rows[next(iter(rows))]]
    )
    main, means = table(rows, main_cols, signed=("Δ vs RX", "Δ vs CRD"))
    fa_cols = [
        c
        for c in base + [default] + [c for c in recipe_cols if c != default]
        if c and c in next(iter(fa.values()))
    ]
    fa_tab, fa_means = table(fa, fa_cols)
    lines = [
        "# Accuracy benchmark (leave-scene-out)",
        "",
        f"{generated('bench/accuracy.py', scored, rewritten)}; "
        f"fers_engine {__import__('fers_engine').__version__}; CPU float32. Pixel ROC AUC over each whole "
        "scene.",
        "",
        "- **RX**: global RX on the raw cube, all bands. **LRX**: local RX, 3x3 guard / 15x15 window, scene "
        "covariance. **CRD**: collaborative representation, dual window "
        f"{CRD_WINDOWS[0]} / {CRD_WINDOWS[1]}, the product's fixed lambda {DEFAULT_CRD_LAMBDA:g} "
        "(chosen on these "
        "13 windows' labels by bench/crd_lambda.py, so optimistic for CRD)"
        + ("" if "CRD" in first else " (**not measured**: run without --no-crd)")
        + ".",
        "- **<recipe> full**: RX(x + spe + spa), the full method with the recipe's fold models (sum fusion); "
        "**<recipe> spectral**: RX(x + spe); **<recipe> hadamard**: the product of the min-max normalised "
        "RX(x + spe) and RX(x + spa) (the other fusion `fers detect` offers); **<recipe> full+CRD** / "
        "**spectral+CRD**: CRD (same windows and lambda) on x + spe + spa / x + spe, as `fers detect "
        "--detector crd --enhancer full|spectral` scores. x = the cube on the model's 128-band grid, "
        "normalised "
        "scene-wide. "
        f"`{DEFAULT_RECIPE}` is our recipe (the default), `separation-spectral` its spectral-only ablation, "
        "`published` the paper's FERD / FERS objectives (our implementation, epochs chosen the same way).",
        "- **untrained**: the default recipe's architecture with the weights training starts from, mean "
        "over "
        f"{seeds} initialisation seeds.",
        f"- Leave-scene-out: {args.k} folds over the 13 windows (bench/folds.py); duplicate versions and "
        "same-site "
        "windows share a fold. Each scene is scored by the model trained without any version of it. Every "
        "epoch and candidate was chosen on the training files' own labels.",
        "",
        "## Per scene (AUC)",
        "",
        main,
        "",
        "## Boundary false alarms",
        "",
        "Share of the top 0.5 % scores that are background pixels on a material boundary (spectral angle to "
        "a "
        "4-neighbour in the top 10 % of the scene's background, anomaly pixels and their 8-neighbours left "
        "out); "
        "lower is better.",
        "",
        fa_tab,
        "",
        "## Bars (issue 13)",
        "",
    ]
    if default:
        m = means[default]
        worst = min(rows, key=lambda n: rows[n]["Δ vs RX"])
        lines.append(
            f"- Default method (`{default}`) 13-window mean **{m:.4f}**: "
            f"{'meets' if m >= BARS['mean'] else 'misses'} >= {BARS['mean']}"
            + (
                f"; {'above' if m > means['CRD'] else 'not above'} CRD ({means['CRD']:.4f})"
                if "CRD" in means
                else "; CRD not measured in this checkout"
            )
            + "."
        )
        below = [n for n in rows if rows[n]["Δ vs RX"] < -BARS["below_rx"]]
        lines.append(
            f"- Windows more than {BARS['below_rx']} below plain RX: {len(below)}"
            + (" (" + ", ".join(f"{n} {rows[n]['Δ vs RX']:+.4f}" for n in below) + ")" if below else "")
            + f"; the worst is {worst} ({rows[worst]['Δ vs RX']:+.4f})."
        )
        part = default.split()[-1]
        u = unt.get(part)
        if u is None:
            lines.append(
                f"- Trained vs untrained: the untrained seeds were not scored with `{part}` in this run."
            )
        if u:
            d = m - u["mean"]
            lines.append(
                f"- Trained vs untrained ({len(u['means'])} seeds: {u['mean']:.4f} +- {u['sd']:.4f} sd, "
                f"standard error {u['se']:.4f}): {d:+.4f}, "
                f"{'more' if d > 2 * u['se'] else 'not more'} than two standard errors ({2 * u['se']:.4f})."
            )
        for chosen in nested_choices():  # the pairings the fold models chose on training labels
            c_col, uc = f"{DEFAULT_RECIPE} {chosen}", unt.get(chosen)
            if part == chosen or not uc or c_col not in means:
                continue
            d = means[c_col] - uc["mean"]
            lines.append(
                f"- Trained vs untrained with the pairing chosen on training labels (`{c_col}`, "
                f"{means[c_col]:.4f}; {len(uc['means'])} untrained seeds: {uc['mean']:.4f} +- "
                f"{uc['sd']:.4f} sd, standard error {uc['se']:.4f}): {d:+.4f}, "
                f"{'more' if d > 2 * uc['se'] else 'not more'} than two standard errors ({2 * uc['se']:.4f})."
            )
        full, spec = f"{DEFAULT_RECIPE} full", "separation-spectral spectral"
        if full in means and spec in means and unt.get("full"):
            d = means[full] - means[spec]
            lines.append(
                f"- Full vs spectral (both trained with our objective): {means[full]:.4f} "
                f"vs {means[spec]:.4f}, "
                f"{d:+.4f}; the seed noise of one model's mean (sd over untrained seeds) is "
                f"{unt['full']['sd']:.4f}: full {'beats' if d > unt['full']['sd'] else 'does not beat'} "
                "spectral by more than it."
            )
        if part.startswith("spectral"):
            f_part = part.replace("spectral", "full")
            f_col, s_col = f"{DEFAULT_RECIPE} {f_part}", default
            noise = unt.get(f_part) or unt.get("full")
            if f_col in means and noise:
                d, pick = means[f_col] - means[s_col], product_pick()
                lines.append(
                    f"- The default enhancer is `spectral`: with the default detector, full "
                    f"{means[f_col]:.4f} vs spectral {means[s_col]:.4f}, {d:+.4f}; the seed noise (sd over "
                    f"untrained seeds) is {noise['sd']:.4f}, and full "
                    f"{'beats' if d > noise['sd'] else 'does not beat'} spectral by more than it "
                    "(issue 13: otherwise `spectral` is the default)."
                    + (
                        f" The shipped model's own pick on its training labels is {pick} "
                        "(bench/results/detector_choice.md)."
                        if pick
                        else ""
                    )
                )
        for col, plain in (
            (f"{DEFAULT_RECIPE} full+CRD", "CRD"),
            (f"{DEFAULT_RECIPE} spectral+CRD", "CRD"),
            (f"{DEFAULT_RECIPE} full+CRD+RX", "CRD+RX"),
            (f"{DEFAULT_RECIPE} spectral+CRD+RX", "CRD+RX"),
        ):
            if col in means and plain in means:
                d = [rows[n][col] - rows[n][plain] for n in rows]
                lines.append(
                    f"- Enhancers with {plain} (`{col}`): {means[col]:.4f} vs plain {plain} "
                    f"{means[plain]:.4f}, {means[col] - means[plain]:+.4f}; "
                    f"better on {sum(v > 0 for v in d)} of {len(d)} windows, "
                    f"worst {min(d):+.4f}."
                )
        if default in fa_means:
            lines.append(
                f"- Boundary false-alarm share, mean over the windows: {fa_means[default]:.3f} for the "
                f"default method, {fa_means['RX']:.3f} for plain RX "
                f"({'below' if fa_means[default] < fa_means['RX'] else 'not below'})."
            )
    lines += [
        "",
        "## Fold models",
        "",
        "| recipe | fold | held-out groups | files | candidates: validation AUC | kept | kept epoch per "
        "stage |",
        "|---|---|---|---|---|---|---|",
    ]
    for recipe in args.recipes:
        for i in range(args.k):
            p = fold_model_path(Path(args.models_dir), args.k, i, recipe)
            if not p.is_file():
                continue
            tr = json.loads(p.with_suffix(".json").read_text())["training"]
            cands = ", ".join(f"{c['tag']} {fmt(c['validation_auc'])}" for c in tr.get("candidates", []))
            lines.append(
                f"| {recipe} | {i + 1} | {', '.join(FOLDS[args.k][i])} | {len(tr['files'])} | "
                f"{cands or '-'} | "
                f"{tr.get('chosen', '-')} | {'; '.join(selection_summary(tr))} |"
            )
    lines += [
        "",
        "Scoring time, all 13 windows: " + ", ".join(f"{c} {s:.0f} s" for c, s in seconds.items()) + ".",
    ]
    if train_time:
        lines.append(
            "Training time this run: " + ", ".join(f"{r} {sum(t):.0f} s" for r, t in train_time.items()) + "."
        )
    for p, u in unt.items():
        if u:
            lines.append(f"Untrained seed means ({p}): {', '.join(f'{v:.4f}' for v in u['means'])}.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--retrain", action="store_true", help="retrain the fold models of --recipes first")
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES))
    ap.add_argument("--k", type=int, default=4, choices=sorted(FOLDS))
    ap.add_argument("--models-dir", default=str(MODELS))
    ap.add_argument("--untrained-seeds", type=int, default=5)
    ap.add_argument("--no-lrx", action="store_true")
    ap.add_argument("--no-crd", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "accuracy.md"))
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report from the scores of the last run (the --out .json), scoring nothing: "
        "for a new default method or a new detector choice",
    )
    args = ap.parse_args(argv)
    if args.report_only:
        saved = json.loads(Path(args.out).with_suffix(".json").read_text())
        md = report(
            saved["auc"],
            saved["boundary_false_alarms"],
            saved["seconds"],
            args,
            {},
            saved.get("scored"),
            True,
        )
        Path(args.out).write_text(md)
        print(md)
        return saved["auc"]
    import torch

    torch.set_num_threads(args.threads)
    from fers_engine.progress import Reporter

    rep = Reporter(on_info=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True))
    train_time = {}
    if args.retrain:
        for recipe in args.recipes:
            train_time[recipe] = train_folds(
                Path(args.models_dir), args.k, recipe, rep, seed=FOLD_SEEDS.get(recipe)
            )
    auc, fa, seconds = evaluate(
        Path(args.models_dir),
        args.k,
        tuple(args.recipes),
        args.untrained_seeds,
        not args.no_lrx,
        not args.no_crd,
    )
    scored = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = report(auc, fa, seconds, args, train_time, scored)
    print(md)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(md)
    Path(args.out).with_suffix(".json").write_text(
        json.dumps({"auc": auc, "boundary_false_alarms": fa, "seconds": seconds, "scored": scored}, indent=1)
    )
    return auc


if __name__ == "__main__":
    main()
