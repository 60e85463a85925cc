"""Network shapes, batch independence, halo (tiled == whole), frozen BatchNorm."""

from __future__ import annotations

import pytest
import torch

from fers_engine.nets.blocks import Frozen
from fers_engine.nets.spatial import FeatureRestorationNet, SpatialAE, SpatialNet, fixed_pseudo_rgb
from fers_engine.nets.spectral import SpectralAE, SpectralFEN, Stage1Graph

C = 12


@pytest.mark.parametrize("h,w", [(17, 23), (9, 40), (33, 33), (5, 7)])
def test_shapes_odd_nonsquare(h, w):
    torch.manual_seed(0)
    x = torch.randn(3, C, h, w) * 0.05
    fen = SpectralFEN(C, width=8, hidden=16).eval()
    spa = SpatialNet(C, width=6, rgb_hidden=8, dilations=(1, 2), pools=(1, 5), hidden=16).eval()
    assert fen(x).shape == (3, C, h, w)
    s, rgb = spa(x)
    assert s.shape == (3, C, h, w) and rgb.shape == (3, 3, h, w)
    assert SpectralAE(C, width=8)(x).shape == (3, C, h, w)
    assert SpatialAE(C, width=6, dilations=(1, 2))(fixed_pseudo_rgb(x)).shape == (3, C, h, w)
    assert FeatureRestorationNet(C, width=8, blocks=1)(x).shape == (3, C, h, w)
    g = Stage1Graph(SpectralFEN(C, width=8, hidden=16))
    out = g(x)
    assert out["x_hat"].shape == (3, C, h, w)
    assert out["p_t"].shape == out["p_s"].shape == (3, C, h, w)
    for f, gg in zip(out["f"], out["g"]):
        assert f.shape == gg.shape


def test_batch_independence():
    torch.manual_seed(1)
    x = torch.randn(4, C, 21, 26) * 0.05
    for net in (
        SpectralFEN(C, width=8, hidden=16),
        SpatialNet(C, width=6, rgb_hidden=8, dilations=(1, 2), hidden=16),
    ):
        net.eval()
        with torch.no_grad():
            full = net(x)
            full = full[0] if isinstance(full, tuple) else full
            for i in range(4):
                one = net(x[i : i + 1])
                one = one[0] if isinstance(one, tuple) else one
                assert torch.allclose(full[i : i + 1], one, atol=1e-6)


@pytest.mark.parametrize("kind", ["spectral", "spatial"])
def test_halo_is_exact_and_tight(kind):
    torch.manual_seed(2)
    net = (
        SpectralFEN(C, width=8, hidden=16)
        if kind == "spectral"
        else SpatialNet(C, width=6, rgb_hidden=8, dilations=(1, 2), pools=(1, 5, 9), hidden=16)
    )
    net.eval()
    f = (lambda t: net(t)) if kind == "spectral" else (lambda t: net(t)[0])
    h = net.halo
    x = torch.randn(1, C, 60, 50) * 0.05
    with torch.no_grad():
        full = f(x)
        part = f(x[:, :, 20 - h : 40 + h])
        assert torch.allclose(full[:, :, 20:40], part[:, :, h : h + 20], atol=1e-6)
        # one row less of context changes the border rows: the halo is not over-stated
        part2 = f(x[:, :, 20 - h + 1 : 40 + h - 1])
        assert (full[:, :, 20:40] - part2[:, :, h - 1 : h - 1 + 20]).abs().max() > 1e-7


def test_frozen_bn_stays_frozen_after_train():
    torch.manual_seed(3)
    fen = SpectralFEN(C, width=8, hidden=16)
    before = {k: v.clone() for k, v in fen.trunk.state_dict().items()}
    fen.train()  # parent in train mode
    assert fen.training and not fen.trunk.training
    assert all(not m.training for m in fen.trunk.modules())
    assert all(not p.requires_grad for p in fen.trunk.parameters())
    opt = torch.optim.SGD([p for p in fen.parameters() if p.requires_grad], lr=0.1)
    for _ in range(3):
        loss = fen(torch.randn(2, C, 16, 16)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fen.trunk.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    # the wrapper refuses train mode even when asked directly
    fr = Frozen(torch.nn.BatchNorm2d(4))
    fr.train(True)
    assert not fr.module.training


def test_no_global_pooling_in_deployed_networks():
    # a change far away (beyond the halo) must not change the output at all
    torch.manual_seed(4)
    net = SpatialNet(C, width=6, rgb_hidden=8, dilations=(1, 2), pools=(1, 5, 9), hidden=16).eval()
    x = torch.randn(1, C, 64, 64) * 0.05
    y = x.clone()
    y[:, :, 50:, 50:] += 1.0
    with torch.no_grad():
        a, b = net(x)[0], net(y)[0]
    r = 50 - net.halo
    assert torch.equal(a[:, :, :r, :r], b[:, :, :r, :r])


@pytest.mark.parametrize("kind", ["spectral", "spatial"])
def test_d4_tied_networks_are_equivariant_and_deploy_as_plain_convolutions(kind):
    """Tied kernels: rotating or flipping the input rotates or flips the output; the expanded
    weights load into the plain deployed network and give the same output."""
    from fers_engine.nets.blocks import expanded_state_dict

    torch.manual_seed(5)
    make = (
        (lambda sym: SpectralFEN(C, width=8, hidden=16, dilations=(1, 2), skip=True, symmetric=sym))
        if kind == "spectral"
        else (
            lambda sym: SpatialNet(
                C, width=6, rgb_hidden=8, dilations=(1, 2), pools=(1, 5), hidden=16, symmetric=sym
            )
        )
    )
    net = make(True).eval()
    f = (lambda m, t: m(t)) if kind == "spectral" else (lambda m, t: m(t)[0])
    x = torch.randn(1, C, 19, 23) * 0.05
    with torch.no_grad():
        y = f(net, x)
        for k in (1, 2, 3):
            assert torch.allclose(f(net, torch.rot90(x, k, (2, 3))), torch.rot90(y, k, (2, 3)), atol=1e-6)
        assert torch.allclose(f(net, torch.flip(x, (3,))), torch.flip(y, (3,)), atol=1e-6)
        plain = make(False).eval()
        plain.load_state_dict(expanded_state_dict(net))
        assert torch.allclose(f(plain, x), y, atol=1e-6)
    w = expanded_state_dict(net)
    kernels = [v for k, v in w.items() if v.ndim == 4 and v.shape[-1] == 3]
    assert kernels and all(
        torch.equal(kk, torch.rot90(kk, 1, (2, 3))) and torch.equal(kk, kk.flip(3)) for kk in kernels
    )
