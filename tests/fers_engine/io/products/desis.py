"""DESIS L2A as DLR delivers it: ``<name>-SPECTRAL_IMAGE.tif`` (int16, pixel-interleaved, UTM),
the ENVI-style ``<name>-SPECTRAL_IMAGE.hdr`` with ``wavelength``, ``fwhm``, ``data gain values``,
``data offset values``, and ``<name>-METADATA.xml``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal, osr

NAME = "DESIS-HSI-L2A-DT1203190212_025-20191203T021128-V0210"
TRANSFORM = (300000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0)
GAIN, NODATA = 0.0001, -32768


def write_desis(folder: Path, dn: np.ndarray, wavelengths, fwhm, header: bool = True) -> Path:
    """Write the product from a (bands, rows, cols) int16 cube; returns the METADATA.xml path."""
    folder.mkdir(parents=True, exist_ok=True)
    bands, rows, cols = dn.shape
    ds = gdal.GetDriverByName("GTiff").Create(
        str(folder / f"{NAME}-SPECTRAL_IMAGE.tif"),
        cols,
        rows,
        bands,
        gdal.GDT_Int16,
        ["INTERLEAVE=PIXEL", "COMPRESS=DEFLATE"],
    )
    ds.SetGeoTransform(TRANSFORM)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        ds.GetRasterBand(b + 1).SetNoDataValue(NODATA)
        ds.GetRasterBand(b + 1).WriteArray(dn[b])
    ds = None
    if header:
        lst = lambda v: "{" + ", ".join(f"{x:.4f}" for x in v) + "}"  # noqa: E731
        (folder / f"{NAME}-SPECTRAL_IMAGE.hdr").write_text(
            f"ENVI\ndescription = {{DESIS L2A}}\nsamples = {cols}\nlines = {rows}\nbands = {bands}\n"
            "data type = 2\ninterleave = bip\nwavelength units = Nanometers\n"
            f"wavelength = {lst(wavelengths)}\nfwhm = {lst(fwhm)}\n"
            f"data gain values = {lst([GAIN] * bands)}\ndata offset values = {lst([0.0] * bands)}\n"
        )
    meta = folder / f"{NAME}-METADATA.xml"
    meta.write_text(f'<?xml version="1.0"?>\n<hsi_doc><base><name>{NAME}</name></base></hsi_doc>\n')
    return meta
