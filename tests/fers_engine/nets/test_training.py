"""Tiny end-to-end training runs on synthetic scenes: recipes, resume, cancellation, selection,
labels, band grids and the files a run leaves behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fers_engine.errors import Cancelled, InputError
from fers_engine.progress import Reporter

TINY = {
    "bands": 10,
    "patch": 16,
    "batch": 4,
    "steps_per_epoch": 3,
    "epochs": {"0": 1, "1": 2, "2": 1, "sep": 2},
    "spectral": {"width": 6, "hidden": 8, "dilations": [1, 1, 1], "out_act": "none"},
    "spatial": {"width": 4, "rgb_hidden": 6, "dilations": [1, 2], "pools": [1, 5], "hidden": 8},
    "frn": {"width": 6, "blocks": 1},
    "separation": {"crops": 3},
}


def _scenes(tmp_path, n=2, labelled=True):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        cube = (rng.normal(size=(40, 36, 14)) * 10 + 500).astype(np.float32)
        gt = np.zeros((40, 36), np.uint8)
        gt[5:7, 5:7] = 1
        cube[gt == 1] += 300
        p = tmp_path / f"scene{i}.mat"
        savemat(str(p), {"data": cube, "map": gt} if labelled else {"data": cube})
        paths.append(str(p))
    return paths


def _weights(path):
    from fers_engine.nets.model_file import load_model

    return load_model(path)[0]


@pytest.mark.parametrize("recipe", ["separation", "published"])
def test_train_resume_after_cancel_equals_an_uninterrupted_run(tmp_path, recipe):
    from fers_engine.nets.checkpoint import checkpoint_paths
    from fers_engine.nets.enhancer import load_enhancer
    from fers_engine.nets.trainer import train

    paths = _scenes(tmp_path)
    out = tmp_path / "m.safetensors"
    calls = {"n": 0}

    def stop_after():
        calls["n"] += 1
        return calls["n"] > 7  # 4 checks reading and preparing, 3 steps: cancel in epoch 2

    with pytest.raises(Cancelled):
        train(paths, out, recipe=recipe, seed=3, config=TINY, reporter=Reporter(should_stop=stop_after))
    ck_w, ck_j = checkpoint_paths(out)
    assert not out.exists() and ck_w.exists() and ck_j.exists()
    assert sum(json.loads(ck_j.read_text())["epoch"].values()) >= 1
    logs = []
    res = train(
        paths, out, recipe=recipe, seed=3, config=TINY, resume=True, reporter=Reporter(on_info=logs.append)
    )
    assert any("resuming" in m for m in logs)
    assert res.model == out and res.card.is_file() and res.recipe == recipe
    assert list(res.stages) == (["sep"] if recipe == "separation" else ["0", "1", "2"])
    assert not ck_w.exists() and not ck_j.exists()  # a finished run leaves no checkpoint
    card = json.loads(res.card.read_text())
    assert (
        card["training"]["files"][0]["sha256"]
        and card["training"]["files"][0]["truth"] == "stored in the file"
    )
    out2 = tmp_path / "m2.safetensors"
    train(paths, out2, recipe=recipe, seed=3, config=TINY)
    a, b = _weights(out), _weights(out2)
    assert set(a) == set(b)
    for k in a:
        assert np.allclose(a[k], b[k], atol=1e-5), k
    enh = load_enhancer(str(out), device="cpu")
    x = np.random.default_rng(1).normal(size=(10, 20, 24)).astype(np.float32) * 0.05
    f = enh.features(x, parts=enh.parts)
    assert f["spectral"].shape == (10, 20, 24) and all(np.isfinite(v).all() for v in f.values())


def test_a_finished_run_leaves_only_the_model_unless_checkpoints_are_kept(tmp_path):
    from fers_engine.nets.trainer import train

    paths = _scenes(tmp_path)
    train(paths, tmp_path / "a.safetensors", config=TINY)  # two candidates (seeds 0 and 1)
    assert sorted(p.name for p in tmp_path.glob("a*")) == ["a.json", "a.safetensors"]
    res = train(paths, tmp_path / "b.safetensors", config=TINY, keep_checkpoints=True)
    assert res.kept_files and all(p.exists() for p in res.kept_files)
    assert any(p.name.startswith("b.cand-s1") for p in res.kept_files)


def test_detection_selection_keeps_the_best_auc_epoch_and_the_model_scores_it(tmp_path):
    """Epoch 0 is scored, the kept epoch is the argmax, and the written weights reproduce it."""
    from fers_engine.nets.data import model_grid, prepare_scene, read_scene
    from fers_engine.nets.enhancer import load_enhancer
    from fers_engine.nets.trainer import selection_summary, train
    from fers_engine.nets.validation import DetectionValidator

    paths = _scenes(tmp_path)
    logs = []
    res = train(
        paths,
        tmp_path / "d.safetensors",
        seed=1,
        config={**TINY, "epochs": {"sep": 3}},
        reporter=Reporter(on_info=logs.append),
    )
    st = res.stages["sep"]
    assert st.criterion == "auc" and len(st.validation_auc) == 3 + 1
    assert st.kept_epoch == int(np.argmax(st.validation_auc))
    assert res.validation_auc == pytest.approx(max(st.validation_auc))
    assert any("epoch 0 (before training)" in m for m in logs)
    tr = json.loads(res.card.read_text())["training"]
    assert tr["validation_auc_files"] == ["scene0.mat", "scene1.mat"]
    assert selection_summary(tr)[0].startswith("stage sep: AUC ")
    enh = load_enhancer(str(res.model), device="cpu", backend="torch")  # the validator runs torch modules
    raws = [read_scene(p) for p in paths]
    grid = model_grid(raws, TINY["bands"])
    scenes = [prepare_scene(r, grid, patch=TINY["patch"]).labelled for r in raws]
    again = DetectionValidator(scenes).score(enh.nets["spectral"], enh.nets["spatial"], enh.halo)
    assert again["mean"] == pytest.approx(st.validation_auc[st.kept_epoch], abs=1e-6)


def test_loss_selection_when_no_file_is_labelled(tmp_path):
    from fers_engine.nets.trainer import train

    paths = _scenes(tmp_path, n=1, labelled=False)
    logs = []
    res = train(
        paths,
        tmp_path / "b.safetensors",
        recipe="published",
        stages=("1",),
        seed=0,
        config=TINY,
        reporter=Reporter(on_info=logs.append),
    )
    assert res.stages["1"].criterion == "loss" and res.stages["1"].kept_epoch >= 1
    assert res.validation_auc is None
    assert any("none found with the inputs" in m for m in logs)


def test_truth_none_uses_no_label(tmp_path):
    from fers_engine.nets.trainer import train

    paths = _scenes(tmp_path)
    logs = []
    res = train(
        paths,
        tmp_path / "n.safetensors",
        truth="none",
        seed=0,
        config=TINY,
        reporter=Reporter(on_info=logs.append),
    )
    card = json.loads(res.card.read_text())
    assert res.validation_auc is None and all(f["truth"] is None for f in card["training"]["files"])
    assert any("not used (truth=none)" in m for m in logs)


def test_truth_found_beside_an_envi_scene_is_logged_and_its_wavelengths_make_the_grid(tmp_path):
    """An ENVI scene with wavelengths and a <stem>Gt.bmp beside it: the model gets a wavelength
    grid, and the log names the truth file it used."""
    from osgeo import gdal

    from fers_engine.nets.trainer import train

    rng = np.random.default_rng(4)
    bands, rows, cols = 14, 40, 36
    path = tmp_path / "scene"
    ds = gdal.GetDriverByName("ENVI").Create(str(path), cols, rows, bands, gdal.GDT_Float32)
    for b in range(bands):
        ds.GetRasterBand(b + 1).WriteArray((rng.normal(size=(rows, cols)) * 10 + 500).astype(np.float32))
    ds = None
    hdr = path.with_suffix(".hdr")
    text = hdr.read_text()
    wl = np.linspace(450, 900, bands)
    hdr.write_text(
        text + "wavelength units = Nanometers\nwavelength = {" + ", ".join(f"{w:.1f}" for w in wl) + "}\n"
    )
    gt = np.zeros((rows, cols), np.uint8)
    gt[4:6, 4:6] = 1
    mem = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Byte)
    mem.GetRasterBand(1).WriteArray(gt)
    gdal.GetDriverByName("BMP").CreateCopy(str(tmp_path / "sceneGt.bmp"), mem)
    logs = []
    res = train(
        [str(path)], tmp_path / "w.safetensors", seed=0, config=TINY, reporter=Reporter(on_info=logs.append)
    )
    card = json.loads(res.card.read_text())
    assert card["wavelengths"] is not None and len(card["wavelengths"]) == TINY["bands"]
    assert card["wavelengths"][0] == pytest.approx(450.0) and card["wavelengths"][-1] == pytest.approx(900.0)
    assert any("by wavelength" in m for m in logs)
    assert not any("no input and target wavelengths" in m for m in logs)
    assert any("sceneGt.bmp" in m for m in logs) and card["training"]["files"][0]["truth"] == "sceneGt.bmp"


def test_an_unreadable_truth_file_is_an_error_naming_it(tmp_path):
    from scipy.io import savemat

    from fers_engine.nets.trainer import train

    p = tmp_path / "bg.mat"
    savemat(str(p), {"data": np.random.default_rng(0).normal(size=(40, 36, 14)).astype(np.float32)})
    (tmp_path / "bgGt.bmp").write_bytes(b"BM this is not a bitmap")
    with pytest.raises(InputError, match="bgGt.bmp"):
        train([str(p)], tmp_path / "x.safetensors", seed=0, config=TINY)
    assert not (tmp_path / "x.safetensors").exists()


def test_bad_arguments_fail_before_any_work(tmp_path):
    from fers_engine.nets.trainer import train

    paths = _scenes(tmp_path, n=1)
    for kwargs, match in (
        ({"recipe": "nope"}, "unknown training recipe"),
        ({"stages": ("0",)}, "has the stages"),
        ({"truth": "maybe"}, "ground-truth policy"),
        ({"exclude": ["a", "b"]}, "exclusion masks"),
        ({"epochs": 0}, "at least 1"),
    ):
        with pytest.raises(InputError, match=match):
            train(paths, tmp_path / "x.safetensors", config=TINY, **kwargs)
    with pytest.raises(InputError, match=".safetensors"):
        train(paths, tmp_path / "x.bin", config=TINY)
    assert list(tmp_path.glob("x*")) == []


def test_a_diverging_stage_stops_and_keeps_its_best_epoch(tmp_path, monkeypatch):
    """After the first step the network's weights turn NaN (a divergence): the trainer must stop
    the stage with a warning, keep epoch 0 and write finite weights."""
    import torch

    from fers_engine.nets import stages
    from fers_engine.nets.trainer import train

    original = stages.SeparationStage.train_loss
    calls = {"n": 0}

    def poisoned(self, rng, device):
        calls["n"] += 1
        if calls["n"] == 2:
            with torch.no_grad():
                self.nets.fen.proj.conv2.weight.fill_(float("nan"))
        return original(self, rng, device)

    monkeypatch.setattr(stages.SeparationStage, "train_loss", poisoned)
    warnings = []
    res = train(
        _scenes(tmp_path),
        tmp_path / "nan.safetensors",
        seed=0,
        config=TINY,
        reporter=Reporter(on_warning=warnings.append),
    )
    assert res.stages["sep"].kept_epoch == 0 and len(res.stages["sep"].validation_auc) == 1
    assert any("diverged in epoch 1" in w for w in warnings)
    assert all(np.isfinite(t).all() for t in _weights(res.model).values())


def test_an_epoch_whose_features_score_nan_is_never_kept(tmp_path, monkeypatch):
    """The validator scores NaN for non-finite features; the trainer must never keep such an
    epoch, even when it is the last one (every comparison with NaN is False)."""
    from fers_engine.nets import validation
    from fers_engine.nets.trainer import train

    original = validation.DetectionValidator.score
    calls = {"n": 0}

    def nan_after_start(self, *args, **kwargs):
        calls["n"] += 1
        out = original(self, *args, **kwargs)
        return out if calls["n"] == 1 else {**out, "mean": float("nan")}

    monkeypatch.setattr(validation.DetectionValidator, "score", nan_after_start)
    res = train(_scenes(tmp_path), tmp_path / "v.safetensors", seed=0, config=TINY)
    aucs = res.stages["sep"].validation_auc
    assert np.isfinite(aucs[0]) and len(aucs) == 3 and all(np.isnan(a) for a in aucs[1:])
    assert res.stages["sep"].kept_epoch == 0


def test_the_validator_scores_nan_for_non_finite_features():
    import torch

    from fers_engine.nets.validation import DetectionValidator, LabelledScene

    rng = np.random.default_rng(0)
    cube = rng.normal(size=(4, 12, 10)).astype(np.float32)
    truth = np.zeros((12, 10), bool)
    truth[3, 3] = True
    cube[:, 3, 3] += 5

    class Scaled(torch.nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = torch.nn.Parameter(torch.tensor(factor))

        def forward(self, x):
            return x * self.factor

    v = DetectionValidator([LabelledScene("s", cube, np.ones((12, 10), bool), truth)])
    assert v.score(Scaled(0.5), halo=0)["mean"] == pytest.approx(1.0)
    assert np.isnan(v.score(Scaled(float("nan")), halo=0)["mean"])


def test_stage_objects_train_what_they_say(tmp_path):
    """The published stages keep their trunks frozen; the separation stage trains every deployed
    weight; each stage's loss is an nn.Module."""
    import torch

    from fers_engine.nets.data import PatchSampler, model_grid, prepare_scene, read_scene
    from fers_engine.nets.networks import Networks
    from fers_engine.nets.recipes import get_recipe
    from fers_engine.nets.stages import STAGES

    cfg = get_recipe("published").full_config(TINY)
    raws = [read_scene(p) for p in _scenes(tmp_path)]
    grid = model_grid(raws, TINY["bands"])
    sampler = PatchSampler([prepare_scene(r, grid, patch=16) for r in raws], 16)
    nets = Networks(cfg, {"ae_spec", "ae_spat", "stage1", "frn"})
    trunk = {id(p) for p in nets.fen.trunk.parameters()} | {id(p) for p in nets.spatial.trunk.parameters()}
    for name in ("1", "2"):
        stage = STAGES[name](nets, cfg, sampler, 0)
        assert isinstance(stage.loss, torch.nn.Module)
        assert not trunk & {id(p) for p in stage.parameters()}
    sep = STAGES["sep"](nets, cfg, sampler, 0)
    sep.begin([])
    assert trunk <= {id(p) for p in sep.parameters()}
    assert isinstance(sep.loss, torch.nn.Module)
