"""The shipped models are what `fers train` makes: the default recipe, on the files its card
names, with the settings the CLI passes; and the CLI's `train` runs exactly that recipe."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DEFAULT = REPO / "models" / "fers-default.json"


def test_fers_train_without_options_runs_the_default_recipe_with_its_candidates(monkeypatch, tmp_path):
    from fers_engine import cli
    from fers_engine.nets import trainer

    seen = {}

    class _Result:
        model, recipe, chosen, validation_auc, seconds, device = (
            tmp_path / "m.safetensors",
            "separation",
            "s0",
            None,
            0.0,
            "cpu",
        )

    def fake_train(inputs, out, **kwargs):
        seen.update(kwargs, inputs=inputs, out=out)
        return _Result()

    monkeypatch.setattr(trainer, "train", fake_train)
    assert cli.main(["train", "a.mat", "b.mat", "-o", str(tmp_path / "m.safetensors")]) == 0
    assert seen["recipe"] == "default" and seen["seed"] is None and seen["truth"] == "found"
    assert seen["stages"] is None and seen["epochs"] is None and seen["steps_per_epoch"] is None
    assert seen["config"] == {"select": "detection"}


def test_the_shipped_default_model_is_the_default_recipe_on_every_training_file():
    from fers_engine.nets.recipes import DEFAULT_RECIPE, get_recipe

    if not DEFAULT.is_file():
        pytest.skip("no shipped default model")
    sys.path.insert(0, str(REPO / "bench"))
    from folds import TRAIN_FILES

    card = json.loads(DEFAULT.read_text())
    tr = card["training"]
    assert tr["recipe"] == DEFAULT_RECIPE
    assert sorted(f["name"] for f in tr["files"]) == sorted(Path(f).name for f in TRAIN_FILES)
    expected = get_recipe(None).full_config({"select": "detection"})
    assert tr["config"] == json.loads(json.dumps(expected))
    assert [c["tag"] for c in tr["candidates"]] == [c["tag"] for c in get_recipe(None).candidates]


def test_the_shipped_default_models_training_request_passes_the_checks_before_work(shared_data, tmp_path):
    """models/retrain.py reruns `fers train` on the files the card names: its checks must accept
    them (the EnMAP tiles' water-vapour bands hold no valid value; training drops them)."""
    from fers_engine.nets.recipes import get_recipe
    from fers_engine.nets.train_request import check_train_request

    sys.path.insert(0, str(REPO / "bench"))
    from folds import TRAIN_FILES

    files = [str(shared_data / f) for f in TRAIN_FILES]
    if not all(Path(f).exists() for f in files):
        pytest.skip("not every training file of the shipped model is in the shared data")
    check_train_request(files, None, get_recipe(None).full_config()["epochs"], tmp_path / "m.safetensors")
