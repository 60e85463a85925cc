from __future__ import annotations

import numpy as np
import pytest
import torch

from fers_engine.nets.losses import (
    SeparationLoss,
    alignment_loss,
    cross_covariance_loss,
    ssim,
    ssim_loss,
    stage2_loss,
    variance_loss,
)
from fers_engine.nets.masks import MaskGenerator, fill_masked, grow_blobs
from fers_engine.nets.spectral import Projection


def test_alignment_loss_decreases_as_student_matches_teacher():
    torch.manual_seed(0)
    t = torch.randn(4, 16, 12, 12)
    noise = torch.randn_like(t)
    losses = [float(alignment_loss(t, t + s * noise, decorrelation=0.0)) for s in (3.0, 1.0, 0.3, 0.0)]
    assert all(a > b for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 1e-3


def test_alignment_loss_cannot_be_zeroed_by_collapse():
    torch.manual_seed(1)
    f = torch.randn(4, 8, 10, 10)
    g = f + 0.1 * torch.randn_like(f)
    p = Projection(8, 16, 12)
    good = float(alignment_loss(p(f), p(g)))
    # collapse P: zero weights -> constant output for teacher and student alike
    with torch.no_grad():
        p.conv2.weight.zero_()
        p.conv2.bias.fill_(0.3)
    collapsed = float(alignment_loss(p(f), p(g)))
    assert collapsed >= 0.999  # the maximum of the correlation term
    assert good < collapsed
    # dimensional collapse (every channel the same) is penalised by the decorrelation term
    z = f[:, :1].repeat(1, 12, 1, 1)
    assert float(alignment_loss(z, z)) > 0.09


def test_stage2_terms():
    torch.manual_seed(2)
    a = torch.randn(2, 6, 16, 16)
    assert float(cross_covariance_loss(a, a)) > 0.9  # identical branches: fully correlated
    b = torch.randn(2, 6, 16, 16)
    assert float(cross_covariance_loss(a, b)) < 0.2
    assert abs(float(ssim(a * 0.1, a * 0.1)) - 1.0) < 1e-5
    assert float(ssim_loss(a * 0.1, b * 0.1)) > 0.2
    assert float(variance_loss(torch.zeros(2, 6, 8, 8))) == 1.0
    total, parts = stage2_loss(a * 0.1, a, b, a * 0.1)
    assert set(parts) == {"cc", "cos", "var", "mse", "ssim"} and torch.isfinite(total)


def test_masks_recipe():
    rng = np.random.default_rng(0)
    blobs = grow_blobs(200, rng)
    areas = blobs.sum((1, 2))
    assert areas.min() >= 3 and areas.max() <= 20
    gen = MaskGenerator(seed=0, bank=64)
    m = gen(rng, 8, 40, 56)
    assert m.shape == (8, 40, 56) and set(np.unique(m)) <= {0.0, 1.0}
    assert ((1 - m).sum((1, 2)) > 0).all()
    x = rng.normal(size=(8, 5, 40, 56)).astype(np.float32)
    y = fill_masked(x, m, rng, "zero")
    assert (
        np.allclose(y[:, :, m == 1][...], x[:, :, m == 1])
        if False
        else np.allclose(y * m[:, None], x * m[:, None])
    )
    assert np.allclose(y * (1 - m[:, None]), 0)


def _implanted(contrast, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(2, 6, 16, 16)).astype(np.float32)
    ab = np.zeros((2, 1, 16, 16), np.float32)
    ab[0, 0, 3:5, 3:5] = 1.0
    ab[1, 0, 10, 12] = 1.0
    z[:, :, ab[0, 0] > 0] += contrast  # broadcast: both crops' target pixels shifted
    z[1, :, 10, 12] += contrast
    w = np.ones_like(ab)
    return (
        torch.from_numpy(z),
        torch.from_numpy(ab),
        torch.from_numpy(w),
        torch.from_numpy(rng.random(ab.shape).astype(np.float32)),
    )


def test_separation_loss_falls_as_targets_stand_out_and_ignores_affine_maps():
    loss = SeparationLoss(n_random=1000)
    vals = []
    for contrast in (0.0, 1.0, 3.0, 8.0):
        z, ab, w, g = _implanted(contrast)
        torch.manual_seed(0)
        vals.append(float(loss(z, ab, w, g)))
    assert all(a > b for a, b in zip(vals, vals[1:])), vals
    z, ab, w, g = _implanted(3.0)
    a = torch.randn(6, 6) + 3 * torch.eye(6)
    moved = torch.einsum("ij,bjhw->bihw", a, z) + torch.randn(1, 6, 1, 1) * 5
    torch.manual_seed(0)
    before = float(loss(z, ab, w, g))
    torch.manual_seed(0)
    assert float(loss(moved, ab, w, g)) == pytest.approx(before, rel=0.02, abs=0.02)


def test_separation_loss_says_nan_for_non_finite_features():
    z, ab, w, g = _implanted(3.0)
    z[0, 0, 0, 0] = float("nan")
    assert np.isnan(float(SeparationLoss()(z, ab, w, g)))
