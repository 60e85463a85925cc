from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

TINY_ARCH = {
    "bands": 12,
    "spectral": {"width": 8, "hidden": 16, "dilations": [1, 1, 1], "out_act": "none"},
    "spatial": {"width": 6, "rgb_hidden": 8, "dilations": [1, 2], "pools": [1, 5, 9], "hidden": 16},
}


def tiny_card(arch=None):
    from fers_engine.nets.model_file import FORMAT, FORMAT_VERSION

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch or TINY_ARCH,
        "wavelengths": None,
        "normalisation": {
            "method": "global-quantile",
            "q_lo": 0.001,
            "q_hi": 0.999,
            "half_range": 0.1,
            "cap": 262144,
        },
    }


@pytest.fixture
def tiny_model(tmp_path):
    """A randomly initialised tiny model file (path, card)."""
    from fers_engine.nets.enhancer import build_networks
    from fers_engine.nets.model_file import save_model

    torch.manual_seed(0)
    nets = build_networks(TINY_ARCH)
    # make BN running statistics non-trivial so frozen-BN bugs show
    for m in nets.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    card = tiny_card()
    path = tmp_path / "tiny.safetensors"
    save_model(path, nets.state_dict(), card)
    return path, card


@pytest.fixture
def make_tiny_card():
    """The card maker, as a fixture so tests need not import this conftest by name."""
    return tiny_card
