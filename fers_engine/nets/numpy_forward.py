"""Torch-free inference: the deployed networks' forward pass in numpy, beside the torch modules
it mirrors (``spectral.SpectralFEN``, ``spatial.SpatialNet``, ``blocks``).

This is the CPU path of the product, used even where torch is installed, so the plugin zip runs
the full method in QGIS's own Python. It computes what the torch modules compute in eval mode,
on one ``(C, H, W)`` float32 block (no batch axis), with every layer a float32 matrix product
through the process's BLAS (``fers_engine.blas.matmul``, which also works inside QGIS):

* 1x1 convolutions: ``W (out, in) @ x (in, H*W)``;
* the frozen 3x3 trunks: eval-mode BatchNorm folded into the convolution once at load time
  (``W * s``, ``beta - mean * s`` with ``s = gamma / sqrt(var + eps)``), replicate padding as
  edge padding, and the nine dilated taps gathered into one ``(9 * in, H*W)`` operand so the
  layer is a single sgemm with K = 9 * in (faster, where measured, than nine K = in products
  summed through shifted views);
* ReLU in place, the sigmoid of Conv2RGB without overflow warnings;
* box means with ``count_include_pad=False`` (separable window sums from float64 cumulative
  sums, divided by the number of pixels inside the image).

Like the torch modules, the result at a pixel depends only on inputs within ``halo`` pixels, so
the caller may cut a scene into blocks with a ``halo`` overlap (``enhancer.Enhancer.features``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..blas import matmul
from .card import BN_EPS, Arch, SpatialArch, SpectralArch


class FoldedConv3x3:
    """A frozen stride-1 3x3 conv (no bias) + eval BatchNorm + ReLU, with replicate padding."""

    def __init__(
        self,
        weight: np.ndarray,
        gamma: np.ndarray,
        beta: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        dilation: int,
        dtype=np.float32,
    ):
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPS)
        cout, cin = weight.shape[:2]
        # (out, in, ky, kx) -> (out, ky, kx, in): the column order of the gathered operand
        folded = weight.astype(np.float64) * scale[:, None, None, None]
        self.weight = np.ascontiguousarray(folded.transpose(0, 2, 3, 1).reshape(cout, 9 * cin), dtype)
        self.bias = (beta.astype(np.float64) - mean.astype(np.float64) * scale).astype(dtype)[:, None]
        self.dilation = int(dilation)
        self.cin, self.cout = cin, cout

    def __call__(self, x: np.ndarray) -> np.ndarray:
        c, h, w = x.shape
        d = self.dilation
        taps = np.empty((3, 3, c, h, w), self.weight.dtype)
        for ky in range(3):
            for kx in range(3):  # tap (ky, kx) reads x at (i + (ky - 1) d, j + (kx - 1) d), clamped
                for rows_to, rows_from in _clamped_shift(h, (ky - 1) * d):
                    for cols_to, cols_from in _clamped_shift(w, (kx - 1) * d):
                        taps[ky, kx, :, rows_to, cols_to] = x[:, rows_from, cols_from]
        out = matmul(self.weight, taps.reshape(9 * c, h * w))
        out += self.bias
        np.maximum(out, 0.0, out=out)
        return out.reshape(self.cout, h, w)


def _clamped_shift(n: int, s: int):
    """``(to, from)`` slice pairs such that ``y[to] = x[from]`` gives ``y[i] = x[clamp(i + s, 0, n - 1)]``:
    a shift with replicate padding, as slice copies (a one-element ``from`` broadcasts)."""
    if s == 0:
        return [(slice(0, n), slice(0, n))]
    if s > 0:
        k = max(n - s, 0)
        return [(slice(0, k), slice(s, s + k)), (slice(k, n), slice(n - 1, n))]
    k = min(-s, n)
    return [(slice(0, k), slice(0, 1)), (slice(k, n), slice(0, n - k))]


class Linear:
    """A 1x1 convolution (``bias`` optional) applied to every pixel of a (C, H, W) block."""

    def __init__(self, weight: np.ndarray, bias: Optional[np.ndarray] = None, dtype=np.float32):
        self.weight = np.ascontiguousarray(weight.reshape(weight.shape[0], -1), dtype)
        self.bias = None if bias is None else np.asarray(bias, dtype)[:, None]

    def __call__(self, x: np.ndarray, relu: bool = False) -> np.ndarray:
        c, h, w = x.shape
        out = matmul(self.weight, np.ascontiguousarray(x).reshape(c, h * w))
        if self.bias is not None:
            out += self.bias
        if relu:
            np.maximum(out, 0.0, out=out)
        return out.reshape(-1, h, w)


def box_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over the k x k window around each pixel, counting only pixels inside the image
    (torch's ``avg_pool2d(..., count_include_pad=False)`` applied separably, as ``blocks.box_mean``)."""
    if k <= 1:
        return x
    out = np.empty_like(x)
    box_means_into(x, (k,), out)
    return out


def box_means_into(x: np.ndarray, kernels: Sequence[int], out: np.ndarray) -> np.ndarray:
    """``out = [box_mean(x, k) for k in kernels]`` stacked on the channel axis, written in place.

    Separable: window means along the rows for every kernel at once, then along the columns.
    Window sums are built by doubling (a sum of 2m values is two sums of m) over a zero-padded
    copy, so a k-wide sum costs about log2(k) array additions in the input's precision, each
    value carrying about log2(k) roundings (torch's pooling adds k values one by one)."""
    if not kernels:
        return out
    c = x.shape[0]
    across = _window_means(x, [k // 2 for k in kernels], axis=1)
    for i, (k, rows_done) in enumerate(zip(kernels, across)):
        target = out[i * c : (i + 1) * c]
        if k <= 1:
            target[...] = x
        else:
            target[...] = _window_means(rows_done, [k // 2], axis=2)[0]
    return out


def _window_means(x: np.ndarray, radii: Sequence[int], axis: int) -> List[np.ndarray]:
    """For each radius r: the mean of ``x`` over ``[i - r, i + r]`` along ``axis``, counting only
    the positions inside the array (``count_include_pad=False``)."""
    n = x.shape[axis]
    big = max(radii)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (big, big)
    padded = np.pad(x, pad)  # zeros: they add nothing to a sum

    def along(a: np.ndarray, start: int, length: int) -> np.ndarray:
        index = [slice(None)] * a.ndim
        index[axis] = slice(start, start + length)
        return a[tuple(index)]

    sums = {1: padded}  # sums[m][j] = padded[j] + ... + padded[j + m - 1]
    m = 1
    while 2 * m <= 2 * big + 1:
        prev = sums[m]
        length = prev.shape[axis] - m
        sums[2 * m] = along(prev, 0, length) + along(prev, m, length)
        m *= 2
    i = np.arange(n)
    shape = [1] * x.ndim
    shape[axis] = n
    means = []
    for r in radii:
        if r == 0:
            means.append(x)
            continue
        width, start, total = 2 * r + 1, big - r, None
        for bit in sorted(sums, reverse=True):  # the binary digits of the window width
            if width & bit:
                part = along(sums[bit], start, n)
                total = part.copy() if total is None else np.add(total, part, out=total)
                start += bit
        counts = np.minimum(i + r + 1, n) - np.maximum(i - r, 0)
        total /= counts.reshape(shape).astype(x.dtype)
        means.append(total)
    return means


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in place; exp overflowing to inf gives exactly 0, as it should."""
    np.negative(x, out=x)
    with np.errstate(over="ignore"):
        np.exp(x, out=x)
    x += 1.0
    np.reciprocal(x, out=x)
    return x


def _trunk(
    tensors: Mapping[str, np.ndarray], prefix: str, dilations: Sequence[int], dtype
) -> List[FoldedConv3x3]:
    layers = []
    for i, d in enumerate(dilations):
        p = f"{prefix}.{i}"
        layers.append(
            FoldedConv3x3(
                tensors[f"{p}.0.weight"],
                tensors[f"{p}.1.weight"],
                tensors[f"{p}.1.bias"],
                tensors[f"{p}.1.running_mean"],
                tensors[f"{p}.1.running_var"],
                d,
                dtype,
            )
        )
    return layers


class NumpySpectral:
    """``spe = P(embed(x))``, ``embed = [trunk(ConvH(x)), ConvH(x) if skip, box means]``."""

    def __init__(self, arch: SpectralArch, tensors: Mapping[str, np.ndarray], dtype=np.float32):
        self.arch = arch
        self.convh = Linear(tensors["spectral.convh.weight"], dtype=dtype)
        self.trunk = _trunk(tensors, "spectral.trunk.module.layers", arch.dilations, dtype)
        self.proj1 = Linear(tensors["spectral.proj.conv1.weight"], tensors["spectral.proj.conv1.bias"], dtype)
        self.proj2 = Linear(tensors["spectral.proj.conv2.weight"], tensors["spectral.proj.conv2.bias"], dtype)
        self.halo = arch.halo

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = self.convh(x)
        f = h
        for layer in self.trunk:
            f = layer(f)
        if not self.arch.skip and not self.arch.pools:
            embed = f
        else:
            c, rows, cols = f.shape
            embed = np.empty((self.arch.embed_channels, rows, cols), f.dtype)
            embed[:c] = f
            if self.arch.skip:
                embed[c : 2 * c] = h
            box_means_into(f, self.arch.pools, embed[c * (1 + int(self.arch.skip)) :])
        return self.proj2(self.proj1(embed, relu=True), relu=self.arch.out_act == "relu")


class NumpySpatial:
    """``spa = head(trunk(rgb(x)))`` with ``rgb = sigmoid(1x1(relu(1x1(x))))``; returns spa only."""

    def __init__(self, arch: SpatialArch, tensors: Mapping[str, np.ndarray], dtype=np.float32):
        self.arch = arch
        self.rgb1 = Linear(tensors["spatial.rgb.conv1.weight"], tensors["spatial.rgb.conv1.bias"], dtype)
        self.rgb2 = Linear(tensors["spatial.rgb.conv2.weight"], tensors["spatial.rgb.conv2.bias"], dtype)
        self.trunk = _trunk(tensors, "spatial.trunk.module.layers", arch.dilations, dtype)
        self.head1 = Linear(tensors["spatial.head.conv1.weight"], dtype=dtype)
        self.head2 = Linear(tensors["spatial.head.conv2.weight"], dtype=dtype)
        self.halo = arch.halo

    def __call__(self, x: np.ndarray) -> np.ndarray:
        f = _sigmoid(self.rgb2(self.rgb1(x, relu=True)))
        for layer in self.trunk:
            f = layer(f)
        z = np.empty((f.shape[0] * len(self.arch.pools),) + f.shape[1:], f.dtype)
        box_means_into(f, self.arch.pools, z)
        return self.head2(self.head1(z, relu=True))


def numpy_networks(arch: Arch, tensors: Mapping[str, np.ndarray], dtype=np.float32) -> Dict[str, Any]:
    """The deployed networks of a validated card (``card.ModelCard``) as numpy callables taking
    and returning ``(C, H, W)`` arrays of ``dtype`` (float32 in the product; float64 lets the
    tests compare the arithmetic with torch's below float32 rounding)."""
    nets: Dict[str, object] = {"spectral": NumpySpectral(arch.spectral, tensors, dtype)}
    if arch.spatial is not None:
        nets["spatial"] = NumpySpatial(arch.spatial, tensors, dtype)
    return nets


def bytes_per_pixel(arch: Arch) -> int:
    """Working memory of one forward pass per pixel (the largest layer's operands, float32)."""
    s = arch.spectral
    sizes: List[Tuple[int, ...]] = [
        (arch.bands, 9 * s.width, s.width, s.width),
        (s.embed_channels, s.hidden, arch.bands),
    ]
    if arch.spatial is not None:
        p = arch.spatial
        sizes += [
            (arch.bands, p.rgb_hidden, 3),
            (9 * p.width, p.width, p.width),
            (p.width * len(p.pools) + 4 * p.width, p.hidden, arch.bands),
        ]
    return 4 * max(sum(t) for t in sizes) + 4 * arch.bands
