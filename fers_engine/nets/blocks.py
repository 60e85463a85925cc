"""Building blocks shared by the networks: stride-1 conv stacks, truly frozen modules, halos.

Every deployed network is built only from stride-1 convolutions, per-pixel layers and local
pooling with fixed kernels. Such a network is fully convolutional with a finite receptive field
of radius ``halo``: the output at a pixel depends only on inputs at most ``halo`` pixels away,
so tiled inference with an overlap of ``halo`` equals whole-scene inference up to float error,
whatever padding the layers use at the tile border.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F


def conv3x3(cin: int, cout: int, dilation: int = 1, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=bias,
                     padding_mode="replicate" if stride == 1 else "zeros")


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, dilation: int = 1, stride: int = 1):
        super().__init__(conv3x3(cin, cout, dilation, stride), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        self.halo = dilation if stride == 1 else None


class Trunk(nn.Module):
    """A stack of stride-1 3x3 conv + BN + ReLU layers; ``halo`` = sum of the dilations."""

    def __init__(self, cin: int, width: int, dilations: Sequence[int]):
        super().__init__()
        layers = []
        c = cin
        for d in dilations:
            layers.append(ConvBNReLU(c, width, dilation=int(d)))
            c = width
        self.layers = nn.Sequential(*layers)
        self.halo = int(sum(int(d) for d in dilations))
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Frozen(nn.Module):
    """Holds a module whose parameters never train and whose BatchNorm never updates.

    ``requires_grad`` is switched off and the wrapped module is kept in eval mode: ``train()``
    called on any parent reaches this wrapper, which ignores the requested mode, so the running
    statistics cannot drift (the official spatial branch's flaw, method.md 6.5).
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        for p in self.module.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True):  # noqa: D401 - torch API
        return super().train(False)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @property
    def halo(self) -> int:
        return int(getattr(self.module, "halo", 0))


def box_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    """Local mean over a k x k window (stride 1, same size), counting only pixels inside the image.

    Separable (rows then columns); exact for the rectangular valid region, so it equals a 2-D
    average pooling with ``count_include_pad=False``.
    """
    if k <= 1:
        return x
    r = k // 2
    x = F.avg_pool2d(x, (k, 1), stride=1, padding=(r, 0), count_include_pad=False)
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, r), count_include_pad=False)
    return x


def init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def pad_to_multiple(x: torch.Tensor, m: int):
    """Reflect-pad the bottom/right so H and W are multiples of m; returns (x, (H, W))."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)
