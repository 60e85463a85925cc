"""PRISMA L2D (``PRS_L2D_STD_*.he5``, HDF5-EOS): VNIR and SWIR cubes joined into one.

Layout (ASI PRISMA Product Specification; read as HyperCoast and EnMAP-Box do): ``HDFEOS/SWATHS/
PRS_L2D_HCO/Data Fields/{VNIR_Cube, SWIR_Cube}`` uint16 stored (rows, bands, cols); file
attributes ``List_Cw_Vnir``/``List_Cw_Swir`` and ``List_Fwhm_*`` in descending wavelength order,
0 = unused slot; ``L2ScaleVnirMin/Max``, ``L2ScaleSwirMin/Max``; ``Epsg_Code`` and
``Product_{UL,LR}corner_{easting,northing}``.

Choices, each stated because the peer readers differ:

* scale: reflectance = ``L2Scale<Det>Min + DN * (L2Scale<Det>Max - L2Scale<Det>Min) / 65535``, the
  specification's formula as HyperCoast applies it (EnMAP-Box divides by 65535 only, which is the
  same when Min = 0 and Max = 1);
* bands: unused (0) slots dropped, the two detectors joined in ascending wavelength; in the
  VNIR/SWIR overlap the SWIR bands are kept and the VNIR bands at or above the first SWIR
  wavelength are left out (the VNIR detector's far end is its noisiest part), so the joined
  grid is strictly increasing;
* georeference: the corner coordinates are pixel centres (EnMAP-Box's reading; HyperCoast
  treats them as outer corners, half a pixel away), the pixel size follows from corners and size;
* no data: the collar outside the acquisition is DN 0 in every band; a pixel is no data when
  three reference bands (one VNIR, two SWIR) are all 0. A single 0 DN inside the scene is a
  valid (clipped) reflectance of ``L2Scale<Det>Min``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..errors import InputError
from .gdal_access import (
    array_shape,
    attribute,
    attribute_array,
    find_group,
    open_multidim,
    read_array,
    require_array,
    srs_wkt,
)
from .scene import Scene, SceneInfo

PRODUCT = "PRISMA L2D"
FIELDS = "/HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields"
DN_MAX = 65535.0
REFERENCE_NM = (650.0, 1650.0, 2200.0)


def looks_like_prisma(root) -> bool:
    return find_group(root, FIELDS) is not None


class PrismaScene(Scene):
    """One cube in ascending wavelength read from the two detector cubes, row block by block."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.label = label = self.path.name
        self._ds, root = open_multidim(str(path), label, "a PRISMA L2D product")
        self._root = root
        self._cubes = [
            require_array(root, f"{FIELDS}/{name}", label, ndim=3) for name in ("VNIR_Cube", "SWIR_Cube")
        ]
        shapes = [array_shape(c) for c in self._cubes]
        (rows, _, cols), (rows2, _, cols2) = shapes
        if (rows, cols) != (rows2, cols2):
            raise InputError(f"{label}: VNIR_Cube is {rows}x{cols} px but SWIR_Cube is {rows2}x{cols2}")
        entries: List[Tuple[float, float, int, int, float, float]] = []  # wl, fwhm, det, slot, scale, offset
        for det, name in enumerate(("Vnir", "Swir")):
            slots = shapes[det][1]
            cw = attribute_array(root, f"List_Cw_{name}", label, "the file")
            fw = attribute_array(root, f"List_Fwhm_{name}", label, "the file")
            for what, values in (("List_Cw", cw), ("List_Fwhm", fw)):
                if values.size != slots:
                    raise InputError(
                        f"{label}: {what}_{name} has {values.size} values but the "
                        f"{name.upper()} cube has {slots} bands"
                    )
            lo = float(attribute_array(root, f"L2Scale{name}Min", label, "the file")[0])
            hi = float(attribute_array(root, f"L2Scale{name}Max", label, "the file")[0])
            for slot in np.flatnonzero(cw > 0):
                entries.append((cw[slot], fw[slot], det, int(slot), (hi - lo) / DN_MAX, lo))
        swir_start = min((e[0] for e in entries if e[2] == 1), default=np.inf)
        dropped = [e for e in entries if e[2] == 0 and e[0] >= swir_start]
        entries = sorted((e for e in entries if not (e[2] == 0 and e[0] >= swir_start)), key=lambda e: e[0])
        if not entries:
            raise InputError(f"{label}: List_Cw_Vnir and List_Cw_Swir list no used band")
        self._entries = entries
        wl = np.array([e[0] for e in entries])
        self.info = SceneInfo(
            path=str(path),
            height=rows,
            width=cols,
            count=len(entries),
            dtype="uint16",
            crs=self._crs(),
            transform=self._transform(rows, cols),
            wavelengths=wl,
            wavelength_units="Nanometers",
            fwhm=np.array([e[1] for e in entries]),
            band_names=[f"{'VNIR' if e[2] == 0 else 'SWIR'} {e[0]:.2f} nm" for e in entries],
            product=PRODUCT,
            scale=np.array([e[4] for e in entries]),
            offset=np.array([e[5] for e in entries]),
            notes=[
                f"VNIR/SWIR overlap: {len(dropped)} VNIR band(s) at or above "
                f"{swir_start:.1f} nm left out (SWIR kept)"
            ]
            if dropped
            else [],
        )
        self._reference = np.unique([int(np.argmin(np.abs(wl - w))) for w in REFERENCE_NM])

    @property
    def files(self):
        return [self.path]

    def _crs(self) -> str:
        code = attribute(self._root, "Epsg_Code")
        try:
            epsg = int(np.asarray(code).ravel()[0])
        except (TypeError, ValueError, IndexError):
            raise InputError(f"{self.label}: missing or invalid file attribute Epsg_Code") from None
        return srs_wkt(f"EPSG:{epsg}")

    def _transform(self, rows: int, cols: int) -> Tuple[float, ...]:
        def corner(name: str) -> float:
            return float(attribute_array(self._root, f"Product_{name}", self.label, "the file")[0])

        ul_e, ul_n = corner("ULcorner_easting"), corner("ULcorner_northing")
        lr_e, lr_n = corner("LRcorner_easting"), corner("LRcorner_northing")
        if rows < 2 or cols < 2 or not (lr_e > ul_e and ul_n > lr_n):
            raise InputError(f"{self.label}: the Product_UL/LRcorner attributes do not span the image")
        dx, dy = (lr_e - ul_e) / (cols - 1), (lr_n - ul_n) / (rows - 1)  # centres of corner pixels
        return (ul_e - dx / 2, dx, 0.0, ul_n - dy / 2, 0.0, dy)

    def _read_raw(self, row0: int, row1: int, bands: np.ndarray) -> np.ndarray:
        rows, cols = row1 - row0, self.info.width
        out = np.empty((len(bands), rows, cols), dtype=np.uint16)
        for det, cube in enumerate(self._cubes):
            picks = [
                (k, self._entries[int(b)][3]) for k, b in enumerate(bands) if self._entries[int(b)][2] == det
            ]
            if not picks:
                continue
            slots = np.array([s for _, s in picks])
            lo, hi = int(slots.min()), int(slots.max())
            data = read_array(cube, self.label, [row0, lo, 0], [rows, hi - lo + 1, cols])
            out[[k for k, _ in picks]] = np.moveaxis(data[:, slots - lo, :], 1, 0)
        return out

    def _extra_valid(self, row0: int, row1: int) -> Optional[np.ndarray]:
        """Inside the acquisition: not 0 in every reference band (the collar is 0 everywhere)."""
        return (self._read_raw(row0, row1, self._reference) != 0).any(axis=0)

    def close(self) -> None:
        self._cubes = []
        self._root = self._ds = None
