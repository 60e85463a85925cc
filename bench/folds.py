"""Leave-scene-out folds for the accuracy benchmark.

13 development windows (one version each, the versions of docs/peer-baseline.md). Duplicate
versions of a window and windows from the same site / flight (Los Angeles airports 1-2, Texas
Coast urban 1-2, San Diego beach-2 + airport) are grouped and always fall in the same fold, so a
fold model never saw any version of the scenes it is scored on (anomaly pixels of the *other*
folds' scenes are excluded from training by their ground truth dilated by 3 px).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FERS_SHARED_DATA", REPO.parent / "shared" / "data"))

# scene label -> (file, group) ; the 13 benchmark versions
SCENES = {
    "abu-airport-1": ("abu-airport-1/abu-airport-1.mat", "LA"),
    "abu-airport-2": ("abu-airport-2/abu-airport-2.mat", "LA"),
    "abu-airport-3": ("abu-airport-3/abu-airport-3.mat", "A3"),
    "abu-airport-4": ("abu-airport-4/abu-airport-4.mat", "GULF"),
    "abu-beach-1": ("abu-beach-1/abu-beach-1.mat", "B1"),
    "abu-beach-2": ("abu-beach-2/abu-beach-2.mat", "SD"),
    "abu-beach-3": ("abu-beach-3/abu-beach-3.mat", "B3"),
    "abu-urban-1": ("abu-urban-1/abu-urban-1.mat", "TX"),
    "abu-urban-2": ("abu-urban-2/abu-urban-2.mat", "TX"),
    "san-diego/AVIRIS-I (120x120)": ("san-diego/AVIRIS-I__CNND_120x120x189.mat", "SD"),
    "hydice-urban (OT-AD version)": ("hydice-urban/hydice__OT-AD.mat", "HYD"),
    "pavia-centre crop (LREN version)": ("pavia-centre-100x100/abu-beach-4__LREN_100x100.mat", "PAV"),
    "lhdata": ("lhdata-envi-100x100/LHData", "LH"),
}

# every training file (all versions + background scenes) -> group
TRAIN_FILES = {
    "abu-airport-1/abu-airport-1.mat": "LA",
    "abu-airport-2/abu-airport-2.mat": "LA",
    "abu-airport-3/abu-airport-3.mat": "A3",
    "abu-airport-4/abu-airport-4.mat": "GULF",
    "abu-beach-1/abu-beach-1.mat": "B1",
    "abu-beach-2/abu-beach-2.mat": "SD",
    "abu-beach-3/abu-beach-3.mat": "B3",
    "abu-urban-1/abu-urban-1.mat": "TX",
    "abu-urban-2/abu-urban-2.mat": "TX",
    "abu-urban-2/abu-urban-2__LREN_198band.mat": "TX",
    "san-diego/AVIRIS-I__CNND_120x120x189.mat": "SD",
    "san-diego/sandiego__OT-AD_100x100x189.mat": "SD",
    "san-diego/Sandiego__DSC_100x100x224.mat": "SD",
    "san-diego-envi-90x90/SDData": "SD",
    "hydice-urban/hydice__OT-AD.mat": "HYD",
    "hydice-urban/HYDICE__DSC.mat": "HYD",
    "hydice-urban/HYDICE_data__LREN.mat": "HYD",
    "hydice-urban/HYDICE__DFAN-HAD_175band_norm.mat": "HYD",
    "pavia-centre-100x100/abu-beach-4__LREN_100x100.mat": "PAV",
    "pavia-centre-100x100/Pavia__lzw-lzw.mat": "PAV",
    "lhdata-envi-100x100/LHData": "LH",
    "bg-aviris-santa-barbara-90x90/a_hsi_img_for_VI_demo.mat": "BG",
    "bg-jasper-ridge-100x100/jasperRidge2_R198.mat": "BG",
    "muufl-gulfport-crops/an_hsi_image_sub_for_demo.mat": "BG",
    "muufl-gulfport-crops/an_hsi_img_for_tgt_det_demo.mat": "BG",
}
# the 18 real EnMAP L2A tiles (Potsdam, 30 m, a second sensor): background, no labels
ENMAP_TILES = (
    "64_0",
    "64_32",
    "96_0",
    "96_32",
    "96_96",
    "96_128",
    "128_0",
    "128_32",
    "128_96",
    "128_128",
    "160_64",
    "160_96",
    "160_128",
    "160_160",
    "192_64",
    "192_96",
    "192_128",
    "192_160",
)
TRAIN_FILES.update({f"enmap-l2a-potsdam-tiles/images/enmap_potsdam_tile_{t}.tif": "BG" for t in ENMAP_TILES})

FOLDS = {
    4: [["LA", "HYD", "B3"], ["SD", "A3"], ["TX", "PAV"], ["GULF", "B1", "LH"]],
    2: [["LA", "HYD", "B3", "SD", "A3"], ["TX", "PAV", "GULF", "B1", "LH"]],
}


def fold_of(scene: str, k: int) -> int:
    g = SCENES[scene][1]
    for i, groups in enumerate(FOLDS[k]):
        if g in groups:
            return i
    raise KeyError(scene)


def training_files(fold: int, k: int):
    held = set(FOLDS[k][fold])
    return [str(DATA / f) for f, g in TRAIN_FILES.items() if g not in held]


def all_training_files():
    return [str(DATA / f) for f in TRAIN_FILES]
