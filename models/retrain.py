"""Retrain every shipped model from ../shared/data and regenerate models/README.md.

    .venv/bin/python models/retrain.py                  # default model + every recipe's fold models
    .venv/bin/python models/retrain.py --only default
    .venv/bin/python models/retrain.py --only folds --recipes published
    .venv/bin/python models/retrain.py --only readme

Every model is written by ``fers_engine.nets.trainer.train`` with a recipe name, exactly as
``fers train`` runs it: the default model is ``fers train <every training file> --recipe
default``, and its card lists the files. Writes models/fers-default.safetensors (+ .json card),
models/folds/<recipe>/fold<i>of4.safetensors (the leave-scene-out models of bench/accuracy.py:
every candidate of our recipes, seed 0 of the published one), then models/README.md
with the run times and validation figures read back from the model cards.
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

from folds import FOLDS, TRAIN_FILES, all_training_files  # noqa: E402

K = 4


def _saw(card: dict) -> str:
    """What a model trained on, in groups: how many files of which kind, and which labels it used."""
    names = [f["name"] for f in card["training"]["files"]]
    enmap = sum(n.startswith("enmap_potsdam_tile_") for n in names)
    truth = sum(1 for f in card["training"]["files"] if f.get("truth"))
    return (
        f"{len(names) - enmap} scene files + {enmap} EnMAP tiles; ground truth of {truth} file(s) used "
        "(anomaly pixels excluded, epochs and candidates chosen)"
    )


def _picked() -> str:
    """The pairing this model picks on its own labelled training files, from
    bench/results/detector_choice.json (bench/detector_choice.py), when that file exists."""
    path = REPO / "bench" / "results" / "detector_choice.json"
    if not path.is_file():
        return ""
    chosen = json.loads(path.read_text())["default_model"]["chosen"]
    return (
        f"; on its own labelled training files it picks {chosen} (`bench/detector_choice.py`), and "
        "the enhancer follows issue 13's ablation rule (`bench/results/accuracy.md`)"
    )


def _fold_seeds(models) -> str:
    """Which recipes' fold models, as shipped, trained every candidate and which one seed (read
    from their cards, so the sentence cannot drift from the files)."""
    every, single = set(), {}
    for p in models:
        if p.parent.parent.name != "folds":
            continue
        tr = json.loads(p.with_suffix(".json").read_text())["training"]
        if tr.get("candidates"):
            every.add(p.parent.name)
        else:
            single[p.parent.name] = tr.get("seed")
    parts = []
    if every:
        parts.append(
            "the fold models of "
            + ", ".join(f"`{r}`" for r in sorted(every))
            + " trained every candidate of their recipe, like the default model"
        )
    if single:
        parts.append(
            "those of "
            + ", ".join(f"`{r}` (seed {s})" for r, s in sorted(single.items()))
            + " one seed only (one candidate: the table's '-')"
        )
    return ("As shipped, " + "; ".join(parts) + ".") if parts else ""


def write_readme(timings: dict) -> None:
    from fers_engine.choices import DEFAULT_DETECTOR, DEFAULT_ENHANCER
    from fers_engine.nets.recipes import DEFAULT_RECIPE, RECIPES
    from fers_engine.nets.trainer import selection_summary

    rows = []
    models = [HERE / "fers-default.safetensors"] + sorted((HERE / "folds").glob(f"*/fold?of{K}.safetensors"))
    total = 0.0
    for p in models:
        if not p.is_file():
            continue
        card = json.loads(p.with_suffix(".json").read_text())
        tr = card["training"]
        cands = tr.get("candidates") or [
            {"tag": tr.get("chosen", f"s{tr['seed']}"), "time_s": tr["time_s"], "validation_auc": None}
        ]
        spent = sum(c.get("time_s", 0.0) for c in cands)
        total += spent
        aucs = ", ".join(
            f"{c['tag']} {c['validation_auc']:.4f}" for c in cands if c.get("validation_auc") is not None
        )
        rows.append(
            f"| `{p.relative_to(HERE)}` | {tr.get('recipe', '?')} | {p.stat().st_size / 1024:.0f} KiB | "
            f"{_saw(card)} | {spent:.0f} | **{tr.get('chosen', '-')}**{f' ({aucs})' if aucs else ''} | "
            f"{'; '.join(selection_summary(tr))} |"
        )
    size = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file()) / 2**20
    wall = f"; wall clock of the whole command {timings['wall_s']:.0f} s" if "wall_s" in timings else ""
    recipes = "\n".join(
        f"  * `{r.name}`: {r.description}; candidates {', '.join(c['tag'] for c in r.candidates)}"
        for r in RECIPES.values()
    )
    header = (
        "| model | recipe | size | what it saw | train time (s) | kept candidate (validation AUC) "
        "| kept epoch per stage and its validation value |"
    )
    held_out = "; ".join(f"fold {i + 1}: " + ", ".join(g) for i, g in enumerate(FOLDS[K]))
    text = f"""# Shipped enhancer models

All weights here were trained by us from scratch on the development data in `../shared/data`
(no ImageNet or other pre-trained weights exist anywhere in this project). Regenerate all of
them, and this file, with ONE command from the repository root:

    .venv/bin/python models/retrain.py

Last written: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, CPU (one thread, `nice`, on a shared
2-core machine), total training time {total:.0f} s ({total / 60:.1f} min, every candidate counted{wall}).
Folder size {size:.2f} MiB.

{header}
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

* `fers-default`: the model `fers detect` uses by default (`--enhancer {DEFAULT_ENHANCER}`, then
  `--detector {DEFAULT_DETECTOR}`{_picked()}), recipe `{DEFAULT_RECIPE}`. It is exactly
  `fers train <the {len(TRAIN_FILES)} files of bench/folds.py> -o fers-default.safetensors` (every file is
  named, with its sha256 and the truth it used, in the card). It has seen the anomaly-free parts of
  every benchmark scene, so **never score it on those scenes**: the accuracy benchmark uses the fold
  models.
* `folds/<recipe>/fold<i>of{K}`: leave-scene-out models of `bench/accuracy.py`; fold i never saw any
  version of the windows in its held-out groups ({held_out}).
  {_fold_seeds(models)}
* Recipes (`fers_engine/nets/recipes.py`):
{recipes}
* Selection: each stage keeps the epoch (epoch 0 = its untrained start) whose enhanced features
  give the best mean RX AUC on the *training* files' own ground truth, scored as `fers detect`
  scores; each model keeps its best candidate by the same number. A fold model's training files
  never include its held-out scenes, so no test label takes part. The curves are in each card.
* Data: the 25 benchmark and background files of `bench/folds.py` (AVIRIS, HYDICE, ROSIS, CASI and
  an unknown VNIR sensor; every version of every window) and the 18 real EnMAP L2A tiles (a second
  sensor at 30 m); ENVI bad bands and bands that are nodata everywhere are dropped, as detection does.

Each `.safetensors` file embeds its model card (`__metadata__['fers_card']`); the `.json` beside it
is the same card for reading.
"""
    (HERE / "README.md").write_text(text)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["default", "folds", "readme"], default=None)
    ap.add_argument(
        "--recipes", nargs="+", default=None, help="fold models of these recipes (default: all compared)"
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    import accuracy

    from fers_engine.nets.trainer import train
    from fers_engine.progress import Reporter

    rep = Reporter(on_info=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True))
    t0 = time.time()
    if args.only in (None, "default"):
        train(
            all_training_files(),
            HERE / "fers-default.safetensors",
            recipe="default",
            reporter=rep,
            name="fers-default",
        )
    if args.only in (None, "folds"):
        for recipe in args.recipes or accuracy.RECIPES:
            accuracy.train_folds(HERE / "folds", K, recipe, rep, seed=accuracy.FOLD_SEEDS.get(recipe))
    timings = {"device": "cpu"}
    if args.only is None:
        timings["wall_s"] = time.time() - t0
    write_readme(timings)
    print("done in", round(time.time() - t0), "s")


if __name__ == "__main__":
    main()
