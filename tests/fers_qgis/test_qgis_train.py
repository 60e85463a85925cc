"""fers:train (tiny settings) and the enhanced detect path with the trained model file."""

from __future__ import annotations

import json
import os

import pytest
from qgis_helpers import raster_geometry, synthetic_cube, write_tif

pytest.importorskip("torch")
pytest.importorskip("safetensors")


def run(alg_id, params, feedback=None):
    import processing

    return processing.run(alg_id, params, feedback=feedback)


@pytest.fixture(scope="module")
def train_scene(tmp_path_factory):
    """A small background scene: training needs 32 x 32 px patches; small keeps the test fast."""
    cube, _ = synthetic_cube(bands=16, rows=64, cols=64, seed=3, targets=())
    return write_tif(tmp_path_factory.mktemp("train") / "bg.tif", cube)


@pytest.fixture(scope="module")
def training_run(fers_plugin, train_scene, tmp_path_factory):
    """One tiny training run's results."""
    scene = train_scene
    out = str(tmp_path_factory.mktemp("model") / "tiny.safetensors")
    res = run(
        "fers:train",
        {
            "INPUTS": [scene],
            "RECIPE": "published",
            "STAGES": ["spectral"],
            "EPOCHS": 2,
            "STEPS_PER_EPOCH": 2,
            "SEED": 0,
            "DEVICE": "cpu",
            "OUTPUT": out,
        },
    )
    return res


@pytest.fixture(scope="module")
def trained_model(training_run):
    return training_run


def test_train_writes_model_and_card(trained_model):
    out = trained_model["OUTPUT"]
    assert os.path.isfile(out) and out.endswith(".safetensors")
    assert sorted(os.listdir(os.path.dirname(out))) == ["tiny.json", "tiny.safetensors"]  # no checkpoint left
    card = json.load(open(trained_model["MODEL_CARD"], encoding="utf-8"))
    tr = card["training"]
    assert tr["recipe"] == "published" and tr["stages"] == ["1"] and tr["seed"] == 0
    assert trained_model["DEVICE"] == "cpu"
    # no ground truth with the scene: the kept epoch is the one with the lowest validation loss
    kept = tr["best_epoch"]["1"]
    assert trained_model["LOSS"] == pytest.approx(tr["validation_loss"]["1"][kept - 1])
    assert trained_model["LOSS"] == pytest.approx(min(tr["validation_loss"]["1"]))
    assert trained_model["VALIDATION_AUC"] is None


def test_detect_with_trained_model_file(trained_model, train_scene, tmp_path, recording_feedback):
    scene = train_scene
    fb = recording_feedback()
    res = run(
        "fers:detect",
        {
            "INPUT": scene,
            "ENHANCER": "spectral",
            "MODEL_FILE": trained_model["OUTPUT"],
            "DEVICE": "cpu",
            "OUTPUT": str(tmp_path / "enh.tif"),
        },
        fb,
    )
    assert res["DEVICE"] == "cpu"
    assert raster_geometry(res["OUTPUT"])[:4] == raster_geometry(scene)[:4]
    assert any("Device used: cpu" in m for m in fb.infos)


def test_cancelled_training_keeps_last_checkpoint(fers_plugin, train_scene, tmp_path, recording_feedback):
    from qgis.core import QgsProcessingException

    scene = train_scene
    out = tmp_path / "cancelled.safetensors"

    fb = recording_feedback()
    original = fb.setProgress

    def set_progress(value):
        original(value)
        if value > 50.0:  # past the first of two epochs: its checkpoint is on disk
            fb.cancel()

    fb.setProgress = set_progress
    with pytest.raises(QgsProcessingException, match="checkpoint"):
        run(
            "fers:train",
            {
                "INPUTS": [scene],
                "RECIPE": "published",
                "STAGES": ["spectral"],
                "EPOCHS": 2,
                "STEPS_PER_EPOCH": 2,
                "SEED": 0,
                "DEVICE": "cpu",
                "OUTPUT": str(out),
            },
            fb,
        )
    assert not out.exists()
    assert (tmp_path / "cancelled.ckpt.safetensors").exists()


def test_detect_full_with_bundled_model(provider, real_scene, tmp_path, recording_feedback):
    """The default method (ENHANCER=full, the engine's default model) on the real scene."""
    from fers_qgis.algorithms.detect import bundled_models

    if "fers-default" not in bundled_models():
        pytest.skip("no bundled fers-default model in models/")
    scene, truth = real_scene
    fb = recording_feedback()
    res = run("fers:detect", {"INPUT": scene, "OUTPUT": str(tmp_path / "full.tif")}, fb)
    assert res["DEVICE"] in ("cpu", "cuda")
    assert raster_geometry(res["OUTPUT"])[:4] == raster_geometry(scene)[:4]
    ev = run("fers:evaluate", {"SCORE": res["OUTPUT"], "GROUND_TRUTH": truth})
    assert ev["AUC"] > 0.8


def test_every_training_log_line_is_shown_once(fers_plugin, train_scene, tmp_path, recording_feedback):
    """qgis_process prints both the info log and the progress text, so a line pushed as info and
    set as progress text appeared twice in the console; each line must reach the user once."""
    fb = recording_feedback()
    texts = []
    original = fb.setProgressText

    def set_progress_text(text):
        texts.append(text)
        original(text)

    fb.setProgressText = set_progress_text
    run(
        "fers:train",
        {
            "INPUTS": [train_scene],
            "RECIPE": "published",
            "STAGES": ["spectral"],
            "EPOCHS": 2,
            "STEPS_PER_EPOCH": 2,
            "SEED": 0,
            "DEVICE": "cpu",
            "OUTPUT": str(tmp_path / "m.safetensors"),
        },
        fb,
    )
    shown = fb.infos + texts
    assert any("epoch 2/2" in m for m in fb.infos)
    assert len(shown) == len(set(shown)), [m for m in shown if shown.count(m) > 1]


def test_loss_output_is_the_kept_epochs_even_when_a_later_epoch_ran(
    fers_plugin, train_scene, tmp_path, monkeypatch
):
    """LOSS is the kept epoch's validation loss: here the second epoch's loss is made worse, so the
    first is kept and LOSS must be its value, not the last epoch's."""
    from fers_engine.nets import stages

    original = stages.Stage.validation_loss
    calls = {"n": 0}

    def worse_second_epoch(self, device):
        calls["n"] += 1
        loss, parts = original(self, device)
        return (loss + 10.0 if calls["n"] == 2 else loss), parts

    monkeypatch.setattr(stages.Stage, "validation_loss", worse_second_epoch)
    out = str(tmp_path / "kept.safetensors")
    res = run(
        "fers:train",
        {
            "INPUTS": [train_scene],
            "RECIPE": "published",
            "STAGES": ["spectral"],
            "EPOCHS": 2,
            "STEPS_PER_EPOCH": 2,
            "SEED": 0,
            "DEVICE": "cpu",
            "OUTPUT": out,
        },
    )
    curve = json.load(open(res["MODEL_CARD"], encoding="utf-8"))["training"]["validation_loss"]["1"]
    assert calls["n"] == 2 and curve[1] == pytest.approx(curve[0] + 10.0, abs=1.0)
    assert res["LOSS"] == pytest.approx(curve[0])
