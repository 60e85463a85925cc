"""Helpers for the plugin tests (plain functions; the fixtures live in conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PROCESSING_PLUGINS = "/usr/share/qgis/python/plugins"
if PROCESSING_PLUGINS not in sys.path:
    sys.path.append(PROCESSING_PLUGINS)

UTM = "EPSG:32611"
GEOTRANSFORM = (483000.0, 3.5, 0.0, 3620000.0, 0.0, -3.5)


def cuda_available() -> bool:
    """Whether this machine's torch sees a CUDA GPU (False without torch): what device tests expect."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def expected_device(requested: str = "auto") -> str:
    """The device a detect run must report for ``requested``: a GPU when one is usable, else the CPU."""
    if requested == "cpu":
        return "cpu"
    return "cuda" if cuda_available() else "cpu"


def write_tif(path, cube, crs=UTM, geotransform=GEOTRANSFORM, nodata=None, dtype=None):
    """Write a (bands, rows, cols) array as a GeoTIFF with GDAL; crs=None writes no CRS."""
    from osgeo import gdal, osr

    cube = np.asarray(cube)
    if cube.ndim == 2:
        cube = cube[None]
    gdt = {
        np.dtype("float32"): gdal.GDT_Float32,
        np.dtype("uint8"): gdal.GDT_Byte,
        np.dtype("int16"): gdal.GDT_Int16,
        np.dtype("float64"): gdal.GDT_Float64,
    }[np.dtype(dtype or cube.dtype)]
    ds = gdal.GetDriverByName("GTiff").Create(str(path), cube.shape[2], cube.shape[1], cube.shape[0], gdt)
    if geotransform is not None:
        ds.SetGeoTransform(geotransform)
    if crs is not None:
        srs = osr.SpatialReference()
        srs.SetFromUserInput(crs)
        ds.SetProjection(srs.ExportToWkt())
    for i in range(cube.shape[0]):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(cube[i])
        if nodata is not None:
            band.SetNoDataValue(nodata)
    ds.FlushCache()
    ds = None
    return str(path)


def synthetic_cube(bands=8, rows=24, cols=20, seed=0, targets=None):
    """A smooth random background with a few implanted anomalous pixels; returns (cube, truth)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(100.0, 5.0, size=(bands, 1, 1))
    mixing = rng.normal(0.0, 1.0, size=(bands, 3))
    abundances = rng.normal(0.0, 3.0, size=(3, rows, cols))
    cube = base + np.einsum("bk,krc->brc", mixing, abundances) + rng.normal(0, 0.5, (bands, rows, cols))
    truth = np.zeros((rows, cols), np.uint8)
    signature = rng.normal(0.0, 12.0, size=bands)
    if targets is None:
        targets = ((rows // 3, cols // 4), (2 * rows // 3, 3 * cols // 4))
    for r, c in targets:
        cube[:, r, c] += signature
        truth[r, c] = 1
    return cube.astype(np.float32), truth


def raster_geometry(path):
    """(crs wkt -> authid-ish, width, height, geotransform, band count) via GDAL."""
    from osgeo import gdal, osr

    ds = gdal.Open(str(path))
    srs = osr.SpatialReference(wkt=ds.GetProjection()) if ds.GetProjection() else None
    code = None
    if srs is not None:
        srs.AutoIdentifyEPSG()
        code = srs.GetAuthorityCode(None)
    out = (
        code,
        ds.RasterXSize,
        ds.RasterYSize,
        tuple(round(v, 6) for v in ds.GetGeoTransform()),
        ds.RasterCount,
    )
    ds = None
    return out


def read_band(path, band=1):
    from osgeo import gdal

    ds = gdal.Open(str(path))
    b = ds.GetRasterBand(band)
    arr, nodata = b.ReadAsArray(), b.GetNoDataValue()
    ds = None
    return arr, nodata


class RecordingFeedback:
    """Factory for a QgsProcessingFeedback that records every message (and may cancel)."""

    @staticmethod
    def make(cancel_after_progress=None):
        from qgis.core import QgsProcessingFeedback

        class _Feedback(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.infos, self.warnings, self.errors, self.progress_values = [], [], [], []
                # the Log panel of the Processing dialog: it shows every pushed message and every
                # progress text (QgsProcessingAlgorithmDialogBase::setProgressText calls setInfo)
                self.dialog_log = []

            def pushInfo(self, info):  # noqa: N802
                self.infos.append(info)
                self.dialog_log.append(info)
                super().pushInfo(info)

            def pushWarning(self, warning):  # noqa: N802
                self.warnings.append(warning)
                self.dialog_log.append(warning)
                super().pushWarning(warning)

            def reportError(self, error, fatalError=False):  # noqa: N802,N803
                self.errors.append(error)
                self.dialog_log.append(error)
                super().reportError(error, fatalError)

            def setProgressText(self, text):  # noqa: N802
                self.dialog_log.append(text)
                super().setProgressText(text)

            def setProgress(self, progress):  # noqa: N802
                self.progress_values.append(progress)
                super().setProgress(progress)
                if cancel_after_progress is not None and len(self.progress_values) >= cancel_after_progress:
                    self.cancel()

            @property
            def log(self):
                return "\n".join(self.infos + self.warnings + self.errors)

        return _Feedback()
