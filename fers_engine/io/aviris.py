"""AVIRIS-NG / AVIRIS-classic ENVI flight lines and the AVIRIS-3 ``*_RFL_ORT.nc`` layout.

ENVI (JPL's AVIRIS-NG distribution document): a BIL/BIP reflectance file with a header giving
``wavelength``, ``fwhm``, ``bbl``, ``data ignore value`` and a ``map info`` whose ``rotation=``
turns the flight line on the map; GDAL's ENVI driver turns that into a rotated geotransform,
which is kept (the score map overlays the image exactly). ``north_up=True`` instead writes the
scores on an axis-aligned grid of the same pixel size over the line's bounding box, each map
pixel the input pixel under its centre, through the same lookup as EMIT's GLT (``glt.MapView``).

NetCDF (AVIRIS-3/5 L2A ORT, as JPL writes it through GDAL): group ``reflectance`` with
``reflectance`` (wavelength, northing, easting) float32 (_FillValue -9999), ``wavelength`` and
``fwhm`` in nm; the grid mapping variable ``transverse_mercator`` carries ``spatial_ref`` (WKT)
and ``GeoTransform``; without them the ``easting``/``northing`` pixel-centre coordinates place
the grid.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import InputError
from .bands import wavelengths_to_nm
from .gdal_access import array_shape, attribute, find_array, open_multidim, read_array, require_array
from .gdal_cube import GdalCube
from .glt import Lookup, MapView
from .scene import Scene, SceneInfo

NAME_PATTERNS = (r"^ang\d{8}t\d{6}", r"^av[35]\d{8}t\d{6}", r"^f\d{6}t\d{2}p\d{2}r\d{2}")


def is_aviris_name(path: Path) -> bool:
    return any(re.match(p, path.name.lower()) for p in NAME_PATTERNS)


def has_rotated_map_info(header: Path) -> bool:
    """True when an ENVI header's ``map info`` carries a non-zero ``rotation=``."""
    try:
        text = header.read_text(errors="replace")
    except OSError:
        return False
    match = re.search(r"map\s+info\s*=\s*\{[^}]*rotation\s*=\s*([-+0-9.eE]+)", text, re.IGNORECASE)
    return match is not None and float(match.group(1)) != 0.0


def looks_like_aviris_nc(root) -> bool:
    return find_array(root, "/reflectance/reflectance") is not None


def open_aviris_envi(path: Path, north_up: bool = False) -> Scene:
    cube = GdalCube(str(path), path.name, product=_product_name(path))
    if cube.info.wavelengths is None:
        raise InputError(f"{path.name}: the ENVI header lists no wavelength (not an AVIRIS reflectance file)")
    return north_up_view(cube) if north_up else cube


def north_up_view(scene: Scene) -> Scene:
    """Attach an axis-aligned map grid to a rotated scene (no change when it is not rotated)."""
    gt = scene.info.transform
    if gt is None or (gt[2] == 0.0 and gt[4] == 0.0):
        scene.info.notes.append("north-up asked for, but the geotransform has no rotation")
        return scene
    lookup = NorthUp(gt, scene.info.height, scene.info.width)
    scene.map_view = MapView(
        lookup,
        scene.info.crs,
        lookup.transform,
        f"scores written north-up on a {lookup.width} x {lookup.height} px grid "
        "(input pixel under each map pixel centre)",
    )
    return scene


class NorthUp(Lookup):
    """Input (row, col) under each pixel centre of the axis-aligned grid around a rotated raster."""

    def __init__(self, gt: Tuple[float, ...], rows: int, cols: int) -> None:
        x0, a, b, y0, d, e = gt
        self.src = (rows, cols)
        self.origin = np.array([x0, y0])
        self.inverse = np.linalg.inv(np.array([[a, b], [d, e]]))
        corners = np.array([[0, 0], [cols, 0], [0, rows], [cols, rows]], dtype=float)
        xy = self.origin + corners @ np.array([[a, b], [d, e]]).T
        size = math.hypot(a, d)
        xmin, ymax = xy[:, 0].min(), xy[:, 1].max()
        self.width = int(math.ceil((xy[:, 0].max() - xmin) / size - 1e-9))
        self.height = int(math.ceil((ymax - xy[:, 1].min()) / size - 1e-9))
        self.transform = (float(xmin), size, 0.0, float(ymax), 0.0, -size)

    def rows(self, row0: int, row1: int) -> Tuple[np.ndarray, np.ndarray]:
        x0, size, _, y0, _, _ = self.transform
        yy, xx = np.meshgrid(
            y0 - (np.arange(row0, row1) + 0.5) * size,
            x0 + (np.arange(self.width) + 0.5) * size,
            indexing="ij",
        )
        cr = np.stack([xx - self.origin[0], yy - self.origin[1]], axis=-1) @ self.inverse.T
        col, row = np.floor(cr[..., 0]).astype(np.int64), np.floor(cr[..., 1]).astype(np.int64)
        inside = (row >= 0) & (row < self.src[0]) & (col >= 0) & (col < self.src[1])
        return np.where(inside, row, -1), np.where(inside, col, -1)


class Aviris3Scene(Scene):
    """AVIRIS-3/5 ``*_RFL_ORT.nc``: a projected grid, bands first."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.label = label = self.path.name
        self._ds, root = open_multidim(str(path), label, "an AVIRIS-3 RFL_ORT product")
        self._root = root
        self._cube = require_array(root, "/reflectance/reflectance", label, ndim=3)
        count, rows, cols = array_shape(self._cube)
        wl = read_array(require_array(root, "/reflectance/wavelength", label, ndim=1), label).astype(float)
        if wl.size != count:
            raise InputError(f"{label}: reflectance/wavelength has {wl.size} values for {count} bands")
        fw_array = find_array(root, "/reflectance/fwhm")
        fwhm = None if fw_array is None else read_array(fw_array, label).astype(float)
        if fwhm is not None and fwhm.size != count:
            raise InputError(f"{label}: reflectance/fwhm has {fwhm.size} values for {count} bands")
        nm, note = wavelengths_to_nm(wl, "nm")
        fill = self._cube.GetNoDataValueAsDouble()
        crs, transform = self._georeference(rows, cols)
        self.info = SceneInfo(
            path=str(path),
            height=rows,
            width=cols,
            count=count,
            dtype="float32",
            crs=crs,
            transform=transform,
            nodata=-9999.0 if fill is None or np.isnan(fill) else float(fill),
            wavelengths=nm,
            wavelength_units="Nanometers",
            fwhm=fwhm,
            product=f"{'AVIRIS-5' if self.path.name.upper().startswith('AV5') else 'AVIRIS-3'} L2A RFL_ORT",
            notes=[note] if note else [],
        )

    @property
    def files(self):
        return [self.path]

    def _georeference(self, rows: int, cols: int) -> Tuple[Optional[str], Optional[Tuple[float, ...]]]:
        for where in ("/transverse_mercator", "/reflectance/transverse_mercator"):
            gm = find_array(self._root, where)
            if gm is None:
                continue
            wkt = attribute(gm, "spatial_ref") or attribute(gm, "crs_wkt")
            gt = attribute(gm, "GeoTransform")
            if wkt and gt:
                values = tuple(float(v) for v in str(gt).split())
                if len(values) != 6:
                    raise InputError(f"{self.label}: {where} GeoTransform must hold 6 numbers, got {gt!r}")
                return str(wkt), values
            if wkt:
                return str(wkt), self._from_coordinates(rows, cols)
        raise InputError(
            f"{self.label}: no transverse_mercator grid mapping with spatial_ref (the product's CRS)"
        )

    def _from_coordinates(self, rows: int, cols: int) -> Tuple[float, ...]:
        east = read_array(require_array(self._root, "/easting", self.label, ndim=1), self.label)
        north = read_array(require_array(self._root, "/northing", self.label, ndim=1), self.label)
        if east.size != cols or north.size != rows or cols < 2 or rows < 2:
            raise InputError(f"{self.label}: easting/northing do not match the {rows}x{cols} grid")
        dx, dy = float(east[1] - east[0]), float(north[1] - north[0])
        return (float(east[0]) - dx / 2, dx, 0.0, float(north[0]) - dy / 2, 0.0, dy)

    def _read_raw(self, row0: int, row1: int, bands: np.ndarray) -> np.ndarray:
        lo, hi = int(bands.min()), int(bands.max())
        data = read_array(self._cube, self.label, [lo, row0, 0], [hi - lo + 1, row1 - row0, self.info.width])
        return data[bands - lo]

    def close(self) -> None:
        self._cube = self._root = self._ds = None


def _product_name(path: Path) -> str:
    name = path.name.lower()
    if name.startswith("ang"):
        return "AVIRIS-NG"
    if name.startswith("av3"):
        return "AVIRIS-3"
    if name.startswith("av5"):
        return "AVIRIS-5"
    if re.match(NAME_PATTERNS[2], name):
        return "AVIRIS-classic"
    return "ENVI flight line (rotated map info)"
