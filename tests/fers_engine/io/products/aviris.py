"""AVIRIS-NG ENVI reflectance with a rotated ``map info`` (BIL, float32, data ignore value -9999,
``wavelength``/``fwhm``/``bbl`` in the header), and the AVIRIS-3 ``*_RFL_ORT.nc`` NetCDF layout
(group ``reflectance`` with ``reflectance`` (wavelength, northing, easting), ``wavelength``,
``fwhm``; root ``transverse_mercator`` with ``spatial_ref`` and ``GeoTransform``; ``easting``,
``northing``), written through GDAL's netCDF multidimensional API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal, osr

NG_NAME = "ang20190624t230039_rfl_v2v2_img"
AV3_NAME = "AV320231005t181518_005_L2A_OE_0b4f48b4_RFL_ORT.nc"
ORIGIN, PIXEL, ROTATION = (354000.0, 3764000.0), 5.0, 30.0


def write_envi(
    folder: Path, reflectance: np.ndarray, wavelengths, fwhm, bbl, rotation=ROTATION, name: str = NG_NAME
) -> Path:
    """A BIL float32 ENVI file and its header as JPL writes them; returns the data file."""
    rows, cols, bands = reflectance.shape
    data = folder / name
    np.ascontiguousarray(np.moveaxis(reflectance, 2, 1), dtype="<f4").tofile(data)  # BIL: row, band, col
    lst = lambda v, fmt: "{ " + ", ".join(fmt.format(x) for x in v) + " }"  # noqa: E731
    header = (
        "ENVI\ndescription = {AVIRIS-NG reflectance}\n"
        f"samples = {cols}\nlines = {rows}\nbands = {bands}\nheader offset = 0\n"
        "file type = ENVI Standard\ndata type = 4\ninterleave = bil\nbyte order = 0\n"
        f"map info = {{ UTM , 1.000 , 1.000 , {ORIGIN[0]:.3f} , {ORIGIN[1]:.3f} , {PIXEL:.6e} , "
        f"{PIXEL:.6e} , 11 , North , WGS-84 , units=Meters , rotation={rotation:.8f} }}\n"
        f"wavelength units = Nanometers\nwavelength = {lst(wavelengths, '{:.6f}')}\n"
        f"fwhm = {lst(fwhm, '{:.6f}')}\nbbl = {lst(bbl, '{:d}')}\ndata ignore value = -9999\n"
    )
    (folder / (name + ".hdr")).write_text(header)
    return data


def rotated_geotransform(rotation=ROTATION):
    """What GDAL's ENVI driver makes of that map info (ENVI rotates counter-clockwise)."""
    a = np.deg2rad(rotation)
    return (ORIGIN[0], PIXEL * np.cos(a), PIXEL * np.sin(a), ORIGIN[1], PIXEL * np.sin(a), -PIXEL * np.cos(a))


def write_aviris3(path: Path, reflectance: np.ndarray, wavelengths, fwhm, epsg: int = 32611) -> Path:
    rows, cols, bands = reflectance.shape
    ds = gdal.GetDriverByName("netCDF").CreateMultiDimensional(str(path))
    root = ds.GetRootGroup()
    f32 = gdal.ExtendedDataType.Create(gdal.GDT_Float32)
    f64 = gdal.ExtendedDataType.Create(gdal.GDT_Float64)
    north = root.CreateDimension("northing", None, None, rows)
    east = root.CreateDimension("easting", None, None, cols)
    gt = (ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL)
    root.CreateMDArray("easting", [east], f64).Write(gt[0] + (np.arange(cols) + 0.5) * PIXEL)
    root.CreateMDArray("northing", [north], f64).Write(gt[3] - (np.arange(rows) + 0.5) * PIXEL)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    tm = root.CreateMDArray("transverse_mercator", [], gdal.ExtendedDataType.Create(gdal.GDT_Byte))
    tm.CreateAttribute("spatial_ref", [], gdal.ExtendedDataType.CreateString()).Write(srs.ExportToWkt())
    tm.CreateAttribute("GeoTransform", [], gdal.ExtendedDataType.CreateString()).Write(
        " ".join(repr(float(v)) for v in gt)
    )
    grp = root.CreateGroup("reflectance")
    wl = grp.CreateDimension("wavelength", None, None, bands)
    grp.CreateMDArray("wavelength", [wl], f32).Write(np.asarray(wavelengths, np.float32))
    grp.CreateMDArray("fwhm", [wl], f32).Write(np.asarray(fwhm, np.float32))
    cube = grp.CreateMDArray("reflectance", [wl, north, east], f32)
    cube.SetNoDataValueDouble(-9999.0)
    cube.Write(np.ascontiguousarray(np.moveaxis(reflectance, 2, 0), dtype=np.float32))
    del cube, grp, tm, root, ds
    return Path(path)
