"""A tiny end-to-end training run on synthetic scenes: all stages, resume, cancellation."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fers_engine.errors import Cancelled
from fers_engine.progress import Reporter

TINY = {
    "bands": 10, "patch": 16, "batch": 4, "steps_per_epoch": 3,
    "epochs": {"0": 1, "1": 2, "2": 1},
    "spectral": {"width": 6, "hidden": 8, "dilations": [1, 1, 1], "out_act": "none"},
    "spatial": {"width": 4, "rgb_hidden": 6, "dilations": [1, 2], "pools": [1, 5], "hidden": 8},
    "frn": {"width": 6, "blocks": 1},
}


def _scenes(tmp_path):
    from scipy.io import savemat
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        cube = (rng.normal(size=(40, 36, 14)) * 10 + 500).astype(np.float32)
        gt = np.zeros((40, 36), np.uint8)
        gt[5:7, 5:7] = 1
        cube[gt == 1] += 300
        p = tmp_path / f"scene{i}.mat"
        savemat(str(p), {"data": cube, "map": gt})
        paths.append(str(p))
    return paths


def test_train_end_to_end_resume_and_cancel(tmp_path):
    from fers_engine.nets.enhancer import load_enhancer
    from fers_engine.nets.trainer import train
    paths = _scenes(tmp_path)
    out = tmp_path / "m.safetensors"
    ck = tmp_path / "m.ckpt.json"
    calls = {"n": 0}

    def stop_after():
        calls["n"] += 1
        return calls["n"] > 5  # cancel during stage 1, after stage 0's checkpoint

    with pytest.raises(Cancelled):
        train(paths, out_path=out, config=TINY, seed=3, reporter=Reporter(should_stop=stop_after))
    assert not out.exists() and ck.exists()
    state = json.loads(ck.read_text())
    assert "0" in state["done"]
    logs = []
    p = train(paths, out_path=out, config=TINY, seed=3, resume=True, reporter=Reporter(log=logs.append))
    assert any("resuming" in m for m in logs)
    card = json.loads(p.with_suffix(".json").read_text())
    assert card["training"]["stages"] == ["0", "1", "2"]
    assert len(card["training"]["validation_loss"]["1"]) == 2
    assert card["training"]["files"][0]["sha256"] and card["code_version"]
    # an uninterrupted run with the same seed gives the same weights (resume is exact)
    out2 = tmp_path / "m2.safetensors"
    train(paths, out_path=out2, config=TINY, seed=3)
    from fers_engine.nets.model_file import load_model
    a, _ = load_model(out)
    b, _ = load_model(out2)
    assert set(a) == set(b)
    for k in a:
        assert np.allclose(a[k], b[k], atol=1e-5), k
    enh = load_enhancer(str(out), device="cpu")
    x = np.random.default_rng(1).normal(size=(10, 20, 24)).astype(np.float32) * 0.05
    f = enh.features(x, parts=("spectral", "spatial"))
    assert f["spectral"].shape == (10, 20, 24) and np.isfinite(f["spatial"]).all()


def test_detection_selection_keeps_the_best_auc_epoch(tmp_path):
    """Stages 1-2 are scored on the training files' own labels from epoch 0 on; the kept epoch
    is the best one, and the written weights score exactly that epoch's AUC."""
    from fers_engine.nets.enhancer import load_enhancer
    from fers_engine.nets.trainer import selection_summary, train
    from fers_engine.nets.validation import DetectionValidator
    from fers_engine.nets.data import prepare_scene
    paths = _scenes(tmp_path)
    logs = []
    p = train(paths, out_path=tmp_path / "d.safetensors", config=TINY, seed=1,
              reporter=Reporter(log=logs.append))
    tr = json.loads(p.with_suffix(".json").read_text())["training"]
    assert tr["validation_auc_files"] == ["scene0.mat", "scene1.mat"]
    for stage in ("1", "2"):
        aucs = tr["validation_auc"][stage]
        assert len(aucs) == TINY["epochs"][stage] + 1  # epoch 0 included
        assert tr["best_epoch"][stage] == int(np.argmax(aucs))
    assert "0" not in tr["validation_auc"]  # stage 0 keeps its loss criterion
    assert any("epoch 0 (before training)" in m for m in logs)
    assert selection_summary(tr)[1].startswith("stage 1: AUC ")
    # the written model reproduces the kept epoch's stage-2 AUC
    enh = load_enhancer(str(p), device="cpu", backend="torch")  # the validator runs torch modules
    scenes = [prepare_scene(q, TINY["bands"], patch=TINY["patch"], seed=1).labelled for q in paths]
    again = DetectionValidator(scenes).score("2", enh.nets["spectral"], enh.nets["spatial"])
    assert again["mean"] == pytest.approx(tr["validation_auc"]["2"][tr["best_epoch"]["2"]], abs=1e-6)


def test_loss_selection_when_no_file_is_labelled(tmp_path):
    from scipy.io import savemat
    from fers_engine.nets.trainer import train
    rng = np.random.default_rng(2)
    path = tmp_path / "bg.mat"
    savemat(str(path), {"data": (rng.normal(size=(40, 36, 14)) * 10 + 500).astype(np.float32)})
    logs = []
    p = train([str(path)], out_path=tmp_path / "b.safetensors", config=TINY, stages=("1",),
              reporter=Reporter(log=logs.append))
    tr = json.loads(p.with_suffix(".json").read_text())["training"]
    assert tr["validation_auc"] == {} and tr["best_epoch"]["1"] >= 1
    assert any("no training file has ground truth" in m for m in logs)


def test_a_diverged_network_scores_nan_and_is_never_kept():
    import torch
    from fers_engine.nets.validation import DetectionValidator, LabelledScene
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(4, 12, 10)).astype(np.float32)
    truth = np.zeros((12, 10), bool)
    truth[3, 3] = True
    cube[:, 3, 3] += 5
    scene = LabelledScene("s", cube, np.ones((12, 10), bool), truth)

    class Scaled(torch.nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = torch.nn.Parameter(torch.tensor(factor))

        def forward(self, x):
            return x * self.factor

    v = DetectionValidator([scene])
    assert v.score("1", Scaled(0.5))["mean"] == pytest.approx(1.0)
    diverged = v.score("1", Scaled(float("nan")))["mean"]
    assert np.isnan(diverged) and not diverged > 0.5
