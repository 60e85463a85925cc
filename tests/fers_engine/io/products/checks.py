"""What every product test asks of a detect run: the output raster and where its top score is."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np
from osgeo import gdal

from fers_engine.pipeline import DetectOptions, detect


def run_rx(product: Path, out: Path, **options) -> Tuple[np.ndarray, tuple, str]:
    """Plain RX on a product: (scores with NaN where invalid, geotransform, WKT of the output)."""
    detect(product, out, DetectOptions(**{"enhancer": "none", "detector": "rx", **options}))
    ds = gdal.Open(str(out))
    scores = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)
    return scores, ds.GetGeoTransform(), ds.GetProjection()


def top_pixel(scores: np.ndarray) -> Tuple[int, int]:
    return tuple(int(v) for v in np.unravel_index(np.nanargmax(scores), scores.shape))


def same_crs(wkt_a: str, wkt_b: str) -> bool:
    from osgeo import osr

    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))
