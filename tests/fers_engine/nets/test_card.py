"""The typed model card: hostile cards (issue 15 item 4 and more) are one ModelError line before any
network is built, fast and without big allocations; the card's rules mirror the torch networks."""

from __future__ import annotations

import copy
import dataclasses
import time
import tracemalloc

import numpy as np
import pytest

from fers_engine.errors import Cancelled, ModelError
from fers_engine.nets.bundled import MODELS_DIR
from fers_engine.nets.card import ModelCard, expected_shapes, parse_arch
from fers_engine.nets.enhancer import load_enhancer
from fers_engine.nets.model_file import load_model, save_model
from fers_engine.nets.normalise import Normaliser


def _numpy_weights(card: dict) -> dict:
    """Random weights of exactly the shapes the card's architecture implies (no torch needed)."""
    rng = np.random.default_rng(0)
    shapes = expected_shapes(parse_arch(card["arch"]))
    out = {k: rng.normal(size=s).astype(np.float32) * 0.1 for k, s in shapes.items()}
    for k in out:
        if k.endswith("running_var"):
            out[k] = np.abs(out[k]) + 0.5
    return out


@pytest.fixture
def good(tmp_path, make_tiny_card):
    card = make_tiny_card()
    tensors = _numpy_weights(card)
    path = save_model(tmp_path / "good.safetensors", tensors, card)
    return path, card, tensors


def _set(card: dict, dotted: str, value) -> dict:
    card = copy.deepcopy(card)
    *parents, last = dotted.split(".")
    node = card
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return card


_DELETE = object()

HOSTILE = [
    # issue 15 item 4, one by one
    ("normalisation.cap", 0, "cap"),
    ("arch.bands", 10_000_000, r"weights do not fit .*spectral\.convh\.weight"),
    ("arch.spectral.width", 200_000, "weights do not fit"),
    ("format_version", "abc", "format_version"),
    ("arch.bands", -3, "arch.bands"),
    ("normalisation.q_lo", "0.001", "q_lo"),
    ("normalisation.half_range", 0, "half_range"),
    ("normalisation.q_lo", 0.9999, "q_lo < q_hi"),
    # more of the same kind
    ("normalisation.cap", 10**12, "cap"),
    ("normalisation.q_hi", float("nan"), "q_hi"),
    ("normalisation.method", "min-max", "method"),
    ("normalisation.extra", 1, "unknown field"),
    ("format_version", 2, "newer FERS"),
    ("format_version", True, "format_version"),
    ("format", "fers-checkpoint", "not a fers-enhancer model"),
    ("arch", _DELETE, "arch"),
    ("arch.bands", 12.0, "arch.bands"),
    ("arch.spectral.dilations", [1, 1, 1000], "dilations"),
    ("arch.spectral.dilations", [], "dilations"),
    ("arch.spectral.out_act", "tanh", "out_act"),
    ("arch.spectral.kernel", 5, "unknown field"),
    ("arch.spatial.pools", [1, 4, 9], "odd"),
    ("arch.spatial.pools", [1, 5, 100001], "pools"),
    ("arch.spatial.width", 7, "weights do not fit"),
    ("arch.spatial.hidden", 17, "weights do not fit"),
    ("halo", 3, "halo"),
    ("parts", ["spectral"], "parts"),
    ("wavelengths", [500.0] * 5, "wavelengths"),
    ("wavelengths", [float("inf")] * 12, "wavelengths"),
    ("name", 5, "name"),
]


@pytest.mark.parametrize("field, value, words", HOSTILE)
def test_hostile_card_is_one_line_before_any_network_is_built(good, tmp_path, field, value, words):
    _, card, tensors = good
    path = save_model(tmp_path / "bad.safetensors", tensors, _set(card, field, value))
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ModelError, match=words) as err:
            load_enhancer(str(path), device="cpu")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5.0
    assert peak < 8 * 2**20, f"{field}={value!r}: {peak} bytes allocated"
    message = str(err.value)
    assert "\n" not in message and message.startswith("bad.safetensors: ")


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda t: t["spectral.proj.conv2.weight"].__setitem__((0, 0, 0, 0), np.nan), "NaN"),
        (
            lambda t: t["spatial.trunk.module.layers.0.1.running_var"].__setitem__(0, -1.0),
            "negative variances",
        ),
        (lambda t: t.pop("spectral.proj.conv1.bias"), "missing spectral.proj.conv1.bias"),
        (lambda t: t.__setitem__("spectral.extra", np.zeros(2, np.float32)), "unexpected"),
        (
            lambda t: t.__setitem__("spectral.convh.weight", t["spectral.convh.weight"].astype(np.int32)),
            "floating",
        ),
    ],
)
def test_weights_that_would_change_results_silently_are_refused(good, tmp_path, damage, words):
    _, card, tensors = good
    tensors = copy.deepcopy(tensors)
    damage(tensors)
    path = save_model(tmp_path / "bad.safetensors", tensors, card)
    with pytest.raises(ModelError, match=words):
        load_enhancer(str(path), device="cpu")


def test_a_good_card_gives_the_typed_card(good):
    path, card, _ = good
    enh = load_enhancer(str(path), device="cpu")
    typed = enh.card
    assert typed.arch.bands == 12 and typed.arch.spectral.dilations == (1, 1, 1)
    assert typed.normalisation.cap == card["normalisation"]["cap"] and typed.raw == card
    with pytest.raises(dataclasses.FrozenInstanceError):
        typed.arch.bands = 13  # type: ignore[misc]


def test_card_rules_mirror_the_torch_networks(make_tiny_card):
    """expected_shapes and the halo rule say exactly what the torch modules hold (the shipped
    architecture and the tiny one), BatchNorm counters aside."""
    torch = pytest.importorskip("torch")
    from fers_engine.nets.enhancer import build_networks

    shipped, shipped_card = load_model(MODELS_DIR / "fers-default.safetensors")
    for card, tensors in ((shipped_card, shipped), (make_tiny_card(), None)):
        nets = build_networks(card["arch"])
        state = {
            k: tuple(v.shape) for k, v in nets.state_dict().items() if not k.endswith("num_batches_tracked")
        }
        if tensors is None:
            tensors = {k: v.numpy() for k, v in nets.state_dict().items()}
        typed = ModelCard.validate(card, tensors, "m")
        assert expected_shapes(typed.arch) == state
        assert typed.halo == max(int(nets[p].halo) for p in nets)
    assert ModelCard.validate(shipped_card, shipped, "m").halo == shipped_card["halo"] == 15
    del torch


def test_normaliser_thinning_loop_hears_cancel():
    """The loop whose length depends on the card's cap checks for cancel on every pass."""
    calls = []

    def stop():
        calls.append(1)
        if len(calls) > 2:
            raise Cancelled("cancelled by the user")

    n = Normaliser(cap=1024, check=stop)
    with pytest.raises(Cancelled):
        n.update(np.ones((1, 1000, 1000), np.float32))
    assert len(calls) == 3
