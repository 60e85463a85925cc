"""EMIT L2A surface reflectance (``EMIT_L2A_RFL_*.nc``), in swath or ortho geometry.

Layout (NASA emit-utils, EMIT L2A user guide): root ``reflectance`` float32 (downtrack,
crosstrack, bands), fill -9999; ``sensor_band_parameters/{wavelengths, fwhm}`` in nm and
``good_wavelengths`` (0 = water-absorption band); ``location/{glt_x, glt_y}`` int32 (ortho_y,
ortho_x), 1-based swath column/row, 0 = no data; root attributes ``geotransform`` (6 numbers,
EPSG:4326 degrees) and ``spatial_ref`` (WKT). Read with GDAL's multidimensional API.

The cube is always read in swath geometry, row block by row block. ``ortho=True`` (default)
attaches the product's north-up EPSG:4326 grid (``geotransform``, ``spatial_ref``) as the
scene's ``map_view``: the detect pipeline scores the swath and writes the scores on that grid
through the GLT (``glt.MapView``). ``ortho=False`` writes the swath geometry, which has no map
georeference. The GLT is checked once at open (streamed): an entry beyond the swath is an error
before any work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

from ..errors import InputError
from .bands import wavelengths_to_nm
from .gdal_access import (
    array_shape,
    attribute,
    find_array,
    find_group,
    open_multidim,
    read_array,
    require_array,
)
from .glt import Lookup, MapView
from .scene import Scene, SceneInfo

PRODUCT = "EMIT L2A RFL"
FILL = -9999.0
GLT_CHECK_ROWS = 512  # GLT rows validated per read at open


def looks_like_emit(root) -> bool:
    return (
        find_array(root, "/reflectance") is not None
        and find_group(root, "/sensor_band_parameters") is not None
    )


def open_emit(path: Path, ortho: bool = True) -> Scene:
    swath = EmitSwath(path)
    if ortho:
        swath.map_view = swath.ortho_view()
    return swath


class EmitSwath(Scene):
    """The swath: rows are downtrack lines, columns crosstrack samples."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.label = self.path.name
        self._ds, root = open_multidim(str(path), self.label, "an EMIT L2A product")
        self._root = root
        self._cube = require_array(root, "/reflectance", self.label, ndim=3)
        rows, cols, count = array_shape(self._cube)
        wl = self._band_vector("wavelengths", count, required=True)
        fwhm = self._band_vector("fwhm", count, required=False)
        good = self._band_vector("good_wavelengths", count, required=False)
        nm, note = wavelengths_to_nm(wl, "nm")
        if nm is None:
            raise InputError(f"{self.label}: sensor_band_parameters/wavelengths are not wavelengths ({note})")
        fill = self._cube.GetNoDataValueAsDouble()
        nodata = FILL if fill is None or np.isnan(fill) else float(fill)
        self.info = SceneInfo(
            path=str(path),
            height=rows,
            width=cols,
            count=count,
            dtype="float32",
            nodata=nodata,
            wavelengths=nm,
            wavelength_units="Nanometers",
            fwhm=fwhm,
            bad_bands=None if good is None else good != 0,
            product=PRODUCT,
            band_names=[f"{w:.2f} nm" for w in nm],
            notes=["swath geometry (downtrack x crosstrack) has no map georeference"],
        )

    @property
    def files(self):
        return [self.path]

    def _band_vector(self, name: str, count: int, required: bool):
        array = find_array(self._root, f"/sensor_band_parameters/{name}")
        if array is None:
            if required:
                raise InputError(f"{self.label}: missing /sensor_band_parameters/{name}")
            return None
        values = read_array(array, self.label).astype(np.float64).ravel()
        if values.size != count:
            raise InputError(
                f"{self.label}: sensor_band_parameters/{name} has {values.size} values for {count} bands"
            )
        return values

    def _read_raw(self, row0: int, row1: int, bands: np.ndarray) -> np.ndarray:
        _, cols, count = array_shape(self._cube)
        data = read_array(self._cube, self.label, [row0, 0, 0], [row1 - row0, cols, count])
        return np.moveaxis(data, 2, 0)[bands]

    def close(self) -> None:
        self._cube = self._root = self._ds = None

    # -- ortho ----------------------------------------------------------------------------------
    def ortho_view(self) -> MapView:
        """The product's north-up EPSG:4326 grid, reached through its GLT."""
        glt = EmitGlt(self._root, self.label, self.info.height, self.info.width)
        gt = attribute(self._root, "geotransform")
        wkt = attribute(self._root, "spatial_ref")
        try:
            transform = tuple(float(v) + 0.0 for v in gt)
        except (TypeError, ValueError):
            transform = ()
        if len(transform) != 6:
            raise InputError(f"{self.label}: the root attribute geotransform must hold 6 numbers, got {gt!r}")
        if not isinstance(wkt, str) or not wkt.strip():
            raise InputError(f"{self.label}: missing root attribute spatial_ref (the ortho grid's CRS)")
        return MapView(
            glt,
            wkt,
            transform,
            "scores orthorectified through the product's GLT "
            f"onto its {glt.width} x {glt.height} px north-up grid",
        )


class EmitGlt(Lookup):
    """``location/glt_x`` and ``glt_y`` as 0-based (row, col) lookups, validated once at open."""

    def __init__(self, root, label: str, swath_rows: int, swath_cols: int) -> None:
        self.label = label
        self.gx = require_array(root, "/location/glt_x", label, ndim=2)
        self.gy = require_array(root, "/location/glt_y", label, ndim=2)
        shape = array_shape(self.gx)
        if array_shape(self.gy) != shape:
            raise InputError(
                f"{label}: location/glt_x is {shape[0]}x{shape[1]} but glt_y is "
                f"{array_shape(self.gy)[0]}x{array_shape(self.gy)[1]}"
            )
        self.height, self.width = shape
        self._check(swath_rows, swath_cols)

    def _raw(self, row0: int, row1: int) -> Tuple[np.ndarray, np.ndarray]:
        count = [row1 - row0, self.width]
        return (
            read_array(self.gx, self.label, [row0, 0], count).astype(np.int64),
            read_array(self.gy, self.label, [row0, 0], count).astype(np.int64),
        )

    def _check(self, swath_rows: int, swath_cols: int) -> None:
        for r0 in range(0, self.height, GLT_CHECK_ROWS):
            gx, gy = self._raw(r0, min(self.height, r0 + GLT_CHECK_ROWS))
            used = (gx > 0) & (gy > 0)
            for values, limit, name, axis in (
                (gx, swath_cols, "glt_x", "columns"),
                (gy, swath_rows, "glt_y", "rows"),
            ):
                bad = values[used & (values > limit)]
                if bad.size:
                    raise InputError(
                        f"{self.label}: location/{name} points at swath {axis[:-1]} "
                        f"{int(bad.max())} but the swath has {limit} {axis} (GLT out of range)"
                    )
            odd = ((gx < 0) | (gy < 0)) & ~_fill(gx) & ~_fill(gy)
            if odd.any():
                raise InputError(
                    f"{self.label}: location/glt_x/glt_y hold negative entries (GLT out of range)"
                )

    def rows(self, row0: int, row1: int) -> Tuple[np.ndarray, np.ndarray]:
        gx, gy = self._raw(row0, row1)
        used = (gx > 0) & (gy > 0)
        return np.where(used, gy - 1, -1), np.where(used, gx - 1, -1)


def _fill(values: np.ndarray) -> np.ndarray:
    """The GLT's own fill value (-9999 as emit-utils writes every variable) counts as no data."""
    return values == int(FILL)
