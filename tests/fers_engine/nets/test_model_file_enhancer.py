from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fers_engine.errors import ModelError
from fers_engine.nets.enhancer import load_enhancer
from fers_engine.nets.model_file import load_model, save_model
from fers_engine.progress import Reporter


class _Info:
    def __init__(self, count, wavelengths=None):
        self.count = count
        self.wavelengths = wavelengths


def test_round_trip(tiny_model):
    path, card = tiny_model
    tensors, card2 = load_model(path)
    assert card2 == card and all(isinstance(v, np.ndarray) for v in tensors.values())
    assert json.loads(path.with_suffix(".json").read_text()) == card
    enh = load_enhancer(str(path), device="cpu")
    assert enh.backend == "numpy", "the CPU runs the numpy forward pass even with torch installed"
    assert enh.bands == 12 and enh.wavelengths is None and enh.device == "cpu"
    assert enh.halo == max(enh.nets["spectral"].halo, enh.nets["spatial"].halo) > 0
    on_torch = load_enhancer(str(path), device="cpu", backend="torch")
    assert on_torch.halo == max(on_torch.nets["spectral"].halo, on_torch.nets["spatial"].halo) == enh.halo
    sd = on_torch.nets.state_dict()
    for k, v in tensors.items():
        assert torch.equal(sd[k].cpu(), torch.from_numpy(v)), k


def test_corrupt_files_raise_model_error(tiny_model, tmp_path):
    path, card = tiny_model
    data = path.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "garbage": b"\x00" * 7 + b"not a model at all" * 10,
        "empty": b"",
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(blob)
        with pytest.raises(ModelError) as e:
            load_enhancer(str(p), device="cpu")
        assert p.name in str(e.value)
    with pytest.raises(ModelError, match="not found"):
        load_enhancer(str(tmp_path / "missing.safetensors"))
    with pytest.raises(ModelError, match="no bundled model"):
        load_enhancer("no-such-model-name")
    # a valid safetensors file without a card
    from fers_engine.nets.safetensors_file import encode

    p = tmp_path / "nocard.safetensors"
    p.write_bytes(encode({"a": np.zeros(2, np.float32)}))
    with pytest.raises(ModelError, match="no FERS model card"):
        load_enhancer(str(p))
    # architecture mismatch: the card says 13 bands, the weights have 12
    tensors, _ = load_model(path)
    bad = json.loads(json.dumps(card))
    bad["arch"]["bands"] = 13
    p = tmp_path / "mismatch.safetensors"
    save_model(p, tensors, bad)
    with pytest.raises(ModelError, match="do not fit"):
        load_enhancer(str(p))


def test_cuda_fallback_warns(tiny_model):
    path, _ = tiny_model
    warnings = []
    enh = load_enhancer(str(path), device="cuda", reporter=Reporter(on_warning=warnings.append))
    if torch.cuda.is_available():
        assert enh.device.startswith("cuda")
    else:
        assert enh.device == "cpu" and warnings and "CUDA" in warnings[0]


def test_input_matrix_modes(tiny_model):
    path, _ = tiny_model
    logs = []
    enh = load_enhancer(str(path), device="cpu", reporter=Reporter(on_info=logs.append))
    R, desc = enh.input_matrix(_Info(30), "resample")
    assert R.shape == (12, 30) and np.allclose(R.sum(1), 1.0)
    # no wavelengths on either side: linear interpolation along the normalised band axis, ends kept
    assert R[0, 0] == 1.0 and R[-1, -1] == 1.0 and np.allclose(R @ np.arange(30.0), np.linspace(0, 29, 12))
    assert logs[-1] == desc and sum("resampled" in m for m in logs) == 1
    assert desc.startswith(
        "30 input bands resampled to the model's 12: resampled 30 -> 12 bands along the "
        "normalised band axis (no input and target wavelengths"
    )
    R, desc = enh.input_matrix(_Info(30), "first")
    assert R.shape == (12, 30) and np.array_equal(R[:, :12], np.eye(12)) and not R[:, 12:].any()
    assert logs[-1] == desc == "first 12 of 30 bands (paper protocol)"
    from fers_engine.errors import InputError

    with pytest.raises(InputError):
        enh.input_matrix(_Info(8), "first")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_features_tiling_exact_and_block_halo(tiny_model, backend):
    path, _ = tiny_model
    enh = load_enhancer(str(path), device="cpu", backend=backend)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(12, 71, 53)) * 0.03).astype(np.float32)
    whole = enh.features(x, parts=("spectral", "spatial"), tile=4096)
    # torch: 16 x 16 tiles; numpy: row chunks of a few rows (a tiny working-memory budget)
    budget = 53 * 4 * 4000 if backend == "numpy" else 256 << 20
    tiled = enh.features(x, parts=("spectral", "spatial"), tile=16, max_batch_bytes=budget)
    for k in whole:
        assert whole[k].shape == (12, 71, 53)
        np.testing.assert_allclose(tiled[k], whole[k], atol=2e-6)
    # a row block with halo rows on each side gives the whole-scene features on its core rows
    h = enh.halo
    r0, r1 = 30, 45
    part = enh.features(x[:, r0 - h : r1 + h], parts=("spectral", "spatial"), tile=32)
    for k in whole:
        np.testing.assert_allclose(part[k][:, h : h + (r1 - r0)], whole[k][:, r0:r1], atol=2e-6)
    # deterministic
    again = enh.features(x, parts=("spectral",), tile=16, max_batch_bytes=budget)
    assert np.array_equal(again["spectral"], tiled["spectral"])


def test_normaliser_robust_to_hot_pixel(tiny_model):
    path, _ = tiny_model
    enh = load_enhancer(str(path), device="cpu")
    rng = np.random.default_rng(1)
    x = rng.uniform(100, 200, size=(12, 50, 50)).astype(np.float32)
    n1 = enh.new_normaliser()
    n1.update(x)
    y = x.copy()
    y[:, 10, 10] = 1e6
    n2 = enh.new_normaliser()
    for r in range(0, 50, 7):  # streamed in blocks
        n2.update(y[:, r : r + 7])
    a, b = n1.apply(x), n2.apply(y)
    assert abs(a.min() + 0.1) < 0.01 and abs(a.max() - 0.1) < 0.01
    assert np.abs(a - b)[:, np.arange(50) != 10].max() < 0.01
    assert b[:, 10, 10].min() > 1.0  # not clipped


def test_shipped_default_tiled_equals_whole_on_real_scene(shared_data):
    """The bundled model on a real scene: tiled features == whole-scene features, same AUC."""
    from fers_engine.detectors.rx import global_rx
    from fers_engine.nets.bundled import MODELS_DIR
    from fers_engine.nets.data import read_scene

    if not (MODELS_DIR / "fers-default.safetensors").is_file():
        pytest.skip("no shipped default model yet")
    enh = load_enhancer(None, device="cpu")
    raw = read_scene(shared_data / "abu-airport-2" / "abu-airport-2.mat")
    cube, valid, truth = raw.cube, raw.valid, raw.truth

    class Info:
        count = cube.shape[0]
        wavelengths = None

    R, _ = enh.input_matrix(Info(), "resample")
    x = np.tensordot(R, cube, axes=(1, 0)).astype(np.float32)
    norm = enh.new_normaliser()
    for r in range(0, x.shape[1], 13):
        norm.update(x[:, r : r + 13], valid[r : r + 13])
    x = norm.apply(x)
    whole = enh.features(x, parts=enh.parts, tile=1024)
    tiled = enh.features(x, parts=enh.parts, tile=24)
    # streamed row blocks with halo, as the pipeline does
    h = enh.halo
    rows = {p: np.empty_like(whole[p]) for p in enh.parts}
    for r0 in range(0, x.shape[1], 30):
        r1 = min(r0 + 30, x.shape[1])
        a0, a1 = max(0, r0 - h), min(x.shape[1], r1 + h)
        f = enh.features(x[:, a0:a1], parts=enh.parts, tile=64)
        for p in enh.parts:
            rows[p][:, r0:r1] = f[p][:, r0 - a0 : r1 - a0]
    from fers_engine.nets.losses import _standardise  # noqa: F401  (import check only)

    for p in enh.parts:
        for other in (tiled[p], rows[p]):
            c = np.corrcoef(other.ravel(), whole[p].ravel())[0, 1]
            assert c > 0.99999
            np.testing.assert_allclose(other, whole[p], atol=1e-4)
    s_whole = global_rx(x + whole["spectral"], valid)
    s_rows = global_rx(x + rows["spectral"], valid)
    from scipy.stats import rankdata

    def auc(s):
        r = rankdata(s.ravel())
        t = truth.ravel()
        return (r[t].sum() - t.sum() * (t.sum() + 1) / 2) / (t.sum() * (~t).sum())

    assert abs(auc(s_whole) - auc(s_rows)) < 0.002
    assert auc(s_whole) > 0.9


def test_without_torch_the_enhancer_runs_on_numpy(tiny_model, monkeypatch):
    """No torch (QGIS's Python): the model loads and computes on numpy; only torch asked for by
    name is a DependencyError, whose hint names the pinned CPU build and never a bare pip."""
    import sys

    from fers_engine.errors import DependencyError

    path, _ = tiny_model
    x = (np.random.default_rng(2).normal(size=(12, 20, 18)) * 0.03).astype(np.float32)
    expected = load_enhancer(str(path), device="cpu", backend="torch").features(
        x, parts=("spectral", "spatial")
    )
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" now raises ImportError
    enh = load_enhancer(str(path))
    assert enh.backend == "numpy" and enh.device == "cpu"
    got = enh.features(x, parts=("spectral", "spatial"))
    for p in got:
        np.testing.assert_allclose(got[p], expected[p], rtol=1e-4, atol=1e-6)
    with pytest.raises(
        DependencyError, match=r"torch==2\.13\.0 --index-url https://download.pytorch.org/whl/cpu"
    ):
        load_enhancer(str(path), backend="torch")
