"""Small synthetic rasters for the I/O tests, written with rasterio directly (not our writer),
so reader tests do not depend on the code under test in ``writer.py``.

Helpers are handed out as fixtures (``make_geotiff``, ``make_envi``) rather than imported, so
the tests work under any pytest import mode."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from affine import Affine

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
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype.name, nodata=nodata)
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = Affine.from_gdal(*transform)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        ds = rasterio.open(path, "w", **profile)
    with ds:
        ds.write(data)
        if wavelengths is not None:
            for b, w in enumerate(wavelengths, start=1):
                tags = {"wavelength": str(w)}
                if wavelength_units:
                    tags["wavelength_units"] = wavelength_units
                ds.update_tags(b, **tags)
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
