"""Small synthetic rasters for the I/O tests, written with osgeo.gdal directly (not our writer),
so reader tests do not depend on the code under test in ``writer.py``.

Helpers are handed out as fixtures (``make_geotiff``, ``make_envi``) rather than imported, so
the tests work under any pytest import mode."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pytest
from osgeo import gdal, gdal_array, osr

UTM33_TRANSFORM = (500000.0, 10.0, 0.0, 4600000.0, 0.0, -10.0)


def _write_geotiff(
    path: Path,
    data: np.ndarray,
    crs: Optional[str] = "EPSG:32633",
    transform: Optional[Sequence[float]] = UTM33_TRANSFORM,
    nodata: Optional[float] = None,
    wavelengths: Optional[Sequence[float]] = None,
    wavelength_units: Optional[str] = None,
) -> Path:
    """A plain (striped, uncompressed) GeoTIFF with optional band-level wavelength tags."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    gdal_type = gdal_array.NumericTypeCodeToGDALTypeCode(data.dtype)
    ds = gdal.GetDriverByName("GTiff").Create(
        str(path), data.shape[2], data.shape[1], data.shape[0], gdal_type
    )
    if crs is not None:
        srs = osr.SpatialReference()
        srs.SetFromUserInput(crs)
        ds.SetSpatialRef(srs)
    if transform is not None:
        ds.SetGeoTransform(tuple(transform))
    for b in range(data.shape[0]):
        band = ds.GetRasterBand(b + 1)
        if nodata is not None:
            band.SetNoDataValue(float(nodata))
        band.WriteArray(data[b])
        if wavelengths is not None:
            band.SetMetadataItem("wavelength", str(wavelengths[b]))
            if wavelength_units:
                band.SetMetadataItem("wavelength_units", wavelength_units)
    band = ds = None  # closes the file
    return path


def _write_envi(path: Path, data: np.ndarray, header_extra: str = "", interleave: str = "bsq") -> Path:
    """A raw int16/float32 ENVI cube with a hand-written header (what ENVI itself would write)."""
    data = np.asarray(data)
    codes = {"int16": 2, "float32": 4, "uint16": 12, "uint8": 1}
    bands, rows, cols = data.shape
    if interleave == "bsq":
        raw = data
    elif interleave == "bil":
        raw = data.transpose(1, 0, 2)
    else:
        raw = data.transpose(1, 2, 0)
    np.ascontiguousarray(raw).astype(data.dtype.newbyteorder("<")).tofile(path)
    header = (
        "ENVI\n"
        f"samples = {cols}\nlines = {rows}\nbands = {bands}\nheader offset = 0\n"
        f"file type = ENVI Standard\ndata type = {codes[data.dtype.name]}\n"
        f"interleave = {interleave}\nbyte order = 0\n" + header_extra
    )
    Path(path).with_suffix(".hdr").write_text(header)  # "x" -> "x.hdr", "x.img" -> "x.hdr"
    return path


@pytest.fixture
def cube() -> np.ndarray:
    """(4 bands, 7 rows, 5 cols) int16 with distinct values, so any axis mix-up shows."""
    b, r, c = np.meshgrid(np.arange(4), np.arange(7), np.arange(5), indexing="ij")
    return (1000 * b + 10 * r + c).astype(np.int16)


@pytest.fixture
def make_geotiff():
    return _write_geotiff


@pytest.fixture
def make_envi():
    return _write_envi


@pytest.fixture
def utm33() -> tuple:
    return UTM33_TRANSFORM
