"""Invariance benchmark: how far a nodata collar, 90-degree rotations / flips and dead bands move
the enhanced method's AUC on the 13 development windows; writes bench/results/invariance.md.

    .venv/bin/python bench/invariance.py                 # the fold models, full method (sum fusion)
    .venv/bin/python bench/invariance.py --enhancer spectral
    .venv/bin/python bench/invariance.py --enhancer spectral --detector crd   # writes invariance-crd.md

Plain global RX is exactly invariant to all of these (a pixel permutation does not change the
scene mean and covariance; constant bands fall out of the pseudo-inverse; nodata pixels are not
scored), so any change of the enhanced method's AUC comes from the networks and their input
handling. Each scene is scored by the fold model that never saw it (bench/folds.py), through the
same scoring function as bench/accuracy.py.

Perturbations (the valid pixels and the truth move with the data, so a perfect method scores
exactly the same AUC):
* ``collar``: 12 rows / columns of nodata (value 0, marked invalid) added on every side;
* ``ragged collar``: a collar 3..15 px wide that changes every 8 rows / columns (a tilted
  orthorectified footprint as a staircase);
* ``rot90``, ``rot180``, ``rot270``, ``flip rows``, ``flip cols``, ``transpose``;
* ``5 dead bands``: five bands spread over the spectrum set to 0 (a dead detector column);
* ``dead block``: ten contiguous bands set to 0 in the middle of the spectrum.
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

from folds import DATA, SCENES, fold_of  # noqa: E402

BAR = 0.002


def collar(cube, valid, truth, width=12):
    c, h, w = cube.shape
    out = np.zeros((c, h + 2 * width, w + 2 * width), cube.dtype)
    out[:, width : width + h, width : width + w] = cube
    v = np.zeros(out.shape[1:], bool)
    v[width : width + h, width : width + w] = valid
    t = np.zeros(out.shape[1:], bool)
    t[width : width + h, width : width + w] = truth
    return out, v, t


def ragged_collar(cube, valid, truth, lo=3, hi=15, period=8, seed=0):
    """A collar whose width steps between ``lo`` and ``hi`` every ``period`` px: only the pixels
    of the original scene are valid, so the set of scored pixels is unchanged."""
    out, v, t = collar(cube, valid, truth, hi)
    rng = np.random.default_rng(seed)
    big_h, big_w = v.shape
    keep = np.zeros_like(v)  # the part of the frame that exists at all (inside the ragged edge)
    keep[hi : big_h - hi, hi : big_w - hi] = True
    for side in range(4):
        n = big_w if side < 2 else big_h
        for s in range(0, n, period):
            d = int(rng.integers(lo, hi + 1))
            sl = slice(s, s + period)
            if side == 0:
                keep[hi - d : hi, sl] = True
            elif side == 1:
                keep[big_h - hi : big_h - hi + d, sl] = True
            elif side == 2:
                keep[sl, hi - d : hi] = True
            else:
                keep[sl, big_w - hi : big_w - hi + d] = True
    rows = np.flatnonzero(keep.any(1))
    cols = np.flatnonzero(keep.any(0))
    crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return out[(slice(None),) + crop], v[crop], t[crop]


def spatial(fn):
    return lambda cube, valid, truth: (
        np.ascontiguousarray(fn(cube, (1, 2))),
        np.ascontiguousarray(fn(valid, (0, 1))),
        np.ascontiguousarray(fn(truth, (0, 1))),
    )


def dead_bands(idx_fn):
    def apply(cube, valid, truth):
        out = cube.copy()
        out[idx_fn(cube.shape[0])] = 0
        return out, valid, truth

    return apply


PERTURBATIONS = {
    "collar": collar,
    "ragged collar": ragged_collar,
    "rot90": spatial(lambda a, ax: np.rot90(a, 1, ax)),
    "rot180": spatial(lambda a, ax: np.rot90(a, 2, ax)),
    "rot270": spatial(lambda a, ax: np.rot90(a, 3, ax)),
    "flip rows": spatial(lambda a, ax: np.flip(a, ax[0])),
    "flip cols": spatial(lambda a, ax: np.flip(a, ax[1])),
    "transpose": spatial(lambda a, ax: np.swapaxes(a, *ax)),
    "5 dead bands": dead_bands(lambda n: np.linspace(0.1 * n, 0.9 * n, 5).astype(int)),
    "dead block": dead_bands(lambda n: np.arange(n // 2 - 5, n // 2 + 5)),
}


def measure(
    enhancer: str = "full",
    models_dir: Path = REPO / "models" / "folds",
    k: int = 4,
    scenes=None,
    recipe: str | None = None,
    detector: str = "rx",
    only=None,
):
    """{scene: {"base": auc, perturbation: auc - base}} for the enhanced method with global RX,
    CRD or CRD+RX, as ``accuracy.enhanced_scores`` scores them."""
    import accuracy

    from fers_engine.metrics import roc_auc
    from fers_engine.nets.enhancer import load_enhancer

    column = accuracy.method_key(enhancer, detector)
    parts = ("spectral", "spatial") if enhancer == "full" else ("spectral",)
    models = {}
    out = {}
    for name, (rel, _) in SCENES.items():
        if scenes is not None and name not in scenes:
            continue
        i = fold_of(name, k)
        if i not in models:
            models[i] = load_enhancer(
                str(accuracy.fold_model_path(models_dir, k, i, recipe or accuracy.RECIPES[0])), device="cpu"
            )
        raw = accuracy.read(DATA / rel)
        cube, valid, truth = raw.cube, raw.valid, raw.truth

        def auc(c, v, t, enh=models[i]):
            return roc_auc(
                accuracy.enhanced_scores(enh, c, v, parts, with_crd=detector != "rx")[column], t, valid=v
            )

        base = auc(cube, valid, truth)
        row = {"base": base}
        for label, fn in PERTURBATIONS.items():
            if only is None or label in only:
                row[label] = auc(*fn(cube, valid, truth)) - base
        out[name] = row
        print(name, " ".join(f"{k} {v:+.4f}" for k, v in row.items()), flush=True)
    return out


def report(res, enhancer: str, seconds: float, detector: str = "rx", only=None) -> str:
    labels = [k for k in PERTURBATIONS if k in next(iter(res.values()))]
    lines = ["| scene | AUC | " + " | ".join(labels) + " |", "|" + "---|" * (len(labels) + 2)]
    for name, row in res.items():
        cells = [f"{row[k]:+.4f}" + (" **x**" if abs(row[k]) > BAR else "") for k in labels]
        lines.append(f"| {name} | {row['base']:.4f} | " + " | ".join(cells) + " |")
    worst = {k: max(abs(r[k]) for r in res.values()) for k in labels}
    lines.append("| **largest change** | | " + " | ".join(f"**{worst[k]:.4f}**" for k in labels) + " |")
    failing = [k for k in labels if worst[k] > BAR]
    return "\n".join(
        [
            "# Invariance benchmark",
            "",
            f"Generated by `bench/invariance.py --enhancer {enhancer}"
            + ("" if detector == "rx" else f" --detector {detector}")
            + ("" if not only else " --only " + " ".join(f"'{o}'" if " " in o else o for o in only))
            + "` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; the default recipe's fold models "
            "(models/folds/<recipe>/, bench/folds.py), "
            f"{'full method (sum fusion)' if enhancer == 'full' else 'spectral enhancer'} + "
            + {
                "rx": "global RX",
                "crd": "CRD (accuracy.CRD_WINDOWS, the default lambda)",
                "crd+rx": "CRD+RX (sqrt of global RX x CRD, accuracy.CRD_WINDOWS, the default lambda)",
            }[detector]
            + ", "
            "CPU float32. "
            "Each cell is the AUC of the perturbed scene minus the AUC of the scene as it is; plain RX "
            f"changes by 0 on all of them. Bar: |change| <= {BAR} (**x** marks a cell over it).",
            "",
            *lines,
            "",
            (
                "Every perturbation measured stays within the bar."
                if not failing
                else "Over the bar: " + ", ".join(failing) + "."
            ),
            "",
            f"Scoring time: {seconds:.0f} s.",
            "",
        ]
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enhancer", choices=["full", "spectral"], default="full")
    ap.add_argument("--detector", choices=["rx", "crd", "crd+rx"], default="rx")
    ap.add_argument("--models-dir", default=str(REPO / "models" / "folds"))
    ap.add_argument(
        "--out",
        default=None,
        help="default: bench/results/invariance.md, invariance-<detector>.md for the others",
    )
    ap.add_argument("--scenes", nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--only",
        nargs="+",
        choices=list(PERTURBATIONS),
        default=None,
        help="these perturbations only (CRD is slow)",
    )
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.time()
    res = measure(
        args.enhancer, Path(args.models_dir), scenes=args.scenes, detector=args.detector, only=args.only
    )
    md = report(res, args.enhancer, time.time() - t0, args.detector, args.only)
    out = Path(
        args.out
        or REPO
        / "bench"
        / "results"
        / ("invariance.md" if args.detector == "rx" else f"invariance-{args.detector}.md")
    )
    print(md)
    if args.scenes is None:
        out.write_text(md)
        out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
