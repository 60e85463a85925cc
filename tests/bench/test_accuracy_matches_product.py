"""The accuracy benchmark scores in memory; `fers detect` streams from the file. Same numbers?"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "scene,crd", [("abu-airport-2", False), ("hydice-urban (OT-AD version)", False), ("abu-airport-2", True)]
)
def test_benchmark_scores_equal_fers_detect_scores(shared_data, tmp_path, scene, crd):
    """RX with both fusions; CRD (the benchmark's windows, the default lambda) on the full and
    the spectral enhanced cube; CRD+RX (the default detector) on the full one."""
    pytest.importorskip("torch")
    sys.path.insert(0, str(REPO / "bench"))
    import accuracy
    from folds import SCENES, fold_of

    from fers_engine.io import open_scene
    from fers_engine.metrics import roc_auc
    from fers_engine.nets.enhancer import load_enhancer
    from fers_engine.pipeline import DetectOptions, detect

    rel, _ = SCENES[scene]
    path = shared_data / rel
    model = accuracy.fold_model_path(accuracy.MODELS, 4, fold_of(scene, 4))
    if not model.is_file():
        pytest.skip(f"no fold model {model.relative_to(REPO)} (run models/retrain.py)")
    raw = accuracy.read(path)
    bench = accuracy.enhanced_scores(
        load_enhancer(str(model), device="cpu"), raw.cube, raw.valid, with_crd=crd
    )
    runs = [("rx", "full", "sum", "full"), ("rx", "full", "hadamard", "hadamard")]
    if crd:
        runs = [
            ("crd", "full", "sum", "full+CRD"),
            ("crd", "spectral", "sum", "spectral+CRD"),
            ("crd+rx", "full", "sum", "full+CRD+RX"),
        ]
    for detector, enhancer, fusion, column in runs:
        out = tmp_path / f"{detector}-{enhancer}-{fusion}.tif"
        detect(
            path,
            out,
            DetectOptions(
                detector=detector,
                inner=accuracy.CRD_WINDOWS[0],
                outer=accuracy.CRD_WINDOWS[1],
                enhancer=enhancer,
                model=str(model),
                fusion=fusion,
                device="cpu",
                block_rows=17,
            ),
        )
        with open_scene(out) as s:
            scores, scored = s.read_all()
        product = np.where(scored, scores[0], np.nan)
        ok = np.isfinite(product)
        rel_err = np.abs(product[ok] - bench[column][ok]) / np.abs(bench[column][ok]).max()
        assert (ok == np.isfinite(bench[column])).all(), column
        assert rel_err.max() < 1e-4, (column, rel_err.max())
        assert abs(roc_auc(product, raw.truth) - roc_auc(bench[column], raw.truth)) < 1e-4
