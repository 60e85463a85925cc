"""Band selection, wavelength units and spectral resampling onto a model's band grid.

Everything here works on index arrays and small matrices, never on pixels: a selection is an
``int64`` index array handed to ``Scene.read(..., bands=idx)``, and a resampling is a matrix
``R (B_target, B_source)`` applied per block with ``resample_block`` (``np.tensordot`` over the
band axis), so the whole spectral path stays streamed and vectorised.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .scene import band_index_array

_NM = {"nanometers", "nanometer", "nanometres", "nanometre", "nm"}
_UM = {
    "micrometers",
    "micrometer",
    "micrometres",
    "micrometre",
    "microns",
    "micron",
    "um",
    "\u00b5m",
    "\u03bcm",
    "mum",
}
_MM = {"millimeters", "millimeter", "millimetres", "millimetre", "mm"}
_NO_WAVELENGTH = {"index", "band", "bands", "ghz", "mhz", "hz", "wavenumber", "cm-1", "1/cm"}

# Anything outside this window after conversion is not a wavelength of an imaging spectrometer
# (it is a band-index list, a target spectrum, a count): better no wavelengths than wrong ones.
PLAUSIBLE_NM = (100.0, 100_000.0)


def wavelengths_to_nm(values, units: Optional[str]) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """Convert wavelengths to nm; returns ``(nm or None, note or None)``.

    Units are taken from the file when it names them; without a usable unit the values are
    guessed to be micrometres when they are below 100 (nobody images at < 100 nm), else nm.
    The note says when a guess was made or why the values were rejected.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0 or not np.isfinite(arr).all():
        return None, "wavelengths ignored: empty or non-finite values"
    unit = (units or "").strip().lower()
    note = None
    if unit in _NO_WAVELENGTH:
        return None, f"wavelengths ignored: units '{units}' are not a wavelength"
    if unit in _NM:
        scale = 1.0
    elif unit in _UM:
        scale = 1000.0
    elif unit in _MM:
        scale = 1e6
    else:
        scale = 1000.0 if float(np.median(arr)) < 100.0 else 1.0
        guessed = "micrometres" if scale == 1000.0 else "nanometres"
        shown = f"'{units}'" if units else "no unit"
        note = f"wavelength unit guessed as {guessed} ({shown} in the file)"
    nm = arr * scale
    if nm.min() < PLAUSIBLE_NM[0] or nm.max() > PLAUSIBLE_NM[1]:
        return None, (f"wavelengths ignored: {nm.min():g}..{nm.max():g} nm is not a plausible spectral range")
    return nm, note


def select_bands(
    info,
    indices: Optional[Sequence[int]] = None,
    wavelength_ranges: Optional[Sequence[Tuple[float, float]]] = None,
    drop_bad_bands: bool = False,
) -> np.ndarray:
    """Sorted 0-based band indices kept by all the given criteria (an intersection).

    ``info`` is a ``SceneInfo`` (or anything with ``count``, ``wavelengths``, ``bad_bands``,
    ``path``). ``indices`` are 0-based; a CLI that counts from 1 converts before calling.
    ``wavelength_ranges`` are inclusive ``(low, high)`` pairs in nm, e.g. ``[(400, 1340),
    (1450, 1800)]``. ``drop_bad_bands`` removes the bands the ENVI ``bbl`` marks bad (a no-op
    when the file has no ``bbl``).
    """
    count = int(info.count)
    name = _name(info)
    keep = np.ones(count, dtype=bool)
    if indices is not None:
        idx = band_index_array(indices, count, name)
        chosen = np.zeros(count, dtype=bool)
        chosen[idx] = True
        keep &= chosen
    if wavelength_ranges is not None:
        wl = getattr(info, "wavelengths", None)
        if wl is None:
            raise InputError(f"cannot select bands by wavelength: {name} has no wavelengths")
        ranges = list(wavelength_ranges)
        if not ranges:
            raise InputError("band selection is empty: no wavelength ranges given")
        inside = np.zeros(count, dtype=bool)
        for pair in ranges:
            try:
                lo, hi = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise InputError(f"wavelength range {pair!r} is not a (low, high) pair in nm") from None
            if not lo <= hi:
                raise InputError(f"wavelength range {lo:g}-{hi:g} nm has low > high")
            inside |= (wl >= lo) & (wl <= hi)
        keep &= inside
    if drop_bad_bands and getattr(info, "bad_bands", None) is not None:
        keep &= np.asarray(info.bad_bands, dtype=bool)
    out = np.flatnonzero(keep).astype(np.int64)
    if out.size == 0:
        raise InputError(f"band selection is empty: no band of {name} meets all the criteria")
    return out


def first_n(source_count: int, n: int) -> np.ndarray:
    """Indices of the first ``n`` bands: the paper's protocol for feeding a fixed-size model."""
    if n < 1:
        raise InputError(f"the number of bands to keep must be at least 1, got {n}")
    if source_count < n:
        raise InputError(f"the input has {source_count} bands but {n} are needed (first-N bands)")
    return np.arange(n, dtype=np.int64)


def resampling_matrix(
    source_wavelengths: Optional[np.ndarray],
    source_count: int,
    target_wavelengths: Optional[np.ndarray],
    target_count: int,
) -> Tuple[np.ndarray, str]:
    """``(R float32 (B_target, B_source), description)`` mapping source spectra onto a target grid.

    With wavelengths on both sides, each target band is linearly interpolated between the two
    source bands around its wavelength; targets outside the source range take the nearest
    source band (the description says how many). Otherwise both band axes are normalised to
    0..1 and interpolated the same way, which is the best guess without spectral metadata.
    Every row sums to 1, so a constant or linear spectrum is reproduced exactly.
    Apply with ``resample_block(block, R)``.
    """
    if source_count < 1 or target_count < 1:
        raise InputError(f"cannot resample {source_count} bands onto {target_count} bands")
    src = _check_wl(source_wavelengths, source_count, "input")
    tgt = _check_wl(target_wavelengths, target_count, "target")
    if src is not None and tgt is not None:
        if src.shape == tgt.shape and np.allclose(src, tgt, rtol=0, atol=1e-3):
            return np.eye(target_count, dtype=np.float32), "wavelengths match: no resampling"
        order = np.argsort(src, kind="stable")
        R_sorted, outside = _interp_matrix(src[order], tgt)
        R = np.zeros_like(R_sorted)
        R[:, order] = R_sorted
        desc = (
            f"resampled {source_count} -> {target_count} bands by wavelength (linear "
            f"interpolation, input {src.min():.1f}-{src.max():.1f} nm, target "
            f"{tgt.min():.1f}-{tgt.max():.1f} nm)"
        )
        if outside:
            desc += (
                f"; {outside} target band(s) outside the input range were clamped to the nearest input band"
            )
        return R.astype(np.float32), desc
    if source_count == target_count:
        missing = "input" if src is None else "target"
        return (
            np.eye(target_count, dtype=np.float32),
            f"same band count ({source_count}) and no {missing} wavelengths: bands used as they are",
        )
    R, _ = _interp_matrix(_unit_axis(source_count), _unit_axis(target_count))
    missing = "input and target" if src is None and tgt is None else ("input" if src is None else "target")
    desc = (
        f"resampled {source_count} -> {target_count} bands along the normalised band axis "
        f"(no {missing} wavelengths; linear interpolation)"
    )
    return R.astype(np.float32), desc


def resample_block(block: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Apply ``R (Bt, Bs)`` to a bands-first block ``(Bs, rows, cols)`` -> ``(Bt, rows, cols)``."""
    if block.shape[0] != R.shape[1]:
        raise InputError(f"block has {block.shape[0]} bands but the resampling expects {R.shape[1]}")
    out = np.tensordot(R, block, axes=(1, 0))
    return out.astype(np.float32, copy=False)


# -- helpers ----------------------------------------------------------------------------------
def _name(info) -> str:
    path = getattr(info, "path", None)
    return f"'{path}'" if path else "the scene"


def _unit_axis(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)


def _check_wl(wl, count: int, side: str) -> Optional[np.ndarray]:
    if wl is None:
        return None
    arr = np.asarray(wl, dtype=np.float64).ravel()
    if arr.size != count:
        raise InputError(f"{side} has {count} bands but {arr.size} wavelengths")
    if not np.isfinite(arr).all():
        raise InputError(f"{side} wavelengths contain non-finite values")
    return arr


def _interp_matrix(src_sorted: np.ndarray, tgt: np.ndarray):
    """Linear-interpolation weights from an ascending source axis; clamps outside the range."""
    ns, nt = src_sorted.size, tgt.size
    R = np.zeros((nt, ns), dtype=np.float64)
    rows = np.arange(nt)
    if ns == 1:
        R[:, 0] = 1.0
        outside = int(np.count_nonzero(tgt != src_sorted[0]))
        return R, outside
    below = tgt <= src_sorted[0]
    above = tgt >= src_sorted[-1]
    outside = int(np.count_nonzero(tgt < src_sorted[0]) + np.count_nonzero(tgt > src_sorted[-1]))
    j = np.clip(np.searchsorted(src_sorted, tgt, side="right") - 1, 0, ns - 2)
    lo, hi = src_sorted[j], src_sorted[j + 1]
    span = hi - lo
    a = np.where(span > 0, (tgt - lo) / np.where(span > 0, span, 1.0), 0.0)
    a = np.clip(a, 0.0, 1.0)
    a[below] = 0.0
    a[above] = 1.0
    j[below] = 0
    j[above] = ns - 2
    np.add.at(R, (rows, j), 1.0 - a)
    np.add.at(R, (rows, j + 1), a)
    return R, outside
