"""Building blocks shared by the networks: stride-1 conv stacks, truly frozen modules, halos.

Every deployed network is built only from stride-1 convolutions, per-pixel layers and local
pooling with fixed kernels. Such a network is fully convolutional with a finite receptive field
of radius ``halo``: the output at a pixel depends only on inputs at most ``halo`` pixels away,
so tiled inference with an overlap of ``halo`` equals whole-scene inference up to float error,
whatever padding the layers use at the tile border.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize


def conv3x3(cin: int, cout: int, dilation: int = 1, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(
        cin,
        cout,
        3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        bias=bias,
        padding_mode="replicate" if stride == 1 else "zeros",
    )


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, dilation: int = 1, stride: int = 1):
        super().__init__(conv3x3(cin, cout, dilation, stride), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        self.halo = dilation if stride == 1 else None


class D4Kernel(nn.Module):
    """Parametrisation of a 3x3 kernel by three numbers per (out, in) pair: centre, edge, corner.

    Such a kernel is unchanged by the eight 90-degree rotations and flips of the image (the
    dihedral group D4), so a stack of these convolutions, per-pixel layers, square box means and
    replicate padding is equivariant: rotating or flipping the input rotates or flips the
    features, and a global RX score of them, which ignores pixel order, is exactly invariant.
    Used in training only; a deployed model stores the expanded 3x3 kernels, which any plain
    convolution runs.
    """

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        c, e, k = p.unbind(-1)
        return torch.stack(
            [torch.stack([k, e, k], -1), torch.stack([e, c, e], -1), torch.stack([k, e, k], -1)], -2
        )

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        centre = w[..., 1, 1]
        edge = (w[..., 0, 1] + w[..., 1, 0] + w[..., 1, 2] + w[..., 2, 1]) / 4
        corner = (w[..., 0, 0] + w[..., 0, 2] + w[..., 2, 0] + w[..., 2, 2]) / 4
        return torch.stack([centre, edge, corner], -1)


def tie_d4(conv: nn.Conv2d) -> None:
    """Make a 3x3 convolution D4-symmetric. Its three numbers per (out, in) pair are drawn with
    the spread of the layer's current (untied) initialisation, so the output scale matches an
    untied layer's (averaging a random kernel's orbits would shrink it three-fold)."""
    if tuple(conv.kernel_size) != (3, 3):
        raise ValueError("only 3x3 kernels can be D4-tied")
    with torch.no_grad():
        std = float(conv.weight.std())
        p = torch.randn(conv.out_channels, conv.in_channels, 3) * std
        conv.weight.copy_(D4Kernel()(p))
    parametrize.register_parametrization(conv, "weight", D4Kernel())


def expanded_state_dict(module: nn.Module) -> Dict[str, torch.Tensor]:
    """The module's state dict with every parametrised weight written out as a plain tensor
    (what a deployed model file holds and a plain network loads). The module is not changed
    (removing a parametrisation from a copy would change the class the original shares)."""
    out = {}
    for k, v in module.state_dict().items():
        if ".parametrizations." not in k:
            out[k] = v
    for name, m in module.named_modules():
        if parametrize.is_parametrized(m):
            for pname in m.parametrizations.keys():
                out[f"{name}.{pname}" if name else pname] = getattr(m, pname).detach().clone()
    return out


class Trunk(nn.Module):
    """A stack of stride-1 3x3 conv + BN + ReLU layers; ``halo`` = sum of the dilations.

    ``symmetric``: D4-tied kernels (``D4Kernel``), for training; a deployed trunk loads the
    expanded kernels into plain convolutions.
    """

    def __init__(self, cin: int, width: int, dilations: Sequence[int], symmetric: bool = False):
        super().__init__()
        layers = []
        c = cin
        for d in dilations:
            layers.append(ConvBNReLU(c, width, dilation=int(d)))
            if symmetric:
                tie_d4(layers[-1][0])
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
        if parametrize.is_parametrized(m):
            continue  # D4-tied kernels keep the initialisation ``tie_d4`` gave them
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
