"""A recipe's candidates: the best by validation AUC is written, the others and their files go.

The candidates here are not trained: ``_train_candidate`` is replaced by a fake that writes a
tiny untrained model whose card claims a given validation AUC, so the test checks only the
choosing and the bookkeeping, in a second.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_training import TINY, _scenes


@pytest.fixture
def fake_candidates(monkeypatch):
    """Replace candidate training by writing a random tiny model with a chosen kept AUC."""
    import torch

    from fers_engine.nets import trainer
    from fers_engine.nets.checkpoint import checkpoint_paths
    from fers_engine.nets.model_file import save_model
    from fers_engine.nets.networks import Networks, deployed_arch

    aucs = {}

    def fake(data, rec, cfg, run_stages, seed, out_path, dev, resume, reporter, name):
        torch.manual_seed(seed)
        nets = Networks(cfg)
        auc = aucs[seed]
        card = {
            "format": "fers-enhancer",
            "format_version": 1,
            "name": name,
            "arch": deployed_arch(cfg, True),
            "parts": ["spectral", "spatial"],
            "wavelengths": None,
            "normalisation": {},
            "halo": nets.spatial.halo,
            "training": {
                "recipe": rec.name,
                "stages": ["sep"],
                "epochs": {"sep": 1},
                "best_epoch": {"sep": 1},
                "validation_auc": {} if auc is None else {"sep": [0.5, auc]},
                "validation_loss": {"sep": [0.1]},
                "seed": seed,
                "device": "cpu",
                "time_s": 1.0,
            },
        }
        save_model(out_path, nets.deployed_tensors(True), card)
        for p in checkpoint_paths(out_path):  # what an interrupted real candidate would leave
            p.write_text("x")
        return card

    monkeypatch.setattr(trainer, "_train_candidate", fake)
    return aucs


def test_the_best_candidate_is_written_and_the_rest_removed(tmp_path, fake_candidates):
    from fers_engine.nets.model_file import load_model
    from fers_engine.nets.trainer import train

    fake_candidates.update({0: 0.91, 1: 0.95})
    paths = _scenes(tmp_path)
    res = train(paths, tmp_path / "best.safetensors", config=TINY, name="best")
    assert res.chosen == "s1" and res.validation_auc == pytest.approx(0.95)
    assert [c["tag"] for c in res.candidates] == ["s0", "s1"]
    card = json.loads(res.card.read_text())
    assert card["training"]["chosen"] == "s1" and card["name"] == "best"
    assert [c["validation_auc"] for c in card["training"]["candidates"]] == [0.91, 0.95]
    assert sorted(p.name for p in tmp_path.glob("best*")) == ["best.json", "best.safetensors"]
    import torch

    from fers_engine.nets.networks import Networks
    from fers_engine.nets.recipes import get_recipe

    torch.manual_seed(1)
    expected = Networks(get_recipe(None).full_config(TINY)).deployed_tensors(True)
    written, _ = load_model(res.model)
    assert all(np.array_equal(written[k], expected[k].numpy()) for k in expected)


def test_a_nan_candidate_is_never_chosen(tmp_path, fake_candidates):
    from fers_engine.nets.trainer import train

    fake_candidates.update({0: 0.90, 1: float("nan")})
    res = train(_scenes(tmp_path), tmp_path / "m.safetensors", config=TINY)
    assert res.chosen == "s0"


def test_without_labels_the_first_candidate_is_kept(tmp_path, fake_candidates):
    from fers_engine.nets.trainer import train

    fake_candidates.update({0: None, 1: None})
    logs = []
    from fers_engine.progress import Reporter

    res = train(
        _scenes(tmp_path), tmp_path / "m.safetensors", config=TINY, reporter=Reporter(on_info=logs.append)
    )
    assert res.chosen == "s0" and res.validation_auc is None
    assert any("the first candidate is kept" in m for m in logs)
