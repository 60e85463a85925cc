"""Training several recipes and keeping the one that detects best on the training labels."""
from __future__ import annotations

import json

import numpy as np
import pytest

from test_training import TINY, _scenes


def _candidates():
    return [{"tag": "pretrained-s0", "seed": 0, "config": dict(TINY)},
            {"tag": "random-s1", "seed": 1, "config": {**TINY, "random_trunk": True}}]


def test_the_best_candidate_by_validation_auc_is_written(tmp_path):
    from fers_engine.nets.candidates import candidate_path, kept_auc, train_best
    from fers_engine.nets.model_file import load_model
    paths = _scenes(tmp_path)
    out = tmp_path / "best.safetensors"
    train_best(paths, out, _candidates(), device="cpu", name="best", keep_candidates=True)
    card = json.loads(out.with_suffix(".json").read_text())
    tr = card["training"]
    aucs = {c["tag"]: c["validation_auc"] for c in tr["candidates"]}
    assert set(aucs) == {"pretrained-s0", "random-s1"} and all(0 <= v <= 1 for v in aucs.values())
    assert tr["chosen"] == max(aucs, key=aucs.get) and card["name"] == "best"
    assert kept_auc(tr) == pytest.approx(aucs[tr["chosen"]])
    written, _ = load_model(out)
    chosen, _ = load_model(candidate_path(out, tr["chosen"]))
    assert set(written) == set(chosen) and all(np.array_equal(written[k], chosen[k]) for k in written)


def test_candidate_files_are_removed_by_default(tmp_path):
    from fers_engine.nets.candidates import train_best
    paths = _scenes(tmp_path)
    out = tmp_path / "m.safetensors"
    train_best(paths, out, _candidates()[:1], device="cpu")
    assert sorted(p.name for p in tmp_path.glob("m*")) == ["m.json", "m.safetensors"]
