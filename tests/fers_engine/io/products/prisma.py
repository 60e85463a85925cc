"""PRISMA L2D HE5 in the ASI layout, written with h5py (GDAL cannot create HDF5):
``HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/{VNIR_Cube, SWIR_Cube}`` uint16 (rows, bands, cols),
file attributes ``List_Cw_{Vnir,Swir}``/``List_Fwhm_*`` in descending order with unused (0) slots,
``L2Scale{Vnir,Swir}{Min,Max}``, ``Epsg_Code``, ``Product_{UL,LR}corner_{easting,northing}``,
and ``HDFEOS INFORMATION/StructMetadata.0``."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np

FIELDS = "HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields"
UL = (500015.0, 4200015.0)  # centre of the upper-left pixel, 30 m pixels (EPSG:32632)
PIXEL = 30.0
SCALE = {"Vnir": (0.0, 1.0), "Swir": (0.0, 0.8)}


def split_detectors(wavelengths: np.ndarray, fwhm: np.ndarray, swir_start: float = 920.0) -> Dict:
    """The ascending band table split the way PRISMA stores it: VNIR up to ~1010 nm, SWIR from
    ``swir_start`` (an overlap), each in descending order with two unused 0 slots appended."""
    out = {}
    for name, pick in (("Vnir", wavelengths <= 1010.0), ("Swir", wavelengths >= swir_start)):
        index = np.flatnonzero(pick)[::-1]
        out[name] = (
            np.concatenate([wavelengths[index], [0.0, 0.0]]).astype(np.float32),
            np.concatenate([fwhm[index], [0.0, 0.0]]).astype(np.float32),
            np.concatenate([index, [-1, -1]]),
        )
    return out


def write_prisma(
    path: Path,
    reflectance: np.ndarray,
    wavelengths: np.ndarray,
    fwhm: np.ndarray,
    skip: tuple = (),
    collar: int = 0,
) -> Dict:
    """Write the product from an ascending (rows, cols, bands) reflectance cube; ``collar`` rows
    and columns at the edges become DN 0 (the no-data frame of a geocoded scene). Returns what
    a reader must find: ascending wavelengths kept, reflectance after the DN round trip."""
    import h5py

    rows, cols, _ = reflectance.shape
    tables = split_detectors(wavelengths, fwhm)
    kept_wl = []
    with h5py.File(path, "w") as f:
        fields = f.create_group(FIELDS)
        for name in ("Vnir", "Swir"):
            cw, fw, index = tables[name]
            lo, hi = SCALE[name]
            cube = np.zeros((rows, cw.size, cols), dtype=np.uint16)
            for slot, w in enumerate(cw):
                if w == 0:
                    continue
                band = reflectance[:, :, index[slot]]
                dn = np.clip(np.round((band - lo) / (hi - lo) * 65535.0), 1, 65535).astype(np.uint16)
                if collar:
                    frame = np.ones_like(dn, dtype=bool)
                    frame[collar:-collar, collar:-collar] = False
                    dn[frame] = 0
                cube[:, slot, :] = dn
            if f"{name.upper()}_Cube" not in skip:
                fields.create_dataset(f"{name.upper()}_Cube", data=cube)
            f.attrs[f"List_Cw_{name}"] = cw
            f.attrs[f"List_Fwhm_{name}"] = fw
            f.attrs[f"L2Scale{name}Min"] = np.float32(lo)
            f.attrs[f"L2Scale{name}Max"] = np.float32(hi)
        f.attrs["Epsg_Code"] = np.int32(32632)
        f.attrs["Product_ULcorner_easting"] = np.float64(UL[0])
        f.attrs["Product_ULcorner_northing"] = np.float64(UL[1])
        f.attrs["Product_LRcorner_easting"] = np.float64(UL[0] + (cols - 1) * PIXEL)
        f.attrs["Product_LRcorner_northing"] = np.float64(UL[1] - (rows - 1) * PIXEL)
        f.attrs["Processing_Level"] = np.bytes_("2D")
        f.create_group("HDFEOS INFORMATION").create_dataset(
            "StructMetadata.0",
            data=np.bytes_(
                "GROUP=SwathStructure\n\tGROUP=SWATH_1\n\t\t"
                'SwathName="PRS_L2D_HCO"\nEND_GROUP=SwathStructure\nEND'
            ),
        )
    vnir_cw, swir_cw = tables["Vnir"][0], tables["Swir"][0]
    swir_start = swir_cw[swir_cw > 0].min()
    for w in sorted(set(vnir_cw[(vnir_cw > 0) & (vnir_cw < swir_start)]) | set(swir_cw[swir_cw > 0])):
        kept_wl.append(w)
    return {
        "wavelengths": np.array(kept_wl),
        "transform": (UL[0] - PIXEL / 2, PIXEL, 0.0, UL[1] + PIXEL / 2, 0.0, -PIXEL),
    }
