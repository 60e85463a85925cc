"""Where bundled models live: one folder beside the engine package, FERS_MODELS_DIR first."""

from __future__ import annotations

from pathlib import Path

import pytest

import fers_engine
from fers_engine.errors import ModelError
from fers_engine.nets import bundled
from fers_engine.nets.bundled import (
    DEFAULT_MODEL,
    MODELS_DIR,
    bundled_models,
    model_folders,
    resolve_model_path,
)


def test_the_models_folder_is_beside_the_engine_package(monkeypatch):
    monkeypatch.delenv("FERS_MODELS_DIR", raising=False)
    assert MODELS_DIR == Path(fers_engine.__file__).resolve().parent.parent / "models"
    assert model_folders() == [MODELS_DIR]
    default = MODELS_DIR / "fers-default.safetensors"
    assert default.is_file(), "the checkout ships the default model"
    assert resolve_model_path(None) == resolve_model_path("") == resolve_model_path(DEFAULT_MODEL) == default
    assert resolve_model_path("fers-default.safetensors") == default
    assert DEFAULT_MODEL in bundled_models()


def test_fers_models_dir_adds_folders_searched_first(tmp_path, monkeypatch):
    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.mkdir()
    other.mkdir()
    (mine / "custom.safetensors").write_bytes(b"x")
    (mine / "fers-default.safetensors").write_bytes(b"x")  # shadows the shipped one
    (other / "second.safetensors").write_bytes(b"x")
    (other / "run.ckpt.safetensors").write_bytes(b"x")  # a training checkpoint is not a model
    monkeypatch.setenv(
        "FERS_MODELS_DIR", f"{mine}{bundled.os.pathsep}{other}{bundled.os.pathsep}{tmp_path / 'gone'}"
    )
    assert model_folders() == [mine, other, MODELS_DIR]
    assert resolve_model_path("custom") == mine / "custom.safetensors"
    assert resolve_model_path(None) == mine / "fers-default.safetensors"
    assert resolve_model_path("second") == other / "second.safetensors"
    names = bundled_models()
    assert {"custom", "second", "fers-default"} <= set(names) and "run.ckpt" not in names


def test_unknown_names_and_bad_paths_say_what_is_there(tmp_path, monkeypatch):
    monkeypatch.delenv("FERS_MODELS_DIR", raising=False)
    with pytest.raises(
        ModelError, match=r"no bundled model named 'nope' in .*models \(available: .*fers-default"
    ):
        resolve_model_path("nope")
    with pytest.raises(ModelError, match="model path is a folder"):
        resolve_model_path(str(tmp_path))
    with pytest.raises(
        ModelError, match=r"model file not found: .*missing.safetensors \(bundled models: .*fers-default"
    ):
        resolve_model_path(str(tmp_path / "missing.safetensors"))
