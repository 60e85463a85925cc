"""The accuracy benchmark scores in memory; `fers detect` streams from the file. Same numbers?"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from osgeo import gdal

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scene", ["abu-airport-2", "hydice-urban (OT-AD version)"])
def test_benchmark_auc_equals_fers_detect_auc(shared_data, tmp_path, scene):
    pytest.importorskip("torch")
    sys.path.insert(0, str(REPO / "bench"))
    import accuracy
    from folds import SCENES, fold_of
    from fers_engine.io import read_ground_truth
    from fers_engine.metrics import roc_auc
    from fers_engine.nets.enhancer import load_enhancer
    from fers_engine.pipeline import DetectOptions, detect

    rel, _ = SCENES[scene]
    path = shared_data / rel
    model = accuracy.fold_model_path(REPO / "models" / "folds", 4, fold_of(scene, 4))
    cube, valid, _, truth = accuracy.load_scene(path)
    bench = accuracy.enhanced_scores(load_enhancer(str(model), device="cpu"), cube, valid)
    for fusion, column in (("sum", "FERS sum"), ("hadamard", "FERS hadamard")):
        out = tmp_path / f"{fusion}.tif"
        detect(path, out, DetectOptions(enhancer="full", model=str(model), fusion=fusion, device="cpu"))
        ds = gdal.Open(str(out))  # kept referenced while its band is read
        product = roc_auc(ds.GetRasterBand(1).ReadAsArray(), read_ground_truth(path))
        assert abs(product - roc_auc(bench[column], truth)) < 0.002, (fusion, product)
