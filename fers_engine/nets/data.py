"""Training data: scenes -> model band grid -> normalised cubes, patch sampling with exclusion
masks, flips / 90-degree rotations, and a validation split of background patches.

No test label is used for anything but *excluding* anomaly pixels of training scenes (their
pixels get loss weight 0 and are replaced in the input by the patch's background mean). The
validation cells are chosen by a seeded draw over a grid of patch-sized cells, independent of
any label, and training patches never overlap them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError
from .normalise import Normaliser, DEFAULT as NORM_DEFAULT
from .validation import LabelledScene


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_mat_fallback(path: Path):
    from scipy.io import loadmat
    d = {k: v for k, v in loadmat(str(path)).items() if not k.startswith("__")}
    cubes = [(k, v) for k, v in d.items() if isinstance(v, np.ndarray) and v.ndim == 3]
    if not cubes:
        raise InputError(f"{path}: no 3-D cube found")
    k, cube = max(cubes, key=lambda kv: kv[1].size)
    h, w = cube.shape[:2]
    truth = None
    for kk, v in d.items():
        if isinstance(v, np.ndarray) and v.shape == (h, w) and kk != k:
            truth = v != 0
    cube = np.ascontiguousarray(np.moveaxis(cube, 2, 0).astype(np.float32))
    return cube, np.ones((h, w), bool), None, truth


def load_scene(path: str | Path):
    """(cube float32 (B, H, W), valid bool (H, W), wavelengths nm or None, truth bool or None)."""
    path = Path(path)
    try:
        from ..io import open_scene, read_ground_truth  # type: ignore
    except Exception:  # io not available yet: a minimal .mat reader
        return _load_mat_fallback(path)
    with open_scene(str(path)) as sc:
        cube, valid = sc.read_all()
        wl = sc.info.wavelengths
    truth = None
    try:
        truth = read_ground_truth(str(path))
    except Exception:
        truth = None
    if truth is not None and truth.shape != valid.shape:
        truth = None
    return cube.astype(np.float32, copy=False), valid, wl, truth


def band_axis_matrix(count: int, bands: int):
    from ..io.bands import resampling_matrix
    return resampling_matrix(None, count, None, bands)


@dataclass
class TrainScene:
    name: str
    cube: np.ndarray        # (C, H, W) normalised float32
    excluded: np.ndarray    # (H, W) bool: invalid or (dilated) anomaly pixels
    val_cells: list         # [(r, c)] top-left corners of validation patches
    allowed: np.ndarray     # (Nr, Nc) bool: training patch top-lefts that avoid validation cells
    labelled: Optional[LabelledScene] = None  # the whole scene and its truth, for selection


def prepare_scene(path, bands: int, exclude_path=None, dilate: int = 3, patch: int = 32,
                  val_fraction: float = 0.15, seed: int = 0, reporter=None,
                  wavelengths=None, keep_labelled: bool = True) -> TrainScene:
    """A training scene; with ``keep_labelled``, a scene with ground truth also keeps a whole
    copy for detection-based selection (``validation.py``)."""
    cube, valid, wl, truth = load_scene(path)
    R, desc = band_axis_matrix(cube.shape[0], bands) if wavelengths is None else \
        __import__("fers_engine.io.bands", fromlist=["x"]).resampling_matrix(wl, cube.shape[0], wavelengths, bands)
    cube = np.tensordot(R, cube, axes=(1, 0)).astype(np.float32)
    norm = Normaliser(**NORM_DEFAULT)
    norm.update(cube, valid)
    cube = norm.apply(cube)
    labelled = None
    if keep_labelled and truth is not None and (truth & valid).any() and (~truth & valid).any():
        labelled = LabelledScene(Path(path).name, cube.copy(), valid.copy(), truth.copy())
    excluded = ~valid
    if exclude_path is not None:
        from ..io import read_ground_truth  # type: ignore
        ex = read_ground_truth(str(exclude_path))
        excluded |= ex
    elif truth is not None:
        excluded |= ndimage.binary_dilation(truth, iterations=dilate) if dilate > 0 else truth
    cube[:, excluded] = 0.0
    h, w = excluded.shape
    if h < patch or w < patch:
        raise InputError(f"{path}: scene {h}x{w} is smaller than the {patch}-px training patch")
    # validation cells: a seeded draw over the grid of whole patch-sized cells
    name = Path(path).name
    rng = np.random.default_rng([seed, int(hashlib.md5(name.encode()).hexdigest()[:8], 16)])
    cells = [(r * patch, c * patch) for r in range(h // patch) for c in range(w // patch)]
    nval = max(1, int(round(val_fraction * len(cells)))) if len(cells) >= 4 else 0
    pick = rng.choice(len(cells), size=nval, replace=False) if nval else []
    val_cells = [cells[i] for i in sorted(pick)]
    forbid = np.zeros((h, w), np.int32)
    for r, c in val_cells:
        forbid[r:r + patch, c:c + patch] = 1
    ii = np.pad(forbid.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    nr, nc = h - patch + 1, w - patch + 1
    s = ii[patch:patch + nr, patch:patch + nc] - ii[:nr, patch:patch + nc] - ii[patch:patch + nr, :nc] + ii[:nr, :nc]
    allowed = s == 0
    if reporter is not None:
        reporter.info(f"training scene {name}: {h}x{w}, {desc}, {int(excluded.sum())} px excluded, "
                      f"{len(val_cells)} validation cells")
    return TrainScene(name, cube, excluded, val_cells, allowed, labelled)


def _augment(x: np.ndarray, e: np.ndarray, rng: np.random.Generator):
    k = int(rng.integers(0, 4))
    if k:
        x, e = np.rot90(x, k, axes=(1, 2)), np.rot90(e, k, axes=(0, 1))
    if rng.random() < 0.5:
        x, e = x[:, :, ::-1], e[:, ::-1]
    if rng.random() < 0.5:
        x, e = x[:, ::-1], e[::-1]
    return x, e


def _fill_excluded(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    if e.any():
        keep = ~e
        mean = x[:, keep].mean(1) if keep.any() else np.zeros(x.shape[0], np.float32)
        x = x.copy()
        x[:, e] = mean[:, None]
    return x


class PatchSampler:
    def __init__(self, scenes: Sequence[TrainScene], patch: int = 32):
        self.scenes = list(scenes)
        self.patch = patch
        self.pos = [np.argwhere(s.allowed) for s in self.scenes]
        self.weights = np.array([len(p) for p in self.pos], np.float64)
        if self.weights.sum() == 0:
            raise InputError("no training patch position left outside the validation cells")
        self.weights /= self.weights.sum()

    def batch(self, rng: np.random.Generator, size: int):
        p = self.patch
        xs, ws = [], []
        which = rng.choice(len(self.scenes), size=size, p=self.weights)
        for i in which:
            s = self.scenes[i]
            r, c = self.pos[i][rng.integers(0, len(self.pos[i]))]
            x = s.cube[:, r:r + p, c:c + p]
            e = s.excluded[r:r + p, c:c + p]
            x, e = _augment(x, e, rng)
            xs.append(_fill_excluded(np.ascontiguousarray(x), np.ascontiguousarray(e)))
            ws.append((~e)[None].astype(np.float32))
        return np.stack(xs), np.stack(ws)

    def validation(self):
        p = self.patch
        xs, ws = [], []
        for s in self.scenes:
            for r, c in s.val_cells:
                e = s.excluded[r:r + p, c:c + p]
                xs.append(_fill_excluded(s.cube[:, r:r + p, c:c + p], e))
                ws.append((~e)[None].astype(np.float32))
        if not xs:
            raise InputError("no validation patch: training scenes are too small for the patch size")
        return np.stack(xs), np.stack(ws)
