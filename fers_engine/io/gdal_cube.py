"""A product's image file read through ``osgeo.gdal`` row window by row window.

EnMAP, DESIS and AVIRIS-NG deliver their cube as a plain raster (GeoTIFF, COG, ENVI, possibly
inside a ZIP through ``/vsizip/``) and their spectral description beside it; the product readers
build on ``GdalCube`` and fill in what the sidecar says. What the raster itself carries is read
here: size, WKT, geotransform (rotation kept), per-band nodata, band scale/offset and the
band-level ``wavelength``/``wavelength_units``/``fwhm``/``bbl`` items that EnMAP-Box writes.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from ..errors import InputError
from .bands import wavelengths_to_nm
from .gdal_access import last_gdal_error, open_raster, quiet_gdal
from .scene import Scene, SceneInfo

IDENTITY = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


class GdalCube(Scene):
    """A multi-band GDAL raster; ``info`` may be completed by the product reader that owns it."""

    def __init__(self, source: str, label: str, product: Optional[str] = None,
                 files: Sequence[Path] = ()) -> None:
        self.label = label
        self._ds = open_raster(source, label)
        with self.closed_on_error():
            self._describe(source, product, files)

    def _describe(self, source: str, product: Optional[str], files: Sequence[Path]) -> None:
        ds = self._ds
        if ds.RasterCount < 1 or ds.RasterXSize < 1 or ds.RasterYSize < 1:
            raise InputError(f"{self.label} has no image data ({ds.RasterXSize} x {ds.RasterYSize} px, "
                             f"{ds.RasterCount} bands)")
        bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
        self._nodata = [band.GetNoDataValue() for band in bands]
        meta = [band.GetMetadata() or {} for band in bands]
        gt = tuple(float(v) + 0.0 for v in ds.GetGeoTransform(can_return_null=True) or IDENTITY)
        wkt = ds.GetProjection() or None
        scale = np.array([band.GetScale() if band.GetScale() is not None else 1.0 for band in bands])
        offset = np.array([band.GetOffset() if band.GetOffset() is not None else 0.0 for band in bands])
        from osgeo import gdal_array

        self.info = SceneInfo(
            path=str(source), height=ds.RasterYSize, width=ds.RasterXSize, count=ds.RasterCount,
            dtype=np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(bands[0].DataType)).name,
            crs=wkt, transform=None if (wkt is None and gt == IDENTITY) else gt,
            nodata=next((v for v in self._nodata if v is not None), None),
            band_names=[band.GetDescription() or f"Band {i + 1}" for i, band in enumerate(bands)],
            product=product,
            scale=None if np.all(scale == 1.0) else scale,
            offset=None if np.all(offset == 0.0) else offset,
        )
        self._apply_band_metadata(meta, ds.GetMetadata("ENVI") or {})
        self._files = [Path(f) for f in (ds.GetFileList() or [])] + list(files)

    @property
    def files(self) -> List[Path]:
        """Every file of the product: the writer refuses to overwrite any of them."""
        return self._files

    # -- Scene interface ----------------------------------------------------------------------
    def _read_raw(self, row0: int, row1: int, bands: np.ndarray) -> np.ndarray:
        if self._ds is None:
            raise InputError(f"{self.label} is closed")
        uniq, inverse = np.unique(bands, return_inverse=True)
        with quiet_gdal():
            data = self._ds.ReadAsArray(0, int(row0), self.info.width, int(row1 - row0),
                                        band_list=[int(b) + 1 for b in uniq])
            reason = last_gdal_error()
        if data is None:
            raise InputError(f"{self.label}: reading rows {row0}-{row1} failed (file truncated or "
                             "corrupt" + (f": {reason})" if reason else ")"))
        data = data.reshape(len(uniq), row1 - row0, self.info.width)
        return data if len(uniq) == len(bands) and (uniq == bands).all() else data[inverse]

    def _nodata_for(self, bands: np.ndarray) -> list:
        fallback = self.info.nodata
        return [fallback if self._nodata[int(b)] is None else self._nodata[int(b)] for b in bands]

    def close(self) -> None:
        self._ds = None

    @contextmanager
    def closed_on_error(self) -> Iterator[None]:
        """Close the dataset when a product reader rejects the file after opening it, so no GDAL
        handle lives on in the exception's traceback (GDAL < 3.8 can crash freeing it later)."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    # -- spectral metadata --------------------------------------------------------------------
    def _apply_band_metadata(self, meta: List[Dict[str, str]], envi: Dict[str, str]) -> None:
        """Band-level items (EnMAP-Box, GDAL's ENVI driver) or the ENVI dataset domain."""
        info = self.info
        if all("wavelength" in m for m in meta):
            units = meta[0].get("wavelength_units") or envi.get("wavelength_units")
            fwhm = [m.get("fwhm") for m in meta]
            bbl = [m.get("bbl") for m in meta]
            self.set_spectral([m["wavelength"] for m in meta], units,
                              fwhm if None not in fwhm else envi_list(envi.get("fwhm")),
                              bbl if None not in bbl else envi_list(envi.get("bbl")))
        elif "wavelength" in envi:
            self.set_spectral(envi_list(envi["wavelength"]), envi.get("wavelength_units"),
                              envi_list(envi.get("fwhm")), envi_list(envi.get("bbl")))
        if info.nodata is None and "data_ignore_value" in envi:
            info.nodata = float(envi["data_ignore_value"])

    def set_spectral(self, wavelengths, units: Optional[str], fwhm=None, good=None) -> None:
        """Set wavelengths (converted to nm), FWHM and good bands, checking every length."""
        info = self.info
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


def envi_list(text: Optional[str]) -> Optional[List[str]]:
    """Items of an ENVI ``{a, b, c}`` value (as a header or GDAL's ENVI domain holds it)."""
    if text is None:
        return None
    body = str(text).strip().lstrip("{").rstrip("}")
    items = [s.strip() for s in body.split(",") if s.strip()]
    return items or None


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
