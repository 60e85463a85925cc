"""Implanted anomalies and scene-level augmentation for the separation objective (numpy).

A group of crops from one training scene receives a few small targets: single pixels to blobs
of up to ``max_area`` px, each filled with one foreign spectrum mixed into the background at an
abundance from sub-pixel (``min_abundance``) to whole-pixel, with mixed (lower-abundance) blob
edges. The spectra are the host's own mean spectrum with a smooth change of shape (a different
material of similar brightness), ordinary pixels of another training scene (other materials,
other sensors), or, when a recipe asks for them, labelled anomaly pixels of training scenes (the
shipped recipes do not: those labels choose the epochs, which would then be chosen in-sample).
Only training scenes are donors: an evaluation scene never is (the trainer is never given one).

Augmentation, in the normalised space x = 0.1 * (2 * (raw - lo) / (hi - lo) - 1), where a
multiplicative change of the raw signal acts on (x + 0.1): a smooth illumination field per crop,
a smooth per-band gain per group (reflectance vs radiance vs DN), and sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .masks import grow_blobs

OFFSET = 0.1  # x + OFFSET is proportional to the raw signal above the scene's low quantile


@dataclass
class ImplantConfig:
    max_targets: int = 3  # per crop: 0..max_targets targets
    max_area: int = 12  # px
    min_abundance: float = 0.1
    # where a target's spectrum comes from, as shares: a labelled anomaly of the host scene
    # itself (a training scene: a real target material, same sensor), a labelled anomaly of
    # another training scene, the host's mean spectrum reshaped, a pixel of another scene
    own_anomaly: float = 0.0
    other_anomaly: float = 0.0
    host_shape: float = 0.6
    other_pixel: float = 0.4
    illumination: float = 0.25  # amplitude of the smooth per-crop illumination field
    band_gain: float = 0.15  # amplitude of the smooth per-group band gain
    noise: float = 0.003  # largest noise standard deviation (normalised units)


def smooth_curve(rng: np.random.Generator, n: int, knots: int = 6) -> np.ndarray:
    """A smooth random curve in [-1, 1] over ``n`` samples (linear through random knots)."""
    k = rng.uniform(-1, 1, size=knots)
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), k)


def smooth_field(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random field in [-1, 1]: a bilinear surface through a 3 x 3 grid of random knots."""
    k = rng.uniform(-1, 1, size=(3, 3))
    rows = np.array([np.interp(np.linspace(0, 2, w), np.arange(3), k[i]) for i in range(3)])
    return np.stack([np.interp(np.linspace(0, 2, h), np.arange(3), rows[:, j]) for j in range(w)], 1)


class Implanter:
    """Seeded target shapes; ``__call__`` implants into one crop group."""

    def __init__(self, seed: int = 0, config: ImplantConfig | None = None, bank: int = 512):
        self.cfg = config or ImplantConfig()
        rng = np.random.default_rng([seed, 77])
        blobs = grow_blobs(bank, rng, min_area=1, max_area=self.cfg.max_area)
        self.shapes = []
        for b in blobs:  # bank construction only (hundreds of tiny arrays), not per pixel
            yy, xx = np.nonzero(b)
            yy, xx = yy - yy.min(), xx - xx.min()
            inner = np.zeros(len(yy), bool)
            cells = set(zip(yy.tolist(), xx.tolist()))
            for i, (y, x) in enumerate(zip(yy, xx)):
                inner[i] = all((y + dy, x + dx) in cells for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)))
            self.shapes.append((yy, xx, inner))

    def augment(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Scene-level band gain and noise for the group, illumination per crop (x: (n, C, h, w))."""
        c = self.cfg
        n, bands, h, w = x.shape
        y = x + OFFSET
        if rng.random() < 0.5:
            y = y * (1.0 + c.band_gain * smooth_curve(rng, bands))[None, :, None, None]
        for i in range(n):
            if rng.random() < 0.5:
                y[i] *= (1.0 + c.illumination * smooth_field(rng, h, w))[None]
        out = (y - OFFSET).astype(np.float32)
        if rng.random() < 0.5:
            out += rng.normal(0.0, rng.uniform(0, c.noise), size=out.shape).astype(np.float32)
        return out

    def __call__(
        self, x: np.ndarray, weight: np.ndarray, donors: Donors, host: str, rng: np.random.Generator
    ):
        """(x with targets, abundance (n, 1, h, w)) for a crop group ``x`` (n, C, h, w) of the
        scene ``host``; ``weight`` (n, 1, h, w) is 0 on excluded pixels, where nothing goes."""
        c = self.cfg
        n, bands, h, w = x.shape
        out = x.copy()
        ab = np.zeros((n, 1, h, w), np.float32)
        host_mean = np.array(
            [
                x[i][:, weight[i, 0] > 0].mean(1) if (weight[i, 0] > 0).any() else x[i].mean((1, 2))
                for i in range(n)
            ]
        )
        shares = np.array([c.own_anomaly, c.other_anomaly, c.host_shape, c.other_pixel], np.float64)
        for i in range(n):
            for _ in range(int(rng.integers(0, c.max_targets + 1))):
                yy, xx, inner = self.shapes[int(rng.integers(0, len(self.shapes)))]
                if yy.max() >= h or xx.max() >= w:
                    continue
                r = int(rng.integers(0, h - yy.max()))
                q = int(rng.integers(0, w - xx.max()))
                py, px = yy + r, xx + q
                if (weight[i, 0, py, px] <= 0).any() or (ab[i, 0, py, px] > 0).any():
                    continue
                spec = donors.draw(host, shares, rng)
                if spec is None:  # host shape: a different material of similar brightness
                    shape = 1.0 + rng.uniform(0.1, 0.5) * smooth_curve(rng, bands, int(rng.integers(3, 9)))
                    spec = (host_mean[i] + OFFSET) * shape - OFFSET
                a = rng.uniform(c.min_abundance, 1.0)
                px_ab = np.where(inner, a, a * rng.uniform(0.3, 1.0, size=inner.size)).astype(np.float32)
                mix = out[i][:, py, px] * (1.0 - px_ab) + spec[:, None].astype(np.float32) * px_ab
                out[i][:, py, px] = mix
                ab[i, 0, py, px] = px_ab
        return out, ab


class Donors:
    """Target spectra for implanting, per training scene: its labelled anomaly pixels (normalised
    on their own scene) and a sample of its ordinary pixels."""

    def __init__(self, anomalies: dict, pixels: dict):
        self.anomalies = {k: v for k, v in anomalies.items() if v.shape[1]}
        self.pixels = {k: v for k, v in pixels.items() if v.shape[1]}

    def draw(self, host: str, shares: np.ndarray, rng: np.random.Generator):
        """One spectrum (C,) for a target in ``host``, or None for a reshaped host spectrum."""
        own = self.anomalies.get(host)
        others_a = [k for k in self.anomalies if k != host]
        others_p = [k for k in self.pixels if k != host]
        avail = shares * np.array([own is not None, bool(others_a), True, bool(others_p)], np.float64)
        kind = int(rng.choice(4, p=avail / avail.sum()))
        pool: Optional[np.ndarray]
        if kind == 0:
            pool = own
        elif kind == 1:
            pool = self.anomalies[others_a[int(rng.integers(0, len(others_a)))]]
        elif kind == 3:
            pool = self.pixels[others_p[int(rng.integers(0, len(others_p)))]]
        else:
            return None
        assert (
            pool is not None
        )  # kind 0 is drawn only where the host has anomalies (its share is 0 otherwise)
        spec = pool[:, int(rng.integers(0, pool.shape[1]))]
        return ((spec + OFFSET) * rng.uniform(0.8, 1.25) - OFFSET) if kind != 0 else spec


def spectral_gradient(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(n, 1, h, w) largest Euclidean spectral distance of each pixel to a 4-neighbour (excluded
    neighbours ignored): high on material boundaries."""
    n, c, h, w = x.shape
    g = np.zeros((n, 1, h, w), np.float32)
    ok = weight > 0
    for axis in (2, 3):
        d = np.sqrt(np.sum(np.diff(x, axis=axis) ** 2, axis=1, keepdims=True))
        both = np.logical_and(
            np.take(ok, range(0, ok.shape[axis] - 1), axis=axis),
            np.take(ok, range(1, ok.shape[axis]), axis=axis),
        )
        d = np.where(both, d, 0.0)
        lo = [slice(None)] * 4
        hi = [slice(None)] * 4
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        g[tuple(lo)] = np.maximum(g[tuple(lo)], d)
        g[tuple(hi)] = np.maximum(g[tuple(hi)], d)
    return g
