"""The torch-free forward pass computes what the torch networks compute.

Two levels: in float64 both backends must give the same features and the same final RX scores
(max relative difference 1e-5; the arithmetic is the same function, so they agree far closer),
and through the product's float32 pipeline the numpy path may differ from the torch path by no
more than the torch path differs from itself when only its tiling changes (float32 rounding
amplified by the RX inverse of an ill-conditioned covariance is the floor, measured here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from osgeo import gdal

from fers_engine.detectors.stats import regularised_inverse
from fers_engine.io import open_scene
from fers_engine.metrics import normalise
from fers_engine.nets import enhancer as enhancer_module
from fers_engine.nets.bundled import resolve_model_path
from fers_engine.nets.enhancer import build_networks, load_enhancer
from fers_engine.nets.model_file import load_enhancer_file, torch_tensors
from fers_engine.nets.numpy_forward import box_mean, numpy_networks
from fers_engine.pipeline import DetectOptions, detect

REPO = Path(__file__).resolve().parents[3]
SCENES = ["san-diego-envi-90x90/SDData", "abu-beach-2/abu-beach-2.mat", "hydice-urban/hydice__OT-AD.mat"]


def _rx64(feats: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Global RX in float64 with the product's inverse rule."""
    x = feats[:, valid].astype(np.float64)
    mean = x.mean(axis=1, keepdims=True)
    d = x - mean
    inv, _ = regularised_inverse(d @ d.T / (x.shape[1] - 1))
    out = np.full(valid.shape, np.nan)
    out[valid] = np.einsum("ij,ij->j", inv @ d, d)
    return out


def _normalised_input(path: Path, enh):
    """The scene on the model's band grid, normalised scene-wide, as the pipeline feeds it."""
    with open_scene(path) as scene:
        cube, valid = scene.read_all()
        info = scene.info
    matrix, _ = enh.input_matrix(info, "resample")
    x = np.tensordot(matrix, cube, axes=(1, 0)).astype(np.float32)
    norm = enh.new_normaliser()
    norm.update(x, valid)
    x = norm.apply(x)
    x[:, ~valid] = 0.0
    return x, valid


def _scores(x, spe, spa, valid, enhancer: str, fusion: str) -> np.ndarray:
    if enhancer == "spectral":
        return _rx64(x + spe, valid)
    if fusion == "sum":
        return _rx64(x + spe + spa, valid)
    return normalise(_rx64(x + spe, valid)) * normalise(_rx64(x + spa, valid))


@pytest.fixture(scope="module")
def default_model():
    path = resolve_model_path(None)
    tensors, card = load_enhancer_file(path)
    return path, tensors, card


@pytest.mark.parametrize("name", SCENES)
def test_float64_numpy_and_torch_give_the_same_features_and_rx_scores(shared_data, default_model, name):
    path, tensors, card = default_model
    enh = load_enhancer(str(path), device="cpu")
    x, valid = _normalised_input(shared_data / name, enh)
    x64 = x.astype(np.float64)
    ours = numpy_networks(card.arch, tensors, dtype=np.float64)
    theirs = build_networks(card.arch.as_dict())
    theirs.load_state_dict(torch_tensors(tensors))
    theirs.double().eval()
    with torch.inference_mode():
        xt = torch.from_numpy(x64[None])
        ref = {"spectral": theirs["spectral"](xt)[0].numpy(), "spatial": theirs["spatial"](xt)[0][0].numpy()}
    got = {p: ours[p](x64) for p in ("spectral", "spatial")}
    for p in got:
        scale = np.abs(ref[p]).max()
        assert np.abs(got[p] - ref[p]).max() <= 1e-12 * scale, p  # close feature maps
    for enhancer, fusion in (("spectral", "sum"), ("full", "sum"), ("full", "hadamard")):
        a = _scores(x64, got["spectral"], got["spatial"], valid, enhancer, fusion)
        b = _scores(x64, ref["spectral"], ref["spatial"], valid, enhancer, fusion)
        nonzero = b != 0  # the hadamard product is exactly 0 at each map's minimum
        rel = np.abs(a - b)[nonzero] / np.abs(b[nonzero])
        assert rel.max() <= 1e-5, (enhancer, fusion, rel.max())
        assert np.abs(a[~nonzero]).max(initial=0.0) <= 1e-9


def _detect(path, out, backend, **features_kw):
    """detect() with the full method; ``features_kw`` overrides Enhancer.features' tiling."""
    original = enhancer_module.Enhancer.features

    def features(self, block, parts=("spectral",), **kw):
        return original(self, block, parts, **{**kw, **features_kw})

    enhancer_module.Enhancer.features = features
    try:
        result = detect(
            path, out, DetectOptions(enhancer="full", detector="rx", device="cpu", backend=backend)
        )
    finally:
        enhancer_module.Enhancer.features = original
    ds = gdal.Open(str(out))
    scores = ds.ReadAsArray().astype(np.float64)
    ds = None
    return scores, result


@pytest.mark.parametrize("name", SCENES[:2])
def test_float32_product_path_is_within_the_torch_paths_own_rounding(shared_data, tmp_path, name):
    numpy_scores, result = _detect(shared_data / name, tmp_path / "n.tif", "numpy")
    assert any("(numpy)" in m for m in result.messages)
    torch_scores, _ = _detect(shared_data / name, tmp_path / "t.tif", "torch")
    torch_retiled, _ = _detect(shared_data / name, tmp_path / "t64.tif", "torch", tile=64)

    def rel(a, b):
        return float(np.nanmax(np.abs(a - b) / np.abs(b)))

    floor = rel(torch_retiled, torch_scores)
    assert 0 < floor < 1e-3
    assert rel(numpy_scores, torch_scores) <= 3 * floor, (rel(numpy_scores, torch_scores), floor)
    assert np.array_equal(np.isnan(numpy_scores), np.isnan(torch_scores))


def test_box_mean_counts_only_pixels_inside_the_image():
    x = np.arange(2 * 7 * 9, dtype=np.float32).reshape(2, 7, 9)
    got = box_mean(x, 5)
    ref = torch.nn.functional.avg_pool2d(
        torch.from_numpy(x[None]), 5, stride=1, padding=2, count_include_pad=False
    )[0].numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert box_mean(x, 1) is x


# Runs where torch cannot be imported at all, as in QGIS's own Python.
NO_TORCH = r"""
import sys
sys.modules["torch"] = None
sys.modules["safetensors"] = None
from fers_engine.pipeline import DetectOptions, detect
result = detect(sys.argv[1], sys.argv[2], DetectOptions(enhancer="full", detector="rx"))
print(result.device, "torch" in sys.modules and sys.modules["torch"] is not None)
"""


def test_detect_full_method_runs_with_torch_unimportable(shared_data, tmp_path):
    src = shared_data / "san-diego-envi-90x90" / "SDData"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(src), str(tmp_path / "child.tif")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["cpu", "False"]
    here, _ = _detect(src, tmp_path / "here.tif", "numpy")
    ds = gdal.Open(str(tmp_path / "child.tif"))
    child = ds.ReadAsArray()
    ds = None
    # the same code on the same data; only BLAS's thread count may differ between the processes
    # (earlier tests of this session may have limited it), which reorders float32 sums
    here = here.astype(np.float32)
    assert np.array_equal(np.isnan(child), np.isnan(here))
    ok = np.isfinite(here)
    assert np.abs(child[ok] - here[ok]).max() <= 1e-4 * np.abs(here[ok]).max()


@pytest.mark.parametrize("rows, cols, dilation", [(9, 7, 1), (3, 2, 4), (1, 5, 2), (6, 6, 8)])
def test_folded_conv_equals_torch_replicate_conv_even_when_the_dilation_exceeds_the_image(
    rows, cols, dilation
):
    """Conv 3x3 (replicate padding, dilated) + eval BatchNorm + ReLU, BN folded, on images smaller
    than the dilation (a chunk of a few rows in a thin strip)."""
    from fers_engine.nets.numpy_forward import FoldedConv3x3

    rng = np.random.default_rng(rows * 100 + cols)
    x = rng.normal(size=(4, rows, cols))
    weight = rng.normal(size=(5, 4, 3, 3))
    gamma, beta = rng.uniform(0.5, 2, 5), rng.normal(size=5)
    mean, var = rng.normal(size=5), rng.uniform(0.5, 2, 5)
    ours = FoldedConv3x3(weight, gamma, beta, mean, var, dilation, dtype=np.float64)(x)
    conv = torch.nn.Conv2d(4, 5, 3, padding=dilation, dilation=dilation, bias=False, padding_mode="replicate")
    bn = torch.nn.BatchNorm2d(5).double().eval()
    with torch.no_grad():
        conv = conv.double()
        conv.weight.copy_(torch.from_numpy(weight))
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
        bn.running_mean.copy_(torch.from_numpy(mean))
        bn.running_var.copy_(torch.from_numpy(var))
        ref = torch.relu(bn(conv(torch.from_numpy(x[None]))))[0].numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rows, cols", [(11, 6), (3, 2), (1, 40), (40, 1)])
def test_box_means_of_several_kernels_at_once(rows, cols):
    """Every kernel (1, 3, 5, 9, 17, 33), also wider than the image, against torch's pooling."""
    from fers_engine.nets.numpy_forward import box_means_into

    kernels = (1, 3, 5, 9, 17, 33)
    x = np.random.default_rng(3).normal(size=(3, rows, cols))
    out = np.empty((3 * len(kernels), rows, cols))
    box_means_into(x, kernels, out)
    for i, k in enumerate(kernels):
        ref = torch.nn.functional.avg_pool2d(
            torch.from_numpy(x[None]), k, stride=1, padding=k // 2, count_include_pad=False
        )[0].numpy()
        np.testing.assert_allclose(out[3 * i : 3 * i + 3], ref, rtol=1e-12, atol=1e-12)
