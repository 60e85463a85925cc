"""Spatial branch ("rebellious student", method.md 2.3) and the Feature Restoration Net (2.4).

Changes from the official code, all to make the deployed network tile-independent (flaw 6.6):
* the ImageNet ResNet-34 is replaced by a small stride-1 trunk with dilations 1, 2, 4, pre-trained
  in stage 0 (masked auto-encoding of pseudo-RGB tiles) and frozen with BatchNorm in eval mode;
* the SPP's adaptive (global) pooling and the SE block are replaced by local box means with
  fixed kernels (``pools``), so the output has a finite receptive field of radius ``halo``.
The FRN is used only in training; its channel attention uses a local (not global) mean too.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Frozen, Trunk, box_mean, conv3x3, init_weights


class Conv2RGB(nn.Module):
    """Spectral compression to a pseudo-RGB in (0, 1): 1x1 C->hidden, ReLU, 1x1 ->3, sigmoid."""

    def __init__(self, bands: int, hidden: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(bands, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, 3, 1)
        for c in (self.conv1, self.conv2):
            nn.init.xavier_normal_(c.weight)
            nn.init.zeros_(c.bias)

    def forward(self, x):
        return torch.sigmoid(self.conv2(F.relu(self.conv1(x))))


def spatial_trunk(
    width: int, dilations: Sequence[int] = (1, 2, 4), symmetric: bool = False, channels: int = 3
) -> Trunk:
    return Trunk(channels, width, dilations, symmetric)


class PoolHead(nn.Module):
    """Multi-scale local pooling head: box means with fixed kernels, concat, 1x1, ReLU, 1x1 -> C."""

    def __init__(self, width: int, bands: int, pools: Sequence[int] = (1, 5, 9, 17), hidden: int = 64):
        super().__init__()
        self.pools = tuple(int(k) for k in pools)
        self.conv1 = nn.Conv2d(width * len(self.pools), hidden, 1, bias=False)
        self.conv2 = nn.Conv2d(hidden, bands, 1, bias=False)
        init_weights(self)
        self.halo = max(k // 2 for k in self.pools)

    def forward(self, f):
        z = torch.cat([box_mean(f, k) for k in self.pools], 1)
        return self.conv2(F.relu(self.conv1(z)))


class SpatialNet(nn.Module):
    """Deployed spatial enhancer: spa = head(trunk(rgb(x))); returns (spa, pseudo_rgb)."""

    def __init__(
        self,
        bands: int,
        width: int = 16,
        rgb_hidden: int = 32,
        dilations=(1, 2, 4),
        pools=(1, 5, 9, 17),
        hidden: int = 64,
        symmetric: bool = False,
    ):
        super().__init__()
        self.rgb = Conv2RGB(bands, rgb_hidden)
        self.trunk = Frozen(spatial_trunk(width, dilations, symmetric))
        self.head = PoolHead(width, bands, pools, hidden)
        self.halo = self.trunk.halo + self.head.halo

    def forward(self, x):
        rgb = self.rgb(x)
        return self.head(self.trunk(rgb)), rgb


class SpatialAE(nn.Module):
    """Stage 0 for the spatial trunk: masked pseudo-RGB -> trunk -> small decoder -> clean C-band cube."""

    def __init__(self, bands: int, width: int = 16, dilations=(1, 2, 4), symmetric: bool = False):
        super().__init__()
        self.trunk = spatial_trunk(width, dilations, symmetric)
        self.decoder = nn.Sequential(
            conv3x3(width, width, bias=True), nn.ReLU(inplace=True), nn.Conv2d(width, bands, 1)
        )
        init_weights(self)

    def forward(self, rgb):
        return self.decoder(self.trunk(rgb))


def fixed_pseudo_rgb(x: torch.Tensor) -> torch.Tensor:
    """Stage-0 input: means of the three thirds of the band axis, mapped from [-0.1, 0.1] to (0, 1)."""
    c = x.shape[1]
    edges = [0, c // 3, 2 * c // 3, c]
    parts = [x[:, edges[i] : max(edges[i + 1], edges[i] + 1)].mean(1, keepdim=True) for i in range(3)]
    return torch.sigmoid(torch.cat(parts, 1) * 20.0)


class LocalChannelAttention(nn.Module):
    """SE-like gating from a local (k x k) mean instead of a global one."""

    def __init__(self, ch: int, r: int = 8, k: int = 9):
        super().__init__()
        self.k = k
        self.fc1 = nn.Conv2d(ch, max(ch // r, 1), 1, bias=False)
        self.fc2 = nn.Conv2d(max(ch // r, 1), ch, 1, bias=False)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(box_mean(x, self.k)))))


class ResidualBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.c1 = conv3x3(ch, ch)
        self.b1 = nn.BatchNorm2d(ch)
        self.c2 = conv3x3(ch, ch)
        self.b2 = nn.BatchNorm2d(ch)

    def forward(self, x):
        return F.relu(x + self.b2(self.c2(F.relu(self.b1(self.c1(x))))))


class FeatureRestorationNet(nn.Module):
    """Training-only FRN: restores x from spa + spe. 1x1 C->width, [Res, CA] x blocks, 1x1 width->C.

    Narrower than the official C-wide FRN (method.md 2.4) so that stage 2 trains on a CPU.
    """

    def __init__(self, bands: int, width: int = 32, blocks: int = 3):
        super().__init__()
        self.inp = nn.Conv2d(bands, width, 1)
        body = []
        for _ in range(blocks):
            body += [ResidualBlock(width), LocalChannelAttention(width)]
        self.body = nn.Sequential(*body)
        self.out = nn.Conv2d(width, bands, 1)
        init_weights(self)

    def forward(self, z):
        return self.out(self.body(self.inp(z)))
