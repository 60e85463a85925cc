"""Planet Tanager HDF5-EOS: the basic (swath) and ortho (grid) products.

Layout (Planet Tanager product guide; read as HyperCoast does): ``HDFEOS/SWATHS/HYP/Data Fields``
(basic) or ``HDFEOS/GRIDS/HYP/Data Fields`` (ortho) hold ``surface_reflectance`` (or
``toa_radiance``) stored (bands, rows, cols) float32, with the attributes ``wavelengths`` and
``fwhm`` (nm in the file; Planet's STAC metadata says micrometres) and ``good_wavelengths``, and
the masks ``nodata_pixels`` (1 = outside the acquisition) and ``beta_cloud_mask``. The ortho grid
is placed by ``HDFEOS INFORMATION/StructMetadata.0`` (``UpperLeftPointMtrs``,
``LowerRightMtrs``: outer corners, HDF-EOS's convention) and the grid group's ``epsg_code``.
The basic product has per-pixel latitude/longitude only: it is read in swath geometry, not
georeferenced (the ortho product is the one to map).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import InputError
from .bands import wavelengths_to_nm
from .gdal_access import (
    array_shape,
    attribute,
    attribute_array,
    find_array,
    find_group,
    open_multidim,
    read_array,
    read_text,
    srs_wkt,
)
from .scene import Scene, SceneInfo

ROOTS = {"/HDFEOS/GRIDS/HYP": "ortho", "/HDFEOS/SWATHS/HYP": "basic"}
CUBES = ("surface_reflectance", "toa_radiance")


def looks_like_tanager(root) -> bool:
    return any(find_group(root, f"{r}/Data Fields") is not None for r in ROOTS)


class TanagerScene(Scene):
    """The reflectance (else radiance) cube of a Tanager basic or ortho product."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.label = label = self.path.name
        self._ds, root = open_multidim(str(path), label, "a Planet Tanager product")
        self._root = root
        found = [(r, c) for r in ROOTS for c in CUBES if find_array(root, f"{r}/Data Fields/{c}") is not None]
        if not found:
            raise InputError(
                f"{label}: no HDFEOS/{{GRIDS,SWATHS}}/HYP/Data Fields/surface_reflectance "
                "or toa_radiance (not a complete Tanager product)"
            )
        group, name = found[0]
        self._cube = find_array(root, f"{group}/Data Fields/{name}")
        if self._cube.GetDimensionCount() != 3:
            raise InputError(f"{label}: {name} has {self._cube.GetDimensionCount()} dimensions, expected 3")
        count, rows, cols = array_shape(self._cube)
        where = f"{group}/Data Fields/{name}"
        wl = attribute_array(self._cube, "wavelengths", label, where)
        nm, note = wavelengths_to_nm(wl, None)
        fwhm = attribute(self._cube, "fwhm")
        good = attribute(self._cube, "good_wavelengths")
        for what, values in (("wavelengths", wl), ("fwhm", fwhm), ("good_wavelengths", good)):
            if values is not None and np.size(values) != count:
                raise InputError(f"{label}: {what} has {np.size(values)} values for {count} bands")
        fill = self._cube.GetNoDataValueAsDouble()
        kind = ROOTS[group]
        crs, transform = self._grid(group, rows, cols) if kind == "ortho" else (None, None)
        self._mask = find_array(root, f"{group}/Data Fields/nodata_pixels")
        self.info = SceneInfo(
            path=str(path),
            height=rows,
            width=cols,
            count=count,
            dtype="float32",
            crs=crs,
            transform=transform,
            nodata=None if fill is None or np.isnan(fill) else float(fill),
            wavelengths=nm,
            wavelength_units="Nanometers",
            fwhm=None if fwhm is None or nm is None else np.asarray(fwhm, float) * (nm[0] / wl[0]),
            bad_bands=None if good is None else np.asarray(good).ravel() != 0,
            product=f"Tanager {kind} {'surface reflectance' if name == CUBES[0] else 'radiance'}",
            notes=([note] if note else [])
            + (
                []
                if kind == "ortho"
                else [
                    "basic (swath) product: per-pixel latitude/longitude only, so the output is not "
                    "georeferenced; use the ortho product for a map"
                ]
            ),
        )

    @property
    def files(self):
        return [self.path]

    def _grid(self, group: str, rows: int, cols: int) -> Tuple[str, Tuple[float, ...]]:
        meta = find_array(self._root, "/HDFEOS INFORMATION/StructMetadata.0")
        text = "" if meta is None else read_text(meta, self.label)
        ul, lr = _point(text, "UpperLeftPointMtrs"), _point(text, "LowerRightMtrs")
        if ul is None or lr is None:
            raise InputError(
                f"{self.label}: HDFEOS INFORMATION/StructMetadata.0 has no "
                "UpperLeftPointMtrs/LowerRightMtrs (the ortho grid's corners)"
            )
        code = attribute(find_group(self._root, group), "epsg_code")
        if code is None:
            raise InputError(f"{self.label}: missing attribute epsg_code on {group}")
        crs = srs_wkt(f"EPSG:{int(np.asarray(code).ravel()[0])}")
        return crs, (ul[0], (lr[0] - ul[0]) / cols, 0.0, ul[1], 0.0, (lr[1] - ul[1]) / rows)

    def _read_raw(self, row0: int, row1: int, bands: np.ndarray) -> np.ndarray:
        lo, hi = int(bands.min()), int(bands.max())
        data = read_array(self._cube, self.label, [lo, row0, 0], [hi - lo + 1, row1 - row0, self.info.width])
        return data[bands - lo]

    def _extra_valid(self, row0: int, row1: int) -> Optional[np.ndarray]:
        if self._mask is None:
            return None
        return read_array(self._mask, self.label, [row0, 0], [row1 - row0, self.info.width]) == 0

    def close(self) -> None:
        self._cube = self._mask = self._root = self._ds = None


def _point(text: str, key: str) -> Optional[Tuple[float, float]]:
    match = re.search(rf"{key}=\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)", text)
    return None if match is None else (float(match.group(1)), float(match.group(2)))
