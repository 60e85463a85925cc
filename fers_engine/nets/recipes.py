"""Training recipes: which stages run with which settings, and the candidates a model chooses from.

A recipe trains each of its candidates (other seeds, or other variants of the recipe) and keeps
the one whose weights give the best mean RX AUC on the training files' own labels
(``validation.py``); without labelled files the first candidate is kept. ``fers train``,
``fers:train`` and ``models/retrain.py`` all call ``trainer.train`` with a recipe name, so a
shipped model is reproduced by ``fers train <its files> --recipe <its recipe>``.

* ``separation`` (ours): one stage that trains the deployed spectral and spatial enhancers so
  that targets implanted into background crops stand out under RX, boundaries kept quiet.
* ``separation-spectral``: the same with the spectral enhancer only (the ablation).
* ``published``: the FERD / FERS objectives (stage 0 trunk pre-training, stage 1 reverse
  distillation, stage 2 rebellious student), for reproducing the paper's method.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ..choices import TRAINING_RECIPES
from ..errors import InputError

BASE_CONFIG: Dict = {
    "bands": 128,
    "patch": 32,
    "batch": 16,
    "steps_per_epoch": 40,
    "epochs": {"0": 6, "1": 6, "2": 4, "sep": 8},
    "lr": {"0": 2e-3, "1": 1e-3, "2": 1e-3, "sep": 3e-4},
    "spectral": {"width": 24, "hidden": 64, "dilations": [1], "out_act": "none", "skip": True},
    "spatial": {"width": 16, "rgb_hidden": 32, "dilations": [1, 2, 4], "pools": [1, 5, 9, 17], "hidden": 64},
    # D4-tied 3x3 kernels: rotating or flipping a scene cannot change its scores
    "symmetric": True,
    "parts": ["spectral", "spatial"],
    "frn": {"width": 32, "blocks": 3},
    "stage1_weights": {"w_cos": 1.0, "w_mse": 0.1, "w_align": 1.0},
    "stage2_weights": {"cc": 1.0, "cos": 0.1, "var": 0.1, "rec": 1.0, "ssim": 0.01},
    "mask_mode": "mix",
    "random_trunk": False,
    "separation": {
        "groups": 2,
        "crops": 8,
        "margin": 4,
        "train": "all",
        "real_fraction": 0.0,
        "loss": {"shrink": 1e-3, "tau": 0.5, "hard_fraction": 0.02, "edge_fraction": 0.05, "n_random": 512},
        # target spectra: the host's own spectrum reshaped, or pixels of other training scenes; the
        # labelled anomalies of training scenes are not donors (own_anomaly / other_anomaly 0), since
        # the same labels choose the epochs and candidates: the choice would be made in-sample
        "implant": {
            "max_targets": 3,
            "max_area": 12,
            "min_abundance": 0.1,
            "own_anomaly": 0.0,
            "other_anomaly": 0.0,
            "host_shape": 0.6,
            "other_pixel": 0.4,
            "illumination": 0.25,
            "band_gain": 0.15,
            "noise": 0.003,
        },
    },
    "band_variants": 0,
    "dilate": 3,
    "val_fraction": 0.15,
    # stages that can keep the epoch (0 = the stage's starting point) whose features give the best
    # mean RX AUC on the labelled training files ("detection"), or the lowest validation loss
    # ("loss"; also the fallback when no training file carries ground truth)
    "select": "detection",
}


@dataclass(frozen=True)
class Recipe:
    name: str
    stages: Tuple[str, ...]
    config: Dict
    candidates: Tuple[Dict, ...]  # {"tag", "seed", "config": overrides}
    description: str = ""

    def full_config(self, overrides: Optional[Dict] = None) -> Dict:
        return merge_config(merge_config(BASE_CONFIG, self.config), overrides)


def merge_config(base: Dict, overrides: Optional[Dict]) -> Dict:
    """A deep copy of ``base`` with ``overrides`` merged in (nested dicts merged, not replaced)."""
    out = copy.deepcopy(base)
    for k, v in (overrides or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_config(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _seeds(*seeds: int, config: Optional[Dict] = None) -> Tuple[Dict, ...]:
    return tuple({"tag": f"s{s}", "seed": s, "config": dict(config or {})} for s in seeds)


#: Our recipe's settings beyond BASE_CONFIG: 6 epochs of 30 steps (each step two crop groups of 8
#: crops of 32 x 32 px, about 16k pixels), one band-subset variant of every training scene.
_SEPARATION = {"band_variants": 1, "steps_per_epoch": 30, "epochs": {"sep": 6}}

RECIPES: Dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "separation",
            ("sep",),
            _SEPARATION,
            _seeds(0, 1),
            "implanted-target separation under RX, spectral + spatial enhancers",
        ),
        Recipe(
            "separation-spectral",
            ("sep",),
            {**_SEPARATION, "parts": ["spectral"]},
            _seeds(0, 1),
            "implanted-target separation under RX, spectral enhancer only",
        ),
        Recipe(
            "published",
            ("0", "1", "2"),
            {},
            tuple(
                {"tag": f"{trunks}-s{seed}", "seed": seed, "config": {"random_trunk": trunks == "random"}}
                for seed in (0, 1)
                for trunks in ("pretrained", "random")
            ),
            "the published FERD / FERS objectives: stage 0 trunk pre-training, stage 1 reverse "
            "distillation, stage 2 rebellious student",
        ),
    )
}

#: The recipe of the shipped default model, and of ``fers train`` without ``--recipe``.
DEFAULT_RECIPE = "separation"
assert set(TRAINING_RECIPES) == {"default", *RECIPES}, "choices.TRAINING_RECIPES out of date"


def get_recipe(name: Optional[str]) -> Recipe:
    key = DEFAULT_RECIPE if name in (None, "", "default") else str(name)
    if key not in RECIPES:
        raise InputError(f"unknown training recipe {name!r}: choose one of default, {', '.join(RECIPES)}")
    return RECIPES[key]
