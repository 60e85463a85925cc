"""fers:train (tiny settings) and the enhanced detect path with the trained model file."""
from __future__ import annotations

import json
import math
import os
import re

import pytest

from qgis_helpers import RecordingFeedback, raster_geometry, synthetic_cube, write_tif

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
    """One tiny training run: its results and the feedback that recorded its log."""
    scene = train_scene
    out = str(tmp_path_factory.mktemp("model") / "tiny.safetensors")
    feedback = RecordingFeedback.make()
    res = run("fers:train", {"INPUTS": [scene], "STAGES": ["spectral"], "EPOCHS": 2, "STEPS_PER_EPOCH": 2,
                             "DEVICE": "cpu", "OUTPUT": out}, feedback)
    return res, feedback


@pytest.fixture(scope="module")
def trained_model(training_run):
    return training_run[0]


def test_train_writes_model_and_card(training_run):
    trained_model, feedback = training_run
    out = trained_model["OUTPUT"]
    assert os.path.isfile(out) and out.endswith(".safetensors")
    card = json.load(open(trained_model["MODEL_CARD"], encoding="utf-8"))
    assert card["training"]["stages"] == ["1"]
    assert trained_model["DEVICE"] == "cpu"
    # LOSS is the kept epoch's validation loss: the lowest of the epoch losses the engine logged
    logged = [float(m) for m in re.findall(r"stage 1 epoch \d+/2: train \S+ val (\S+)", feedback.log)]
    assert len(logged) == 2, feedback.log
    assert trained_model["LOSS"] == pytest.approx(min(logged), abs=1e-4)
    assert math.isfinite(trained_model["LOSS"]) and trained_model["LOSS"] > 0


def test_training_log_lines_appear_once(training_run):
    """The dialog's Log panel shows each engine line once (it also prints every progress text)."""
    _, feedback = training_run
    lines = [line for line in feedback.dialog_log if line.strip()]
    repeated = sorted({line for line in lines if lines.count(line) > 1})
    assert not repeated, repeated
    assert any(line.startswith("stage 1 epoch 2/2") for line in lines)


def test_detect_with_trained_model_file(trained_model, train_scene, tmp_path, recording_feedback):
    scene = train_scene
    fb = recording_feedback()
    res = run("fers:detect", {"INPUT": scene, "ENHANCER": "spectral", "MODEL_FILE": trained_model["OUTPUT"],
                              "DEVICE": "cpu", "OUTPUT": str(tmp_path / "enh.tif")}, fb)
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
        run("fers:train", {"INPUTS": [scene], "STAGES": ["spectral"], "EPOCHS": 2, "STEPS_PER_EPOCH": 2,
                           "DEVICE": "cpu", "OUTPUT": str(out)}, fb)
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
