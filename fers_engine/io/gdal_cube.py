"""A product's image file: the engine's GDAL raster reader plus what products add to it.

EnMAP, DESIS and AVIRIS-NG deliver their cube as a plain raster (GeoTIFF, COG, ENVI, possibly
inside a ZIP through ``/vsizip/``) and their spectral description beside it; the product readers
build on ``GdalCube``, which is ``GdalScene`` (size, WKT, geotransform with rotation, per-band
nodata, band-level or ENVI wavelengths, row-window reads) plus the band scale/offset to
reflectance, band-level ``bbl`` as EnMAP-Box writes it, the product's name, its sidecar files,
and a checked setter for the spectral description a sidecar gives.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import numpy as np

from ..errors import InputError
from .bands import wavelengths_to_nm
from .gdal_scene import GdalScene, _envi_list as envi_list

__all__ = ["GdalCube", "envi_list", "sibling_file"]


class GdalCube(GdalScene):
    """A multi-band GDAL raster; ``info`` may be completed by the product reader that owns it."""

    def __init__(
        self, source: str, label: str, product: Optional[str] = None, files: Sequence[Path] = ()
    ) -> None:
        super().__init__(source)
        self.label = label
        self._sidecars = list(files)
        with self.closed_on_error():
            self._add_product_items(product)

    def _add_product_items(self, product: Optional[str]) -> None:
        info, ds = self.info, self._ds
        if info.wavelengths is not None and len(info.wavelengths) != info.count:
            raise InputError(f"{self.label}: {len(info.wavelengths)} wavelengths for {info.count} bands")
        bands = [ds.GetRasterBand(i + 1) for i in range(info.count)]
        scale = np.array([1.0 if b.GetScale() is None else b.GetScale() for b in bands])
        offset = np.array([0.0 if b.GetOffset() is None else b.GetOffset() for b in bands])
        info.scale = None if np.all(scale == 1.0) else scale
        info.offset = None if np.all(offset == 0.0) else offset
        bbl = [b.GetMetadataItem("bbl") for b in bands]
        if info.bad_bands is None and None not in bbl:
            self.set_spectral(None, None, good=bbl)
        info.product = product

    @property
    def files(self) -> List[Path]:
        """Every file of the product: the writer refuses to overwrite any of them."""
        return super().files + self._sidecars

    @contextmanager
    def closed_on_error(self) -> Iterator[None]:
        """Close the dataset when a product reader rejects the file after opening it, so no GDAL
        handle lives on in the exception's traceback."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def set_spectral(self, wavelengths, units: Optional[str], fwhm=None, good=None) -> None:
        """Set wavelengths (converted to nm), FWHM and good bands, checking every length;
        ``wavelengths=None`` keeps the ones read from the raster."""
        info = self.info
        if wavelengths is not None:
            wl = _numbers(wavelengths, "wavelengths", self.label)
            if wl.size != info.count:
                raise InputError(f"{self.label}: {wl.size} wavelengths for {info.count} bands")
            nm, note = wavelengths_to_nm(wl, units)
            if note:
                info.notes.append(note)
            info.wavelengths, info.wavelength_units = nm, (str(units) if units else None)
            if fwhm is not None:
                fw = _numbers(fwhm, "FWHM values", self.label)
                if fw.size != info.count:
                    raise InputError(f"{self.label}: {fw.size} FWHM values for {info.count} bands")
                info.fwhm = None if nm is None else fw * (nm[0] / wl[0] if wl[0] else 1.0)
        if good is not None:
            flags = _numbers(good, "bad-band flags", self.label)
            if flags.size != info.count:
                raise InputError(f"{self.label}: {flags.size} bad-band flags for {info.count} bands")
            info.bad_bands = flags != 0


def sibling_file(path: Path, name: str) -> Optional[Path]:
    """The file beside ``path`` called ``name`` ignoring case: products ship ``-METADATA.XML``
    and ``-METADATA.xml``, ``.TIF`` and ``.tif``."""
    try:
        for entry in path.parent.iterdir():
            if entry.name.upper() == name.upper() and entry.is_file():
                return entry
    except OSError:
        return None
    return None


def _numbers(values, what: str, label: str) -> np.ndarray:
    try:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{label}: {what} are not numbers") from None
