"""MATLAB ``.mat`` benchmark cubes, with every key found by content rather than by name.

Benchmark files use arbitrary names (``data``, ``hsi_img``, ``Y``; ``map``, ``gt``,
``groundtruth``, ``gtImg_sub``), so names are only a tie-breaker. What is recognised:

* cube: the largest 3-D numeric array, rows x cols x bands on disk; or the unmixing layout
  ``Y`` (bands x pixels, MATLAB column-major) with two integer scalars whose product is the
  pixel count (``lines``/``cols``, ``nRow``/``nCol``) giving the image size;
* ground truth: a 2-D array of the image size (or its transpose) with exactly two values, one of
  them 0, and fewer than half the pixels set;
* validity mask: the same, but with at least half the pixels set (True = usable);
* wavelengths: a vector as long as the band axis, mostly increasing (overlapping spectrometers
  step back), in a plausible nm/µm range, and not a run of consecutive integers (Jasper
  Ridge's ``GT`` is a kept-band index list).

The whole file is loaded at open (MATLAB v5 files cannot be read piecewise); these benchmark
scenes are small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import InputError
from .bands import wavelengths_to_nm
from .scene import Scene, SceneInfo


def load_mat_arrays(path: Path) -> Dict[str, np.ndarray]:
    """Top-level numeric arrays of a ``.mat`` file in MATLAB's axis order (rows first)."""
    import scipy.io

    try:
        raw = scipy.io.loadmat(str(path))
    except NotImplementedError:  # scipy's answer to v7.3 (HDF5) files
        return _load_v73(path)
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError on garbage
        raise InputError(f"cannot read {path.name} as a MATLAB .mat file ({_first_line(exc)})") from None
    return {k: v for k, v in raw.items() if not k.startswith("__") and _numeric(v)}


def _load_v73(path: Path) -> Dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise InputError(
            f"{path.name} is a MATLAB v7.3 (HDF5) file: install h5py to read it, or re-save it "
            "in MATLAB with save(..., '-v7')"
        ) from None
    out: Dict[str, np.ndarray] = {}
    try:
        with h5py.File(str(path), "r") as f:
            for key, item in f.items():
                if isinstance(item, h5py.Dataset) and item.dtype.kind in "biuf":
                    # HDF5 stores MATLAB's column-major arrays with the axes reversed.
                    out[key] = np.asarray(item[()]).T
    except OSError as exc:
        raise InputError(f"cannot read {path.name} as a MATLAB v7.3 file ({_first_line(exc)})") from None
    return out


class MatScene(Scene):
    """A cube (and maybe ground truth, validity mask, wavelengths) from one ``.mat`` file."""

    def __init__(self, path, arrays: Optional[Dict[str, np.ndarray]] = None) -> None:
        self.path = Path(path)
        if arrays is None:
            arrays = load_mat_arrays(self.path)
        notes: List[str] = []
        cube, cube_key = _find_cube(arrays, self.path, notes)
        rows, cols, count = cube.shape
        self._cube: Optional[np.ndarray] = cube
        gt, valid, gt_key = _find_masks(arrays, (rows, cols), cube_key, notes)
        self._gt = gt
        self.ground_truth_key = gt_key
        self._valid = valid
        wl, wl_key = _find_wavelengths(arrays, count, cube_key, notes)
        self.info = SceneInfo(
            path=str(self.path),
            height=int(rows),
            width=int(cols),
            count=int(count),
            dtype=str(cube.dtype),
            wavelengths=wl,
            wavelength_units=None,  # .mat files never state a unit; see the note
            band_names=[f"Band {i + 1}" for i in range(count)],
            notes=notes,
        )
        self.cube_key = cube_key

    # -- extras ---------------------------------------------------------------------------------
    @property
    def ground_truth(self) -> Optional[np.ndarray]:
        """Anomaly mask ``bool (rows, cols)`` stored in the file, or None."""
        return None if self._gt is None else self._gt.copy()

    @property
    def valid_mask(self) -> Optional[np.ndarray]:
        """The file's own validity mask (True = usable), or None."""
        return None if self._valid is None else self._valid.copy()

    # -- Scene interface ----------------------------------------------------------------------
    def _read_raw(self, row0: int, row1: int, bands: np.ndarray) -> np.ndarray:
        if self._cube is None:
            raise InputError(f"{self.path.name} is closed")
        part = self._cube[row0:row1][:, :, bands]  # (rows, W, B), source dtype
        return np.ascontiguousarray(np.moveaxis(part, 2, 0))

    def _extra_valid(self, row0: int, row1: int) -> Optional[np.ndarray]:
        return None if self._valid is None else self._valid[row0:row1]

    def close(self) -> None:
        self._cube = None


# -- content detection ------------------------------------------------------------------------
def _find_cube(arrays: Dict[str, np.ndarray], path: Path, notes: List[str]) -> Tuple[np.ndarray, str]:
    cubes = [(k, v) for k, v in arrays.items() if v.ndim == 3 and v.dtype.kind in "iuf" and v.size]
    if cubes:
        largest = max(v.size for _, v in cubes)
        # rivals: cubes at least half the largest (a thumbnail or an RGB preview is not one)
        rivals = [(k, v) for k, v in cubes if 2 * v.size >= largest]
        if len(rivals) > 1:  # taking the largest would analyse the wrong data without a word
            listed = ", ".join(f"'{k}' {'x'.join(map(str, v.shape))}" for k, v in rivals)
            raise InputError(
                f"{path.name} holds {len(rivals)} hyperspectral cubes ({listed}) and FERS "
                "cannot tell which one to analyse: save that one alone in its own .mat file"
            )
        key, cube = rivals[0]
        return cube, key
    found = _unmixing_layout(arrays)
    if found is not None:
        key, cube, how = found
        notes.append(f"cube rebuilt from '{key}' ({how})")
        return cube, key
    keys = ", ".join(f"{k} {'x'.join(map(str, v.shape))}" for k, v in arrays.items()) or "none"
    raise InputError(f"no hyperspectral cube found in {path.name} (numeric arrays: {keys})")


def _unmixing_layout(arrays: Dict[str, np.ndarray]):
    """A bands x pixels (or pixels x bands) matrix plus image-size scalars, as in Jasper Ridge."""
    scalars = {
        k: int(v.ravel()[0])
        for k, v in arrays.items()
        if v.size == 1 and v.dtype.kind in "iuf" and float(v.ravel()[0]).is_integer() and v.ravel()[0] > 0
    }
    mats = sorted(
        ((k, v) for k, v in arrays.items() if v.ndim == 2 and v.dtype.kind in "iuf" and min(v.shape) > 1),
        key=lambda kv: -kv[1].size,
    )
    for key, mat in mats:
        for pix_axis in (1, 0):
            npix = mat.shape[pix_axis]
            size = _image_size(scalars, npix)
            if size is None:
                continue
            rows, cols = size
            pixels_by_bands = mat.T if pix_axis == 1 else mat
            # MATLAB column-major pixel order: pixel p = r + c * rows.
            cube = pixels_by_bands.reshape(cols, rows, -1).transpose(1, 0, 2)
            return (
                key,
                np.ascontiguousarray(cube),
                f"{mat.shape[0]}x{mat.shape[1]} -> {rows}x{cols}x{cube.shape[2]}, column-major",
            )
    return None


def _image_size(scalars: Dict[str, int], npix: int) -> Optional[Tuple[int, int]]:
    keys = list(scalars)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if scalars[a] * scalars[b] == npix and min(scalars[a], scalars[b]) > 1:
                ra, rb = _is_rows(a), _is_rows(b)
                if rb and not ra:
                    a, b = b, a
                elif not ra and not rb and (_is_cols(a) and not _is_cols(b)):
                    a, b = b, a
                return scalars[a], scalars[b]
    return None


def _is_rows(name: str) -> bool:
    n = name.lower()
    return any(h in n for h in ("row", "line", "height")) or n in ("nr", "m")


def _is_cols(name: str) -> bool:
    n = name.lower()
    return any(h in n for h in ("col", "sample", "width")) or n in ("nc", "n")


def _find_masks(arrays, shape: Tuple[int, int], cube_key: str, notes: List[str]):
    """``(ground truth, validity mask, gt key)`` among the two-valued image-sized arrays."""
    gts: List[Tuple[str, np.ndarray, bool]] = []
    valids: List[Tuple[str, np.ndarray, bool]] = []
    for key, arr in arrays.items():
        if key == cube_key or arr.ndim != 2:
            continue
        if arr.shape == shape:
            oriented = arr
        elif arr.shape == shape[::-1] and shape[0] != shape[1]:
            oriented = arr.T
        else:
            continue
        values = np.unique(oriented)
        if values.size != 2 or values[0] != 0:
            continue
        mask = oriented != 0
        (gts if mask.mean() < 0.5 else valids).append((key, mask, oriented is not arr))
    gt = valid = gt_key = None
    if gts:
        gt_key, gt, transposed = gts[0]
        if transposed:
            notes.append(f"ground truth '{gt_key}' is stored transposed; transposed to match the cube")
        if len(gts) > 1:
            notes.append(
                f"several ground-truth candidates ({', '.join(k for k, *_ in gts)}); using '{gt_key}'"
            )
    if valids:
        vkey, valid, _ = valids[0]
        notes.append(f"validity mask '{vkey}' applied ({int((~valid).sum())} pixels marked unusable)")
    return gt, valid, gt_key


def _find_wavelengths(arrays, count: int, cube_key: str, notes: List[str]):
    for key, arr in arrays.items():
        if key == cube_key or arr.size != count or count < 2 or arr.dtype.kind not in "iuf":
            continue
        if arr.ndim > 2 or (arr.ndim == 2 and min(arr.shape) != 1):
            continue
        v = arr.astype(np.float64).ravel()
        steps = np.diff(v)
        # Mostly increasing, not strictly: AVIRIS spectrometers overlap, so the Santa Barbara
        # vector steps back three times (e.g. 667.5 -> 655.5 nm).
        if not np.isfinite(v).all() or v[-1] <= v[0] or np.mean(steps > 0) < 0.9:
            continue
        if np.all(v == np.round(v)) and np.all(steps == 1):
            continue  # consecutive integers: a band-index list, not wavelengths
        nm, _ = wavelengths_to_nm(v, None)
        if nm is None:
            continue
        unit = "micrometres" if float(np.median(v)) < 100 else "nanometres"
        notes.append(f"wavelengths from key '{key}', unit guessed as {unit}")
        return nm, key
    return None, None


def _numeric(v) -> bool:
    return isinstance(v, np.ndarray) and v.dtype.kind in "biuf"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def mat_ground_truth(path, shape: Optional[Tuple[int, int]] = None) -> Optional[np.ndarray]:
    """The anomaly mask of a ``.mat`` file: the scene's own, or the only mask of a GT-only file.

    A file with a cube gives the mask matched to the cube's size; a file with just masks (a
    ground truth saved on its own) gives the two-valued 2-D array, of ``shape`` when given.
    """
    path = Path(path)
    arrays = load_mat_arrays(path)
    has_cube = any(v.ndim == 3 for v in arrays.values()) or _unmixing_layout(arrays) is not None
    if has_cube:
        return MatScene(path, arrays).ground_truth
    for arr in arrays.values():
        if arr.ndim != 2 or min(arr.shape) < 2:
            continue
        if shape is not None and arr.shape != tuple(shape):
            continue
        values = np.unique(arr)
        if values.size == 2 and values[0] == 0:
            return arr != 0
    return None
