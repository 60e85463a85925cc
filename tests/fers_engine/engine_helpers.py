"""Small rasters written inside a test's tmp_path."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from fers_engine.io import RasterWriter
from fers_engine.synthetic import make_scene, write_scene

TRANSFORM = (500000.0, 2.0, 0.0, 4100000.0, 0.0, -2.0)
CRS = "EPSG:32633"


def small_scene(tmp_path: Path, rows: int = 48, cols: int = 40, bands: int = 24, seed: int = 3):
    """A generated scene with implanted targets: (cube path, truth path, SyntheticScene)."""
    scene = make_scene(rows=rows, cols=cols, bands=bands, seed=seed, n_targets=5)
    cube, truth = tmp_path / "scene.tif", tmp_path / "truth.tif"
    write_scene(scene, cube, truth)
    return cube, truth, scene


def write_cube(path: Path, cube: np.ndarray, crs: Optional[str] = CRS, nodata=None,
               transform=TRANSFORM) -> Path:
    """Write a (bands, rows, cols) array as a GeoTIFF through the project's writer."""
    bands, rows, cols = cube.shape
    with RasterWriter(path, rows, cols, count=bands, dtype=str(cube.dtype), crs=crs,
                      transform=transform if crs is not None else None, nodata=nodata) as w:
        w.write(0, cube)
    return path
