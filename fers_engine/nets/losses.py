"""Losses of stage 0, 1 and 2.

Stage 2 follows method.md 3.2 (weights 1, 0.1, 0.1, 1 and 0.01 SSIM by default) with two
documented scale fixes (6.11):
* ``cross_covariance``: the published loss is the *sum* of C^2 squared standardised
  cross-covariances, whose noise floor is C^2 / N (about 1 for C = 128, 16 x 32 x 32 pixels),
  so its gradient is mostly noise. We divide by C: a perfectly correlated pair still scores 1
  per matched channel, the floor drops to C / N.
* ``ssim``: window 5 written here; the constants use the real data range of the normalised cube
  (0.2 for [-0.1, 0.1]) instead of kornia's max_val = 1, which made C1, C2 dominate.
Stage 1's ill-posed SFAM "zero-centering" BCE (6.10) is replaced by ``alignment_loss``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _flat(z: torch.Tensor, weight: Optional[torch.Tensor]) -> torch.Tensor:
    """(B, C, H, W) -> (C, N) over the pixels whose weight is > 0."""
    c = z.shape[1]
    z = z.permute(1, 0, 2, 3).reshape(c, -1)
    if weight is not None:
        keep = weight.reshape(-1) > 0
        z = z[:, keep]
    return z


def _standardise(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    z = z - z.mean(1, keepdim=True)
    return z / (z.pow(2).mean(1, keepdim=True).sqrt() + eps)


def masked_mse(a: torch.Tensor, b: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    d = (a - b).pow(2).mean(1, keepdim=True)
    if weight is None:
        return d.mean()
    return (d * weight).sum() / weight.sum().clamp_min(1.0)


def pixel_cosine_loss(
    fs: Sequence[torch.Tensor], gs: Sequence[torch.Tensor], weight: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Sum over scales of mean per-pixel (1 - cos(f, g)) along channels.

    Per pixel, not over the flattened map as in the official CosLoss (method.md 3.1): a map-level
    cosine lets a few large-magnitude pixels dominate and ignores small local mismatches, which
    are exactly what an anomaly produces.
    """
    total = 0.0
    for f, g in zip(fs, gs):
        d = 1.0 - F.cosine_similarity(f, g, dim=1, eps=1e-6).unsqueeze(1)
        if weight is not None:
            w = (
                F.interpolate(weight, size=d.shape[-2:], mode="nearest")
                if d.shape[-2:] != weight.shape[-2:]
                else weight
            )
            total = total + (d * w).sum() / w.sum().clamp_min(1.0)
        else:
            total = total + d.mean()
    return total


def alignment_loss(
    p_teacher: torch.Tensor,
    p_student: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    decorrelation: float = 0.1,
) -> torch.Tensor:
    """Replacement for the SFAM loss (method.md 6.10): per-channel correlation alignment.

    loss = mean_c (1 - corr_c(P(f)_c, P(g)_c)) + decorrelation * mean_{i != j} corr(P(f)_i, P(f)_j)^2,
    correlations taken over all (batch, pixel) samples. It is 0 only when the student's
    projected features are a per-channel positive affine copy of the teacher's; a collapsed P
    (constant output) standardises to 0 and scores the maximum 1 per channel, so it cannot be
    minimised by collapse, and the decorrelation term stops all channels copying one direction
    (dimensional collapse, which would also ill-condition the RX covariance).
    """
    t = _standardise(_flat(p_teacher, weight))
    s = _standardise(_flat(p_student, weight))
    n = t.shape[1]
    corr = (t * s).mean(1)
    loss = (1.0 - corr).mean()
    if decorrelation > 0:
        c = t.shape[0]
        r = (t @ t.T) / max(n, 1)
        off = r - torch.diag(torch.diagonal(r))
        loss = loss + decorrelation * off.pow(2).sum() / max(c * (c - 1), 1)
    return loss


def cross_covariance_loss(
    a: torch.Tensor, b: torch.Tensor, weight: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Decorrelation of the two branches: sum_ij cov(a_i, b_j)^2 / C, channels standardised
    over (batch, pixels) as in the published loss (divided by C: see module doc)."""
    ta = _standardise(_flat(a, weight), 1e-6)
    tb = _standardise(_flat(b, weight), 1e-6)
    cov = ta @ tb.T / max(ta.shape[1], 1)
    return cov.pow(2).sum() / a.shape[1]


def cosine_branch_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L_cos = 1 + mean per-pixel cosine between spe and spa (published form)."""
    return 1.0 + F.cosine_similarity(a, b, dim=1, eps=1e-6).mean()


def variance_loss(spa: torch.Tensor) -> torch.Tensor:
    """L_var = mean_c ReLU(1 - mean_b Var_hw(spa[b, c])) + mean |spa| (published form)."""
    var = spa.flatten(2).var(2, unbiased=False).mean(0)
    return F.relu(1.0 - var).mean() + spa.abs().mean()


def _gauss_window(size: int, sigma: float, device, dtype) -> torch.Tensor:
    ax = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    return g


def ssim(
    a: torch.Tensor, b: torch.Tensor, window: int = 5, data_range: float = 0.2, sigma: float = 1.5
) -> torch.Tensor:
    """Mean SSIM over channels and pixels, Gaussian window (size ``window``), reflect padding."""
    c = a.shape[1]
    g = _gauss_window(window, sigma, a.device, a.dtype)
    kh = g.view(1, 1, window, 1).repeat(c, 1, 1, 1)
    kw = g.view(1, 1, 1, window).repeat(c, 1, 1, 1)
    pad = window // 2

    def blur(z):
        z = F.pad(z, (pad, pad, pad, pad), mode="reflect")
        return F.conv2d(F.conv2d(z, kh, groups=c), kw, groups=c)

    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a**2
    sbb = blur(b * b) - mu_b**2
    sab = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return s.mean()


def ssim_loss(a, b, window: int = 5, data_range: float = 0.2) -> torch.Tensor:
    """(1 - SSIM) / 2, as kornia's SSIMLoss."""
    return (1.0 - ssim(a, b, window, data_range)) / 2.0


DEFAULT_STAGE2_WEIGHTS = {"cc": 1.0, "cos": 0.1, "var": 0.1, "rec": 1.0, "ssim": 0.01}


def stage2_loss(x, spe, spa, x_r, weight=None, w=None):
    """Total stage-2 loss and its parts (dict of floats for logging)."""
    w = dict(DEFAULT_STAGE2_WEIGHTS, **(w or {}))
    parts = {
        "cc": cross_covariance_loss(spe, spa, weight),
        "cos": cosine_branch_loss(spe, spa),
        "var": variance_loss(spa),
        "mse": masked_mse(x_r, x, weight),
        "ssim": ssim_loss(x_r, x),
    }
    total = (
        w["cc"] * parts["cc"]
        + w["cos"] * parts["cos"]
        + w["var"] * parts["var"]
        + w["rec"] * parts["mse"]
        + w["ssim"] * parts["ssim"]
    )
    return total, {k: float(v.detach()) for k, v in parts.items()}


def stage1_loss(out, x, weight=None, w_cos=1.0, w_mse=0.1, w_align=1.0):
    parts = {
        "cos": pixel_cosine_loss(out["f"], out["g"], weight),
        "mse": masked_mse(out["x_hat"], x, weight),
        "align": alignment_loss(out["p_t"], out["p_s"], weight),
    }
    total = w_cos * parts["cos"] + w_mse * parts["mse"] + w_align * parts["align"]
    return total, {k: float(v.detach()) for k, v in parts.items()}


class SeparationLoss(nn.Module):
    """RX separability of implanted targets from the background, as the product detects.

    ``z`` (n, C, h, w) is what RX sees (x + spe (+ spa)) for one group of crops from one scene.
    The background mean and covariance are those of the group's background pixels (off targets,
    weight > 0), shrunk by ``shrink`` times the mean variance; every pixel gets its log
    Mahalanobis distance s. The loss is a soft ranking mean softplus((s_bg - s_tgt) / tau) of
    every implanted pixel against the background pixels that matter for false alarms: the top
    ``hard_fraction`` of background scores, the ``edge_fraction`` background pixels with the
    highest spectral gradient (material boundaries must stay background), and ``n_random``
    others. It is invariant to any affine change of z, so it cannot be lowered by scaling, and
    it rewards exactly what the product's AUC measures.
    """

    def __init__(
        self,
        shrink: float = 1e-3,
        tau: float = 0.5,
        hard_fraction: float = 0.02,
        edge_fraction: float = 0.05,
        n_random: int = 512,
    ):
        super().__init__()
        self.shrink, self.tau = float(shrink), float(tau)
        self.hard_fraction, self.edge_fraction, self.n_random = (
            float(hard_fraction),
            float(edge_fraction),
            int(n_random),
        )

    def scores(self, z: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """log squared Mahalanobis distance of every pixel (n*h*w,) from the background pixels'
        statistics (``background``: bool (n*h*w,))."""
        c = z.shape[1]
        zf = z.permute(0, 2, 3, 1).reshape(-1, c)
        zb = zf[background]
        mu = zb.mean(0, keepdim=True)
        d = zb - mu
        cov = d.T @ d / max(d.shape[0] - 1, 1)
        lam = self.shrink * torch.diagonal(cov).mean().clamp_min(1e-12)
        cov = cov + lam * torch.eye(c, device=z.device, dtype=z.dtype)
        chol, info = torch.linalg.cholesky_ex(cov)
        if int(info) != 0:  # non-finite features (a diverged network): a NaN loss says so
            return torch.full((zf.shape[0],), float("nan"), device=z.device, dtype=z.dtype)
        y = torch.linalg.solve_triangular(chol, (zf - mu).T, upper=False)
        return torch.log(y.pow(2).sum(0) + 1e-6)

    def forward(
        self, z: torch.Tensor, abundance: torch.Tensor, weight: torch.Tensor, gradient: torch.Tensor
    ) -> torch.Tensor:
        ok = weight.reshape(-1) > 0
        tgt = (abundance.reshape(-1) > 0) & ok
        bg = ok & ~tgt
        if tgt.sum() < 1 or bg.sum() < z.shape[1] + 2:
            return z.sum() * 0.0
        s = self.scores(z, bg)
        s_t, s_b = s[tgt], s[bg]
        n_bg = s_b.numel()
        pick = torch.zeros(n_bg, dtype=torch.bool, device=z.device)
        k_hard = max(1, int(self.hard_fraction * n_bg))
        pick[torch.topk(s_b.detach(), k_hard).indices] = True
        k_edge = max(1, int(self.edge_fraction * n_bg))
        pick[torch.topk(gradient.reshape(-1)[bg], k_edge).indices] = True
        rand = torch.randperm(n_bg, device=z.device)[: self.n_random]
        pick[rand] = True
        return F.softplus((s_b[pick][None, :] - s_t[:, None]) / self.tau).mean()


class MaskedReconstructionLoss(nn.Module):
    """Stage 0: masked MSE of the spectral auto-encoder plus that of the spatial one."""

    def forward(self, x_spec: torch.Tensor, x_spat: torch.Tensor, x: torch.Tensor, weight: torch.Tensor):
        l_spec = masked_mse(x_spec, x, weight)
        l_spat = masked_mse(x_spat, x, weight)
        return l_spec + l_spat, {"spec": float(l_spec.detach()), "spat": float(l_spat.detach())}


class DistillationLoss(nn.Module):
    """Stage 1 (FERD reverse distillation): per-pixel cosine over scales, reconstruction MSE and
    the projection alignment that replaces SFAM (``stage1_loss``)."""

    def __init__(self, w_cos: float = 1.0, w_mse: float = 0.1, w_align: float = 1.0):
        super().__init__()
        self.weights = {"w_cos": w_cos, "w_mse": w_mse, "w_align": w_align}

    def forward(self, out, x, weight):
        return stage1_loss(out, x, weight, **self.weights)


class StudentLoss(nn.Module):
    """Stage 2 (the rebellious student): ``stage2_loss`` with the recipe's weights."""

    def __init__(self, **weights):
        super().__init__()
        self.weights = dict(DEFAULT_STAGE2_WEIGHTS, **weights)

    def forward(self, x, spe, spa, x_r, weight):
        return stage2_loss(x, spe, spa, x_r, weight, self.weights)
