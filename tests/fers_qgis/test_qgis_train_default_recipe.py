"""fers:train without a RECIPE trains the recipe of the shipped default model (issue 13, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qgis_helpers import synthetic_cube, write_tif

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]


def test_train_without_recipe_runs_the_shipped_default_models_recipe(fers_plugin, tmp_path):
    import processing

    from fers_engine.nets.recipes import DEFAULT_RECIPE, get_recipe

    cube, _ = synthetic_cube(bands=16, rows=64, cols=64, seed=5, targets=())
    scene = write_tif(tmp_path / "bg.tif", cube)
    out = tmp_path / "m.safetensors"
    res = processing.run(
        "fers:train",
        {
            "INPUTS": [scene],
            "EPOCHS": 1,
            "STEPS_PER_EPOCH": 1,
            "SEED": 0,
            "DEVICE": "cpu",
            "OUTPUT": str(out),
        },
    )
    tr = json.loads(Path(res["MODEL_CARD"]).read_text(encoding="utf-8"))["training"]
    assert tr["recipe"] == DEFAULT_RECIPE and tr["stages"] == list(get_recipe(DEFAULT_RECIPE).stages)
    shipped = REPO / "models" / "fers-default.json"
    if shipped.is_file():
        assert tr["recipe"] == json.loads(shipped.read_text(encoding="utf-8"))["training"]["recipe"]
