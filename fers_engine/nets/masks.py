"""Random-mask recipe of AETNet / HAD100 (method.md 3.3), vectorised and size-agnostic.

The tile is split into a grid of ``cell`` x ``cell`` cells (8 x 8 px as in the recipe, any tile
size); 1..``max_targets`` targets each take a distinct random cell and a uniform position in it;
each target is a random 4-connected blob of 3..20 px grown inside a 19 x 19 canvas (each
boundary neighbour accepted with p = 0.5 until the area is reached). Blobs come from a bank
grown once, all blobs at once, with array operations (no per-pixel Python loop).
"""

from __future__ import annotations

import numpy as np

CANVAS = 19


def grow_blobs(n: int, rng: np.random.Generator, min_area: int = 3, max_area: int = 20) -> np.ndarray:
    """(n, 19, 19) bool blobs, 4-connected, area uniform in [min_area, max_area]."""
    area = rng.integers(min_area, max_area + 1, size=n)
    blob = np.zeros((n, CANVAS, CANVAS), bool)
    blob[:, CANVAS // 2, CANVAS // 2] = True
    for _ in range(4 * max_area):
        have = blob.sum((1, 2))
        need = area - have
        if (need <= 0).all():
            break
        nb = np.zeros_like(blob)
        nb[:, 1:] |= blob[:, :-1]
        nb[:, :-1] |= blob[:, 1:]
        nb[:, :, 1:] |= blob[:, :, :-1]
        nb[:, :, :-1] |= blob[:, :, 1:]
        boundary = nb & ~blob
        accept = boundary & (rng.random(blob.shape) < 0.5)
        prio = np.where(accept, rng.random(blob.shape), -1.0).reshape(n, -1)
        order = np.argsort(-prio, axis=1)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :].repeat(n, 0), axis=1)
        take = (rank < np.maximum(need, 0)[:, None]) & (prio > 0)
        blob |= take.reshape(blob.shape)
    return blob


class MaskGenerator:
    def __init__(self, seed: int = 0, bank: int = 1024, cell: int = 8, max_targets: int = 32):
        rng = np.random.default_rng(seed)
        blobs = grow_blobs(bank, rng)
        # pixel offsets of each blob relative to its centre, padded with the centre itself
        self.offsets = np.zeros((bank, 20, 2), np.int64)
        for i in range(bank):  # bank construction only (1024 small arrays), not per pixel
            yy, xx = np.nonzero(blobs[i])
            k = len(yy)
            self.offsets[i, :k, 0] = yy - CANVAS // 2
            self.offsets[i, :k, 1] = xx - CANVAS // 2
        self.cell = cell
        self.max_targets = max_targets

    def __call__(self, rng: np.random.Generator, b: int, h: int, w: int) -> np.ndarray:
        """(b, h, w) float32 mask: 0 on targets, 1 elsewhere."""
        ch, cw = max(h // self.cell, 1), max(w // self.cell, 1)
        ncell = ch * cw
        t = min(self.max_targets, ncell)
        mask = np.ones((b, h, w), np.float32)
        n_targets = rng.integers(1, t + 1, size=b)
        # distinct cells: a random permutation per sample, keep the first n_targets
        cells = np.argsort(rng.random((b, ncell)), axis=1)[:, :t]
        use = np.arange(t)[None, :] < n_targets[:, None]
        cy = (cells // cw) * self.cell + rng.integers(0, self.cell, size=(b, t))
        cx = (cells % cw) * self.cell + rng.integers(0, self.cell, size=(b, t))
        which = rng.integers(0, len(self.offsets), size=(b, t))
        off = self.offsets[which]  # (b, t, 20, 2)
        yy = np.clip(cy[..., None] + off[..., 0], 0, h - 1)
        xx = np.clip(cx[..., None] + off[..., 1], 0, w - 1)
        bb = np.broadcast_to(np.arange(b)[:, None, None], yy.shape)
        sel = np.broadcast_to(use[..., None], yy.shape)
        mask[bb[sel], yy[sel], xx[sel]] = 0.0
        return mask


def fill_masked(x: np.ndarray, mask: np.ndarray, rng: np.random.Generator, mode: str = "mix") -> np.ndarray:
    """Paste content into the targets of ``x`` (b, C, h, w): 'zero', 'random', 'sin' or 'mix'
    (per sample one of no/zero/random/sin, as HADDataset_Aug)."""
    b, c = x.shape[:2]
    m = mask[:, None]
    if mode == "mix":
        kind = rng.integers(0, 4, size=b)
    else:
        kind = np.full(b, {"no": 0, "zero": 1, "random": 2, "sin": 3}[mode])
    fill = np.zeros_like(x)
    rnd = rng.uniform(-0.1, 0.1, size=x.shape).astype(np.float32)
    phase = rng.uniform(0, np.pi, size=b)
    bands = np.linspace(0, np.pi, c)[None, :]
    sin = (0.1 * np.sin(bands + phase[:, None])).astype(np.float32)[:, :, None, None]
    fill = np.where((kind == 2)[:, None, None, None], rnd, fill)
    fill = np.where((kind == 3)[:, None, None, None], np.broadcast_to(sin, x.shape), fill)
    out = x * m + fill * (1 - m)
    out = np.where((kind == 0)[:, None, None, None], x, out)
    return out.astype(np.float32)
