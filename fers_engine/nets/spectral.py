"""Spectral branch: the deployed FEN (ConvH + frozen trunk layer 1 + projection P), the stage-0
masked auto-encoder that pre-trains the trunk, and the stage-1 reverse-distillation graph.

Sizes follow the published design (method.md 2.1-2.2) scaled down for CPU: the trunk has
``width`` channels instead of 256 and three 3x3 layers (7x7 receptive field, as layer 1 of the
official WRN). Nothing here assumes an image size: stride-2 parts of the training graph pad the
input to a multiple of 8 and crop back.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBNReLU, Frozen, Trunk, box_mean, init_weights, pad_to_multiple


class ConvH(nn.Conv2d):
    """Channel-wise layer: 1x1 conv C -> width, no bias (method.md 2.1)."""

    def __init__(self, bands: int, width: int):
        super().__init__(bands, width, 1, bias=False)
        nn.init.xavier_normal_(self.weight)


class Projection(nn.Module):
    """Feature projection P: 1x1 width -> hidden, ReLU, 1x1 hidden -> C.

    The official P ends in a ReLU, which leaves ~half of its output channels dead and the RX
    covariance ill-conditioned (peer-baseline.md); here the last layer is linear by default
    (``out_act='relu'`` restores the official form).
    """

    def __init__(self, width: int, hidden: int, bands: int, out_act: str = "none"):
        super().__init__()
        self.conv1 = nn.Conv2d(width, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, bands, 1)
        self.out_act = out_act
        for c in (self.conv1, self.conv2):
            nn.init.xavier_normal_(c.weight)
            nn.init.zeros_(c.bias)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(f)))
        return F.relu(y) if self.out_act == "relu" else y


def spectral_trunk(width: int, dilations: Sequence[int] = (1, 1, 1), symmetric: bool = False) -> Trunk:
    return Trunk(width, width, dilations, symmetric)


class SpectralFEN(nn.Module):
    """Deployed spectral enhancer: spe = P(trunk(ConvH(x))); output has the input's C bands."""

    def __init__(
        self,
        bands: int,
        width: int = 24,
        hidden: int = 64,
        dilations=(1, 1, 1),
        out_act: str = "none",
        skip: bool = False,
        pools: Sequence[int] = (),
        symmetric: bool = False,
    ):
        super().__init__()
        self.convh = ConvH(bands, width)
        self.trunk = Frozen(spectral_trunk(width, dilations, symmetric))
        self.skip = bool(skip)
        self.pools = tuple(int(k) for k in pools)
        n_in = width * (1 + int(self.skip) + len(self.pools))
        self.proj = Projection(n_in, hidden, bands, out_act)
        self.halo = self.trunk.halo + max([k // 2 for k in self.pools] or [0])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """What P sees: trunk features (and, with ``skip``, the per-pixel ConvH output)."""
        h = self.convh(x)
        f = self.trunk(h)
        parts = [f] + ([h] if self.skip else []) + [box_mean(f, k) for k in self.pools]
        return torch.cat(parts, 1) if len(parts) > 1 else f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.embed(x))


class DownStage(nn.Sequential):
    """Stride-2 stage of the (training-only) teacher: conv s2 + conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__(ConvBNReLU(cin, cout, stride=2), ConvBNReLU(cout, cout))


class UpStage(nn.Module):
    """Student decoder stage: ConvTranspose 2x2 s2 + conv (method.md 2.1 uses ConvT k2 s2)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.conv = ConvBNReLU(cout, cout)

    def forward(self, x):
        return self.conv(F.relu(self.bn(self.up(x))))


class SpectralAE(nn.Module):
    """Stage 0: masked auto-encoder that pre-trains the teacher trunk without ImageNet.

    encoder = ConvH0 -> layer1 (stride 1, the deployed trunk) -> layer2 (/2) -> layer3 (/4);
    decoder = two ConvT stages back to full resolution and a 1x1 head to C bands. Trained to
    reconstruct the clean cube from a randomly masked one (method.md 3.3 recipe).
    """

    def __init__(self, bands: int, width: int = 24, dilations=(1, 1, 1), symmetric: bool = False):
        super().__init__()
        self.convh = ConvH(bands, width)
        self.layer1 = spectral_trunk(width, dilations, symmetric)
        self.layer2 = DownStage(width, 2 * width)
        self.layer3 = DownStage(2 * width, 4 * width)
        self.up3 = UpStage(4 * width, 2 * width)
        self.up2 = UpStage(2 * width, width)
        self.head = nn.Conv2d(2 * width, bands, 1)
        for module in (self.layer1, self.layer2, self.layer3, self.up3, self.up2):
            init_weights(module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(x, 4)
        f1 = self.layer1(self.convh(x))
        f3 = self.layer3(self.layer2(f1))
        g1 = self.up2(self.up3(f3))
        # the skip from layer1 lets the trunk carry local detail (it is what FEN keeps)
        out = self.head(torch.cat([g1, f1], 1))
        return out[..., :h, :w]


class OCBE(nn.Module):
    """One-class bottleneck embedding / MFFM (method.md 2.1), scaled down: f1, f2 brought to f3's
    resolution with stride-2 convs, concatenated with f3, then a stride-2 fusion to 1/8."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        self.from1 = nn.Sequential(ConvBNReLU(w, 2 * w, stride=2), ConvBNReLU(2 * w, 4 * w, stride=2))
        self.from2 = ConvBNReLU(2 * w, 4 * w, stride=2)
        self.fuse = nn.Sequential(ConvBNReLU(12 * w, 8 * w, stride=2), ConvBNReLU(8 * w, 8 * w))
        init_weights(self)

    def forward(self, f1, f2, f3):
        return self.fuse(torch.cat([self.from1(f1), self.from2(f2), f3], 1))


class StudentDecoder(nn.Module):
    def __init__(self, width: int, bands: int, out: int = 0):
        super().__init__()
        w = width
        out = out or w
        self.up4 = UpStage(8 * w, 4 * w)  # -> g3 (1/4)
        self.up3 = UpStage(4 * w, 2 * w)  # -> g2 (1/2)
        self.up2 = UpStage(2 * w, out)  # -> g1 (1), same channels as what P sees
        self.recon = nn.Conv2d(out, bands, 1, bias=False)  # de_ConvH
        init_weights(self)

    def forward(self, phi):
        g3 = self.up4(phi)
        g2 = self.up3(g3)
        g1 = self.up2(g2)
        return g1, g2, g3, self.recon(g1)


class Stage1Graph(nn.Module):
    """Reverse distillation (FERD): teacher encoder (trainable ConvH + frozen pre-trained
    layer1..3), OCBE bottleneck, student decoder, shared projection P. Training only; the
    deployed FEN is ``fen`` (ConvH + layer1 + P), the same module object the other stages train."""

    def __init__(self, fen: SpectralFEN):
        super().__init__()
        self.fen = fen
        width = fen.convh.out_channels
        bands = fen.convh.in_channels
        self.layer2 = Frozen(DownStage(width, 2 * width))
        self.layer3 = Frozen(DownStage(2 * width, 4 * width))
        self.ocbe = OCBE(width)
        self.decoder = StudentDecoder(width, bands, width * (1 + int(fen.skip) + len(fen.pools)))

    def load_pretrained(self, ae: SpectralAE) -> None:
        self.fen.convh.load_state_dict(ae.convh.state_dict())
        self.fen.trunk.module.load_state_dict(ae.layer1.state_dict())
        self.layer2.module.load_state_dict(ae.layer2.state_dict())
        self.layer3.module.load_state_dict(ae.layer3.state_dict())

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        x, (h, w) = pad_to_multiple(x, 8)
        e1 = self.fen.embed(x)
        f1 = e1[:, : self.layer2.module[0][0].in_channels]
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        g1, g2, g3, xr = self.decoder(self.ocbe(f1, f2, f3))
        f1 = e1
        p_t = self.fen.proj(e1)
        p_s = self.fen.proj(g1)
        crop = lambda t, s: t[..., : -(-h // s), : -(-w // s)]  # noqa: E731
        return {
            "f": [crop(f1, 1), crop(f2, 2), crop(f3, 4)],
            "g": [crop(g1, 1), crop(g2, 2), crop(g3, 4)],
            "x_hat": crop(xr, 1),
            "p_t": crop(p_t, 1),
            "p_s": crop(p_s, 1),
        }
