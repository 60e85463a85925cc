"""EMIT L2A RFL NetCDF4 in the layout NASA's emit-utils writes (written through GDAL's netCDF
multidimensional API): root ``reflectance`` (downtrack, crosstrack, bands) float32 with
_FillValue -9999, ``sensor_band_parameters/{wavelengths, fwhm, good_wavelengths}``,
``location/{lat, lon, elev}`` (downtrack, crosstrack) and ``location/{glt_x, glt_y}`` int32
(ortho_y, ortho_x), 1-based, 0 = no data, root attributes ``geotransform`` and ``spatial_ref``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, osr

FILL = -9999.0
# EMIT's ortho grid: EPSG:4326, ~0.000542 degrees per pixel (the product's geotransform).
GEOTRANSFORM = (-62.5120945, 0.00054223252, 0.0, -39.3064880, 0.0, -0.00054223252)


def rotated_glt(rows: int, cols: int, angle_deg: float = 20.0) -> Tuple[np.ndarray, np.ndarray]:
    """A GLT for a swath rotated by ``angle_deg`` on the ortho grid: each ortho pixel holds the
    nearest swath pixel (1-based column, row) or 0 outside the footprint, as EMIT's GLT does."""
    a = np.deg2rad(angle_deg)
    corners = np.array([[0, 0], [0, cols], [rows, 0], [rows, cols]], dtype=float)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    yx = corners @ rot.T
    y0, x0 = np.floor(yx.min(axis=0))
    h, w = (np.ceil(yx.max(axis=0)) - np.floor(yx.min(axis=0))).astype(int) + 1
    oy, ox = np.meshgrid(np.arange(h) + y0 + 0.5, np.arange(w) + x0 + 0.5, indexing="ij")
    src = np.stack([oy.ravel(), ox.ravel()], axis=1) @ rot  # inverse rotation
    r = np.floor(src[:, 0]).astype(int).reshape(h, w)
    c = np.floor(src[:, 1]).astype(int).reshape(h, w)
    inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
    return np.where(inside, c + 1, 0).astype(np.int32), np.where(inside, r + 1, 0).astype(np.int32)


def write_emit(
    path: Path,
    cube: np.ndarray,
    wavelengths: Sequence[float],
    fwhm: Sequence[float],
    good: Sequence[int],
    glt_x: np.ndarray,
    glt_y: np.ndarray,
    geotransform: Sequence[float] = GEOTRANSFORM,
    skip: Sequence[str] = (),
    spatial_ref: Optional[str] = None,
) -> Path:
    """Write the product; ``skip`` leaves parts out (e.g. ``"location"``) to make broken files."""
    rows, cols, bands = cube.shape
    drv = gdal.GetDriverByName("netCDF")
    ds = drv.CreateMultiDimensional(str(path))
    root = ds.GetRootGroup()
    f32 = gdal.ExtendedDataType.Create(gdal.GDT_Float32)
    f64 = gdal.ExtendedDataType.Create(gdal.GDT_Float64)
    i32 = gdal.ExtendedDataType.Create(gdal.GDT_Int32)
    u8 = gdal.ExtendedDataType.Create(gdal.GDT_Byte)
    dt = root.CreateDimension("downtrack", None, None, rows)
    ct = root.CreateDimension("crosstrack", None, None, cols)
    bd = root.CreateDimension("bands", None, None, bands)
    oy = root.CreateDimension("ortho_y", None, None, glt_x.shape[0])
    ox = root.CreateDimension("ortho_x", None, None, glt_x.shape[1])
    if "reflectance" not in skip:
        refl = root.CreateMDArray("reflectance", [dt, ct, bd], f32)
        refl.SetNoDataValueDouble(FILL)
        refl.Write(np.ascontiguousarray(cube, dtype=np.float32))
    if "sensor_band_parameters" not in skip:
        sbp = root.CreateGroup("sensor_band_parameters")
        wl_dim = bd if len(wavelengths) == bands else root.CreateDimension("wl", None, None, len(wavelengths))
        sbp.CreateMDArray("wavelengths", [wl_dim], f32).Write(np.asarray(wavelengths, np.float32))
        sbp.CreateMDArray("fwhm", [bd], f32).Write(np.asarray(fwhm, np.float32))
        sbp.CreateMDArray("good_wavelengths", [bd], u8).Write(np.asarray(good, np.uint8))
    if "location" not in skip:
        loc = root.CreateGroup("location")
        lat = GEOTRANSFORM[3] - 0.0005 * np.arange(rows)[:, None] * np.ones((1, cols))
        lon = GEOTRANSFORM[0] + 0.0005 * np.arange(cols)[None, :] * np.ones((rows, 1))
        for name, values in (("lat", lat), ("lon", lon), ("elev", np.zeros((rows, cols)))):
            var = loc.CreateMDArray(name, [dt, ct], f64)
            var.SetNoDataValueDouble(FILL)
            var.Write(values)
        for name, values in (("glt_x", glt_x), ("glt_y", glt_y)):
            var = loc.CreateMDArray(name, [oy, ox], i32)
            var.SetNoDataValueDouble(FILL)
            var.Write(np.ascontiguousarray(values, dtype=np.int32))
    gt = root.CreateAttribute("geotransform", [len(geotransform)], f64)
    gt.Write(list(geotransform))
    srs = root.CreateAttribute("spatial_ref", [], gdal.ExtendedDataType.CreateString())
    srs.Write(spatial_ref if spatial_ref is not None else osr.SRS_WKT_WGS84_LAT_LONG)
    root.CreateAttribute("title", [], gdal.ExtendedDataType.CreateString()).Write(
        "EMIT L2A Estimated Surface Reflectance 60 m V001"
    )
    del root, ds  # closes and flushes the file
    return Path(path)


def brute_force_ortho(swath: np.ndarray, glt_x: np.ndarray, glt_y: np.ndarray) -> np.ndarray:
    """The reference lookup of every known EMIT reader, on a whole 2-D swath map:
    ``out[valid] = swath[glt_y - 1, glt_x - 1]``, NaN elsewhere."""
    out = np.full(glt_x.shape, np.nan, dtype=np.float64)
    valid = (glt_x > 0) & (glt_y > 0)
    out[valid] = swath[glt_y[valid] - 1, glt_x[valid] - 1]
    return out


def small_product(folder: Path, shared_data: Path, rows: int = 40, cols: int = 30):
    """A small EMIT granule on EMIT's real band grid (water bands marked bad) with a rotated GLT:
    ``(path, wavelengths, good_wavelengths, ortho grid shape)``."""
    from .common import band_table, reflectance

    wl, fwhm = band_table(shared_data, "emit")
    good = (((wl < 1320) | (wl > 1440)) & ((wl < 1770) | (wl > 1960))).astype(np.uint8)
    gx, gy = rotated_glt(rows, cols)
    path = write_emit(
        Path(folder) / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc",
        reflectance(rows, cols, wl).cube,
        wl,
        fwhm,
        good,
        gx,
        gy,
    )
    return path, wl, good, gx.shape
