"""Training data: scenes -> the model's band grid -> normalised cubes, exclusion of known
anomalies, patch and crop sampling, and a validation split of background patches.

Labels are used in two places only, both on *training* files: their anomaly pixels (dilated)
are excluded from every loss and replaced in the input, and whole labelled scenes are kept for
choosing epochs and candidates (``validation.py``). Which file's truth is used, and where it was
found, is decided here and logged: ``truth="found"`` takes the mask stored in a ``.mat`` scene
or a file beside the scene named like ``<stem>Gt.bmp`` (``io.find_ground_truth``),
``truth="none"`` uses no label at all. A truth file that exists but cannot be read is an error,
never a silent "no labels". Each scene enters through the same band selection (ENVI bad bands
dropped), dead-band repair, band matrix and normalisation as ``fers detect``
(``inputs.fit_cube``), so training sees what detection sees.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np

from ..choices import TRUTH_POLICIES
from ..errors import FersError, InputError
from .inputs import Grid, fit_cube
from .validation import LabelledScene


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class RawScene:
    """A scene as read: bands-first float32 cube (bad bands dropped), validity, wavelengths in nm
    (None without), and its anomaly truth with where it came from (None: no truth used)."""

    path: Path
    cube: np.ndarray
    valid: np.ndarray
    wavelengths: Optional[np.ndarray]
    truth: Optional[np.ndarray] = None
    truth_source: Optional[str] = None

    @property
    def name(self) -> str:
        return self.path.name


def read_scene(path, truth: str = "found") -> RawScene:
    """Read a whole scene for training or benchmarking; ``truth`` is a policy of
    ``TRUTH_POLICIES`` or the path of a mask file for this scene."""
    from ..io import find_ground_truth, open_scene, read_ground_truth, select_bands

    path = Path(path)
    with open_scene(str(path)) as sc:
        bands = select_bands(sc.info, drop_bad_bands=True)
        cube, valid = sc.read(0, sc.info.height, bands)
        if valid.mean() < 0.5:
            # bands that are nodata everywhere (unlisted bad bands) would invalidate every pixel
            empty = [b for b in bands if not sc.read(0, sc.info.height, [b])[1].any()]
            if empty and len(empty) < len(bands):
                bands = np.array([b for b in bands if b not in set(empty)])
                cube, valid = sc.read(0, sc.info.height, bands)
        wl = None if sc.info.wavelengths is None else np.asarray(sc.info.wavelengths, np.float64)[bands]
    raw = RawScene(path, cube.astype(np.float32, copy=False), valid, wl)
    if truth == "none":
        return raw
    source = find_ground_truth(path) if truth == "found" else Path(truth)
    if truth not in TRUTH_POLICIES and (source is None or not source.is_file()):
        raise InputError(f"ground truth for {path.name} not found: {source}")
    if source is None:
        return raw
    try:
        mask = read_ground_truth(source, expected_shape=valid.shape)
    except FersError as e:
        raise InputError(
            f"the ground truth of {path.name} ({Path(source).name}) cannot be used: {e}"
        ) from None
    raw.truth = np.asarray(mask, bool)
    raw.truth_source = "stored in the file" if Path(source) == path else Path(source).name
    return raw


def model_grid(scenes: Sequence[RawScene], bands: int, reporter=None) -> Grid:
    """The band grid a new model gets: ``bands`` wavelengths evenly spread over the range every
    training scene covers when all of them carry wavelengths; else the normalised band axis
    (which is what the shipped models use: most benchmark scenes carry no wavelengths)."""
    missing = [s.name for s in scenes if s.wavelengths is None]
    if missing:
        if reporter is not None and len(missing) < len(scenes):
            reporter.info(
                f"band grid: {len(missing)} training scene(s) have no wavelengths "
                f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}), so the model "
                f"resamples every input along its band axis onto {bands} bands; the wavelengths "
                "of the others are not used"
            )
        return Grid(bands)
    grids = [s.wavelengths for s in scenes if s.wavelengths is not None]  # every scene's, here
    lo = max(float(w.min()) for w in grids)
    hi = min(float(w.max()) for w in grids)
    if not hi > lo:
        if reporter is not None:
            reporter.warning(
                "band grid: the training scenes' wavelength ranges do not overlap, so the "
                "model resamples along the band axis"
            )
        return Grid(bands)
    if reporter is not None:
        reporter.info(
            f"band grid: {bands} bands from {lo:.1f} to {hi:.1f} nm (the range every training "
            "scene covers); inputs are resampled by wavelength"
        )
    return Grid(bands, np.linspace(lo, hi, bands))


@dataclass
class TrainScene:
    name: str
    cube: np.ndarray  # (C, H, W) normalised float32, excluded pixels replaced (see below)
    excluded: np.ndarray  # (H, W) bool: invalid or (dilated) anomaly pixels
    val_cells: list  # [(r, c)] top-left corners of validation patches
    allowed: np.ndarray  # (Nr, Nc) bool: training patch top-lefts that avoid validation cells
    labelled: Optional[LabelledScene] = None  # the whole scene and its truth, for selection
    variants: List[np.ndarray] = field(default_factory=list)  # the cube on other band subsets

    @property
    def pixels(self) -> int:
        return int((~self.excluded).sum())


def prepare_scene(
    raw: RawScene,
    grid: Grid,
    exclude_path=None,
    dilate: int = 3,
    patch: int = 32,
    val_fraction: float = 0.15,
    seed: int = 0,
    reporter=None,
    keep_labelled: bool = True,
    band_variants: int = 0,
) -> TrainScene:
    """A training scene on ``grid``; with ``keep_labelled``, a scene with truth also keeps a whole
    copy for detection-based selection. ``band_variants`` extra copies are made from random band
    subsets of the input (a wavelength range cut at the ends and scattered bands dropped), for the
    band-grid augmentation."""
    from scipy import ndimage

    fitted = fit_cube(grid, raw.cube, raw.valid, raw.wavelengths)
    cube = fitted.apply(raw.cube)
    valid, truth = raw.valid, raw.truth
    labelled = None
    if keep_labelled and truth is not None and (truth & valid).any() and (~truth & valid).any():
        labelled = LabelledScene(raw.name, cube.copy(), valid.copy(), truth.copy())
    excluded = ~valid
    how = ""
    if exclude_path is not None:
        from ..io import read_ground_truth

        try:
            excluded = excluded | read_ground_truth(str(exclude_path), expected_shape=valid.shape)
        except FersError as e:
            raise InputError(f"exclusion mask {Path(exclude_path).name} for {raw.name}: {e}") from None
        how = f"exclusion mask {Path(exclude_path).name}"
    elif truth is not None:
        excluded = excluded | (ndimage.binary_dilation(truth, iterations=dilate) if dilate > 0 else truth)
        how = f"ground truth ({raw.truth_source}) dilated by {dilate} px"
    h, w = excluded.shape
    if h < patch or w < patch:
        raise InputError(f"{raw.name}: scene {h}x{w} is smaller than the {patch}-px training patch")
    rng = np.random.default_rng([seed, int(hashlib.md5(raw.name.encode()).hexdigest()[:8], 16)])
    variants = [_band_variant(raw, grid, rng) for _ in range(band_variants)]
    cube[:, excluded] = 0.0
    for v in variants:
        v[:, excluded] = 0.0
    # validation cells: a seeded draw over the grid of whole patch-sized cells
    cells = [(r * patch, c * patch) for r in range(h // patch) for c in range(w // patch)]
    nval = max(1, int(round(val_fraction * len(cells)))) if len(cells) >= 4 else 0
    pick: Any = rng.choice(len(cells), size=nval, replace=False) if nval else []
    val_cells = [cells[i] for i in sorted(pick)]
    forbid = np.zeros((h, w), np.int32)
    for r, c in val_cells:
        forbid[r : r + patch, c : c + patch] = 1
    ii = np.pad(forbid.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    nr, nc = h - patch + 1, w - patch + 1
    s = (
        ii[patch : patch + nr, patch : patch + nc]
        - ii[:nr, patch : patch + nc]
        - ii[patch : patch + nr, :nc]
        + ii[:nr, :nc]
    )
    allowed = s == 0
    if reporter is not None:
        label = (
            "no ground truth"
            if truth is None
            else f"ground truth {raw.truth_source}: {int(truth.sum())} anomaly px"
        )
        reporter.info(
            f"training scene {raw.name}: {h}x{w}, {fitted.description}; {label}; "
            f"{int(excluded.sum())} px excluded{' (' + how + ')' if how else ''}; "
            f"{len(val_cells)} validation cells"
        )
    return TrainScene(raw.name, cube, excluded, val_cells, allowed, labelled, variants)


def _band_variant(raw: RawScene, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """The scene through another band set: 70-100 % of its band range, 0-10 % of the remaining
    bands dropped at random, resampled onto the same grid and normalised again."""
    b = raw.cube.shape[0]
    keep_n = int(round(b * rng.uniform(0.7, 1.0)))
    start = int(rng.integers(0, b - keep_n + 1))
    idx = np.arange(start, start + keep_n)
    drop = rng.random(idx.size) < rng.uniform(0.0, 0.1)
    drop[[0, -1]] = False
    idx = idx[~drop]
    wl = None if raw.wavelengths is None else raw.wavelengths[idx]
    sub = np.ascontiguousarray(raw.cube[idx])
    return fit_cube(grid, sub, raw.valid, wl).apply(sub)


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
    """Random training patches (published recipe) and per-scene crop groups (separation recipe)."""

    def __init__(self, scenes: Sequence[TrainScene], patch: int = 32):
        self.scenes = list(scenes)
        self.patch = patch
        self.pos = [np.argwhere(s.allowed) for s in self.scenes]
        self.weights = np.array([len(p) for p in self.pos], np.float64)
        if self.weights.sum() == 0:
            raise InputError("no training patch position left outside the validation cells")
        self.weights /= self.weights.sum()
        pix = np.array([s.pixels for s in self.scenes], np.float64)
        self.scene_weights = pix / pix.sum()

    def batch(self, rng: np.random.Generator, size: int):
        p = self.patch
        xs, ws = [], []
        which = rng.choice(len(self.scenes), size=size, p=self.weights)
        for i in which:
            s = self.scenes[i]
            r, c = self.pos[i][rng.integers(0, len(self.pos[i]))]
            x = s.cube[:, r : r + p, c : c + p]
            e = s.excluded[r : r + p, c : c + p]
            x, e = _augment(x, e, rng)
            xs.append(_fill_excluded(np.ascontiguousarray(x), np.ascontiguousarray(e)))
            ws.append((~e)[None].astype(np.float32))
        return np.stack(xs), np.stack(ws)

    def group(self, rng: np.random.Generator, crops: int, use_variants: bool = True):
        """``crops`` patches of one scene (chosen in proportion to its usable pixels), each rotated
        or flipped at random, from the scene's cube or one of its band variants: (x, weight, name)."""
        i = int(rng.choice(len(self.scenes), p=self.scene_weights))
        s = self.scenes[i]
        cubes = [s.cube] + (s.variants if use_variants else [])
        cube = cubes[int(rng.integers(0, len(cubes)))]
        p = self.patch
        xs, ws = [], []
        for _ in range(crops):
            r, c = self.pos[i][rng.integers(0, len(self.pos[i]))] if len(self.pos[i]) else (0, 0)
            x, e = _augment(cube[:, r : r + p, c : c + p], s.excluded[r : r + p, c : c + p], rng)
            xs.append(_fill_excluded(np.ascontiguousarray(x), np.ascontiguousarray(e)))
            ws.append((~e)[None].astype(np.float32))
        return np.stack(xs), np.stack(ws), s.name

    def validation(self):
        xs, ws = [], []
        for x, w, _ in self.validation_groups():
            xs.append(x)
            ws.append(w)
        if not xs:
            raise InputError("no validation patch: training scenes are too small for the patch size")
        return np.concatenate(xs), np.concatenate(ws)

    def validation_groups(self):
        """The fixed validation patches, one group per scene: [(x, weight, name)]."""
        p = self.patch
        out = []
        for s in self.scenes:
            xs, ws = [], []
            for r, c in s.val_cells:
                e = s.excluded[r : r + p, c : c + p]
                xs.append(_fill_excluded(s.cube[:, r : r + p, c : c + p], e))
                ws.append((~e)[None].astype(np.float32))
            if xs:
                out.append((np.stack(xs), np.stack(ws), s.name))
        return out
