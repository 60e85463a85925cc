"""Checks on an input scene's content, made before any work starts.

A scene can be opened and still be unusable for detection: complex samples (casting them to
real drops the imaginary part with nothing but a numpy warning), a single band, or a band
selection that keeps one band. Those are refused with one line. A band that holds no usable
value at all (every pixel NaN or nodata: water-absorption bands of reflectance products,
unused channels) is worse than useless: the reader marks a pixel invalid when *any* of its bands
is, so one such band leaves no valid pixel and no output. ``drop_empty_bands`` finds those bands
and drops them, naming them in the log.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..progress import SILENT, Reporter
from .scene import BandIndices

#: Bytes of one probe read in ``find_empty_bands`` (raw values plus a bool per value).
PROBE_BYTES = 64 * 2**20

#: Said when every valid pixel has the same spectrum, whatever the method.
CONSTANT_SCENE = (
    "the scene is constant: every valid pixel has the same spectrum, so no pixel can "
    "stand out and the scores carry no information"
)


def check_scene(info) -> None:
    """Refuse a scene whose samples are complex or that has fewer than two bands."""
    name = Path(str(info.path)).name
    if np.dtype(info.dtype).kind == "c":
        raise InputError(
            f"{name} holds complex samples ({info.dtype}); FERS needs real values: "
            "convert the raster to its magnitude or real part first"
        )
    if info.count < 2:
        raise InputError(
            f"{name} has {info.count} band; anomaly detection needs a multi-band (hyperspectral) raster"
        )


def check_band_count(info, bands: BandIndices) -> None:
    """Refuse a band selection that leaves fewer than two bands (RX on one band is a z-score)."""
    if len(bands) < 2:
        kept = f"only {band_labels(info, bands)}" if len(bands) else "no band"
        raise InputError(
            f"the band selection keeps {kept} of {Path(str(info.path)).name}; "
            "anomaly detection needs at least 2 bands"
        )


def find_empty_bands(scene, bands: BandIndices, probe_bytes: int = PROBE_BYTES) -> np.ndarray:
    """The bands of ``bands`` that hold no usable value anywhere in the scene.

    Reads row chunks from the top and stops as soon as every band has shown one usable value,
    so a normal scene costs one chunk; only a scene with an empty band (or a tall nodata
    collar) is read further, to the end in the worst case.
    """
    idx = np.asarray(bands, dtype=np.int64)
    info = scene.info
    if idx.size == 0:
        return idx
    rows = max(1, int(probe_bytes) // max(1, info.width * idx.size * 9))
    seen = np.zeros(idx.size, dtype=bool)
    for r0 in range(0, info.height, rows):
        r1 = min(info.height, r0 + rows)
        seen |= scene.read_band_validity(r0, r1, idx).any(axis=(1, 2))
        if seen.all():
            break
    return idx[~seen]


def drop_empty_bands(
    scene, bands: BandIndices, reporter: Reporter = SILENT, drop: bool = True, probe_bytes: int = PROBE_BYTES
) -> np.ndarray:
    """``bands`` without the empty ones, each dropped band named in one warning line; with
    ``drop=False`` an empty band is an error naming it instead."""
    idx = np.asarray(bands, dtype=np.int64)
    empty = find_empty_bands(scene, idx, probe_bytes)
    if empty.size == 0:
        return idx
    name = Path(str(scene.info.path)).name
    what = (
        f"{empty.size} band(s) of {name} hold no valid value (all NaN or nodata): "
        f"{band_labels(scene.info, empty)}"
    )
    kept = idx[~np.isin(idx, empty)]
    if not drop:
        raise InputError(what)
    if kept.size < 2:
        raise InputError(
            f"{what}; without them {kept.size} band(s) would be left, and anomaly detection needs at least 2"
        )
    reporter.warning(f"dropped {what}")
    return kept


def band_labels(info, bands: BandIndices, limit: int = 10) -> str:
    """'band 3 (1400.0 nm), band 7 (...)': GDAL's 1-based band numbers, as QGIS shows them, with
    the wavelength, or the band's own name, when the file gives one."""
    names = list(getattr(info, "band_names", None) or [])
    wl = getattr(info, "wavelengths", None)
    labels = []
    for b in list(bands)[:limit]:
        b = int(b)
        label = f"band {b + 1}"
        if wl is not None and b < len(wl):
            label += f" ({float(wl[b]):.1f} nm)"
        elif b < len(names) and names[b] and names[b].lower() != label:
            label += f" ({names[b]})"
        labels.append(label)
    more = len(bands) - limit
    return ", ".join(labels) + (f" and {more} more" if more > 0 else "")
