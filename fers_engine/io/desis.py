"""DESIS L2A: ``<name>-SPECTRAL_IMAGE.tif`` with the ENVI-style ``-SPECTRAL_IMAGE.hdr`` beside it.

Layout (DLR DESIS product specification; read as EnMAP-Box does): the GeoTIFF holds the 235 VNIR
bands (int16, pixel-interleaved); the ``.hdr`` text lists ``wavelength``, ``fwhm``, ``data gain
values`` and ``data offset values`` (reflectance = DN * gain + offset) and, when present,
``data ignore value``; ``-METADATA.xml`` names the product. GDAL does not read that header for a
GeoTIFF, so it is parsed here; the georeference comes from the GeoTIFF.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict

import numpy as np

from ..errors import InputError
from .gdal_cube import GdalCube, envi_list, sibling_file

PRODUCT = "DESIS L2A"
IMAGE_SUFFIX = "-SPECTRAL_IMAGE.TIF"
METADATA_SUFFIX = "-METADATA.XML"


def is_desis_name(path: Path) -> bool:
    name = path.name.upper()
    return name.startswith("DESIS-HSI-L2A") and name.endswith((IMAGE_SUFFIX, METADATA_SUFFIX))


class DesisScene(GdalCube):
    """The DESIS spectral image with the wavelengths, FWHM and gains of its ``.hdr``."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        name = path.name
        suffix = IMAGE_SUFFIX if name.upper().endswith(IMAGE_SUFFIX) else METADATA_SUFFIX
        stem = name[: len(name) - len(suffix)]
        image = sibling_file(path, stem + IMAGE_SUFFIX)
        header = sibling_file(path, stem + "-SPECTRAL_IMAGE.hdr")
        if image is None:
            raise InputError(f"{name}: no {stem}-SPECTRAL_IMAGE.tif beside it")
        if header is None:
            raise InputError(
                f"{name}: {stem}-SPECTRAL_IMAGE.hdr is missing; DESIS wavelengths and gains live there"
            )
        extra = [header] + ([path] if path != image else [])
        super().__init__(str(image), name, PRODUCT, extra)
        with self.closed_on_error():
            self._apply_header(header)

    def _apply_header(self, header: Path) -> None:
        items = parse_header(header)
        if "wavelength" not in items:
            raise InputError(f"{header.name}: no 'wavelength' list")
        self.set_spectral(
            envi_list(items["wavelength"]),
            items.get("wavelength units", "Nanometers"),
            envi_list(items.get("fwhm")),
            envi_list(items.get("bbl")),
        )
        gains, offsets = envi_list(items.get("data gain values")), envi_list(items.get("data offset values"))
        for what, values in (("data gain values", gains), ("data offset values", offsets)):
            if values is not None and len(values) != self.info.count:
                raise InputError(f"{header.name}: {len(values)} {what} for {self.info.count} bands")
        if gains is not None:
            self.info.scale = np.array([float(v) for v in gains])
        if offsets is not None:
            off = np.array([float(v) for v in offsets])
            self.info.offset = None if np.all(off == 0) else off
        if self.info.nodata is None and "data ignore value" in items:
            self.info.nodata = float(items["data ignore value"])


def parse_header(path: Path) -> Dict[str, str]:
    """``key = value`` items of an ENVI header, with ``{...}`` values spanning lines kept whole."""
    text = path.read_text(errors="replace")
    items: Dict[str, str] = {}
    for match in re.finditer(r"^\s*([^=\n]+?)\s*=\s*(\{[^}]*\}|[^\n]*)", text, re.MULTILINE):
        items[match.group(1).strip().lower()] = match.group(2).strip()
    return items
