"""EnMAP L2A: the ``-SPECTRAL_IMAGE`` raster with the spectral description of ``-METADATA.XML``.

A delivered product is a folder (or its ZIP) holding ``<name>-SPECTRAL_IMAGE.{TIF,GEOTIFF,BSQ,
BIL,BIP,JP2}`` or ``<name>-SPECTRAL_IMAGE_COG.TIF`` and ``<name>-METADATA.XML`` (``.xml`` in the
wild). From the XML (``level_X/specific/bandCharacterisation/bandID``): centre wavelength, FWHM,
gain and offset per band (reflectance = DN * gain + offset); from ``product/bandStatistics``: the
no-data bands the processor wrote (standard deviation 0 and mean -1000000), marked bad. The
900-1000 nm region is seen by both detectors: the VNIR bands at or above the first SWIR band
(``specific/{vnir,swir}ProductQuality/expectedChannelsList``) are marked bad, so the overlap
is covered by SWIR only (EnMAP-Box's default choice). Files EnMAP-Box already converted carry
band-level ``wavelength``/``fwhm``/``bbl`` and scale/offset (the real Potsdam tiles flag their
no-data bands 130-135 with ``bbl = 0``); a band that holds only nodata in a sample of rows is
marked bad as well, for exports whose ``bbl`` does not say so.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..errors import InputError
from .gdal_cube import GdalCube, sibling_file

PRODUCT = "EnMAP L2A"
IMAGE_SUFFIXES = (
    "-SPECTRAL_IMAGE.TIF",
    "-SPECTRAL_IMAGE.GEOTIFF",
    "-SPECTRAL_IMAGE_COG.TIF",
    "-SPECTRAL_IMAGE.BSQ",
    "-SPECTRAL_IMAGE.BIL",
    "-SPECTRAL_IMAGE.BIP",
    "-SPECTRAL_IMAGE.JP2",
)
METADATA_SUFFIX = "-METADATA.XML"
NO_DATA_MEAN = -1000000.0
SCAN_ROWS = 32  # rows sampled to find the no-data bands of an EnMAP-Box export


def is_enmap_name(path: Path) -> bool:
    """An EnMAP product by its file name: the metadata XML, the delivered ZIP or the image."""
    name = path.name.upper()
    if not name.startswith("ENMAP") or "L2A" not in name:
        return False
    return (
        name.endswith(METADATA_SUFFIX)
        or name.endswith(".ZIP")
        or any(name.endswith(s) for s in IMAGE_SUFFIXES)
    )


def is_enmap_box_export(ds) -> bool:
    """A raster EnMAP-Box wrote from an EnMAP L2A product: 224 bands named
    ``band N (W Nanometers)`` with band-level wavelengths and a reflectance scale."""
    if ds.RasterCount != 224:
        return False
    band = ds.GetRasterBand(1)
    return (
        re.match(r"^band \d+ \(.+ nanometers\)$", (band.GetDescription() or "").lower()) is not None
        and "wavelength" in (band.GetMetadata() or {})
        and band.GetScale() not in (None, 1.0)
    )


class EnmapScene(GdalCube):
    """EnMAP L2A from its metadata XML, its ZIP, its image, or an EnMAP-Box export."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        label = path.name
        name = path.name.upper()
        if name.endswith(".ZIP"):
            image, root, files = _from_zip(path)
        elif name.endswith(METADATA_SUFFIX):
            image, root, files = _from_folder(path, label)
        elif is_enmap_name(path):  # the image, with its metadata beside it
            meta = sibling_file(path, _stem_of(path) + METADATA_SUFFIX)
            if meta is None:
                raise InputError(
                    f"{label}: {_stem_of(path)}-METADATA.XML is missing beside it; "
                    "EnMAP wavelengths, gains and no-data bands live there"
                )
            image, root, files = str(path), _parse_xml(meta.read_bytes(), meta.name), [meta]
        else:  # an EnMAP-Box export: everything is in the raster itself
            super().__init__(str(path), label, f"{PRODUCT} (EnMAP-Box export)")
            with self.closed_on_error():
                self._mark_empty_bands()
            return
        super().__init__(image, label, PRODUCT, files)
        with self.closed_on_error():
            self._apply_metadata(root)

    def _apply_metadata(self, root) -> None:
        info = self.info
        bands = root.findall("specific/bandCharacterisation/bandID")
        if not bands:
            raise InputError(
                f"{self.label}: METADATA.XML has no specific/bandCharacterisation/bandID "
                "entries (not an EnMAP metadata file)"
            )

        def values(tag: str) -> List[Optional[str]]:
            return [b.findtext(tag) for b in bands]

        wl, fwhm, gain, offset = (
            values(t) for t in ("wavelengthCenterOfBand", "FWHMOfBand", "GainOfBand", "OffsetOfBand")
        )
        if any(v is None for v in wl):
            raise InputError(f"{self.label}: a bandID in METADATA.XML has no wavelengthCenterOfBand")
        self.set_spectral(wl, "Nanometers", fwhm if None not in fwhm else None)
        good = np.ones(info.count, dtype=bool)
        stats = root.findall("product/bandStatistics/bandID")
        means = [_float(b.findtext("mean")) for b in stats]
        stds = [_float(b.findtext("stdDeviation")) for b in stats]
        if len(means) == info.count == len(stds):
            empty = [i for i in range(info.count) if stds[i] == 0.0 and means[i] == NO_DATA_MEAN]
            good[empty] = False
            if empty:
                info.notes.append(
                    f"{len(empty)} no-data band(s) in METADATA.XML marked bad: " + _band_list(empty)
                )
        overlap = _overlap_vnir_bands(root, info.wavelengths)
        if overlap:
            good[overlap] = False
            info.notes.append(
                f"VNIR/SWIR overlap: {len(overlap)} VNIR band(s) at or above the first "
                "SWIR band marked bad (SWIR only in the overlap)"
            )
        info.bad_bands = good
        if all(v is not None for v in gain):
            g = np.array([float(v) for v in gain if v is not None])
            o = np.array([float(v) if v is not None else 0.0 for v in offset])
            info.scale, info.offset = g, (None if np.all(o == 0.0) else o)

    def _mark_empty_bands(self) -> None:
        """Mark bands with no valid value in a sample of rows (while other bands have data)."""
        info = self.info
        rows = np.unique(np.linspace(0, info.height - 1, min(SCAN_ROWS, info.height)).astype(int))
        seen = np.zeros(info.count, dtype=bool)
        any_data = False
        idx = np.arange(info.count)
        nodata = self._nodata_for(idx)
        for r in rows:
            raw = self._read_raw(int(r), int(r) + 1, idx)[:, 0, :].astype(np.float64)
            ok = np.isfinite(raw)
            for k, nd in enumerate(nodata):
                if nd is not None:
                    ok[k] &= raw[k] != nd
            pixels = ok.any(axis=0)
            any_data |= bool(pixels.any())
            seen |= ok[:, pixels].any(axis=1)
        if not any_data:
            return
        good = np.ones(info.count, bool) if info.bad_bands is None else info.bad_bands.copy()
        empty = np.flatnonzero(~seen & good)  # only what the file's own bbl did not flag
        if empty.size:
            good[empty] = False
            info.bad_bands = good
            info.notes.append(
                f"{empty.size} band(s) not flagged by bbl hold only nodata in {len(rows)} "
                "sampled rows and are marked bad: " + _band_list(empty.tolist())
            )


# -- locating the parts of a product ----------------------------------------------------------
def _stem_of(path: Path) -> str:
    upper = path.name.upper()
    for suffix in IMAGE_SUFFIXES + (METADATA_SUFFIX,):
        if upper.endswith(suffix):
            return path.name[: len(path.name) - len(suffix)]
    return path.stem


def _from_folder(meta: Path, label: str) -> Tuple[str, object, List[Path]]:
    stem = _stem_of(meta)
    for suffix in IMAGE_SUFFIXES:
        image = sibling_file(meta, stem + suffix)
        if image is not None:
            return str(image), _parse_xml(meta.read_bytes(), label), [meta]
    raise InputError(f"{label}: no {stem}-SPECTRAL_IMAGE file (TIF, COG, BSQ, BIL, BIP, JP2) beside it")


def _from_zip(path: Path) -> Tuple[str, object, List[Path]]:
    label = path.name
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            meta = next((n for n in names if n.upper().endswith(METADATA_SUFFIX)), None)
            if meta is None:
                raise InputError(f"{label}: the ZIP holds no *-METADATA.XML (not an EnMAP product)")
            prefix = meta[: len(meta) - len(METADATA_SUFFIX)]
            wanted = [(prefix + s).upper() for s in IMAGE_SUFFIXES]
            image = next((n for w in wanted for n in names if n.upper() == w), None)
            if image is None:
                raise InputError(f"{label}: the ZIP holds no {Path(prefix).name}-SPECTRAL_IMAGE file")
            root = _parse_xml(z.read(meta), f"{label}/{meta}")
    except zipfile.BadZipFile:
        raise InputError(f"{label} is not a readable ZIP file (truncated download?)") from None
    return f"/vsizip/{{{path.resolve()}}}/{image}", root, [path]  # braces: the path survives Path()


def _parse_xml(data: bytes, label: str):
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise InputError(f"{label}: METADATA.XML is not valid XML ({exc})") from None


def _overlap_vnir_bands(root, wavelengths: Optional[np.ndarray]) -> List[int]:
    """0-based VNIR bands whose wavelength reaches into the SWIR detector's range."""
    vnir = _channel_list(root.findtext("specific/vnirProductQuality/expectedChannelsList"))
    swir = _channel_list(root.findtext("specific/swirProductQuality/expectedChannelsList"))
    if not vnir or not swir or wavelengths is None:
        return []
    n = len(wavelengths)
    swir_start = min(wavelengths[b - 1] for b in swir if 1 <= b <= n)
    return [b - 1 for b in vnir if 1 <= b <= n and wavelengths[b - 1] >= swir_start]


def _channel_list(text: Optional[str]) -> List[int]:
    if not text:
        return []
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        return []


def _float(text: Optional[str]) -> Optional[float]:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _band_list(indices: List[int]) -> str:
    """'131-136, 180' (1-based, as users number bands)."""
    runs: List[Tuple[int, int]] = []
    for i in sorted(indices):
        if runs and runs[-1][1] == i:  # the previous run ends at the band before (1-based i)
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i + 1, i + 1))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
