"""Planet Tanager HDF5-EOS, written with h5py: ``HDFEOS/SWATHS/HYP`` (basic) or
``HDFEOS/GRIDS/HYP`` (ortho) ``/Data Fields/surface_reflectance`` float32 (bands, rows, cols)
with attributes ``wavelengths``, ``fwhm``, ``good_wavelengths`` and ``_FillValue``;
``nodata_pixels`` (1 = outside the acquisition), ``beta_cloud_mask``; the basic swath's
``Geolocation Fields/{Latitude, Longitude}``; the grid's ``epsg_code`` and the corners in
``HDFEOS INFORMATION/StructMetadata.0``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

UL, PIXEL, EPSG = (600000.0, 3900000.0), 30.0, 32611
FILL = -9999.0


def write_tanager(
    path: Path,
    reflectance: np.ndarray,
    wavelengths,
    fwhm,
    good,
    ortho: bool,
    nodata_pixels: np.ndarray = None,
    skip: tuple = (),
) -> Path:
    import h5py

    rows, cols, bands = reflectance.shape
    group = "HDFEOS/GRIDS/HYP" if ortho else "HDFEOS/SWATHS/HYP"
    with h5py.File(path, "w") as f:
        fields = f.create_group(f"{group}/Data Fields")
        if "surface_reflectance" not in skip:
            cube = fields.create_dataset(
                "surface_reflectance",
                data=np.moveaxis(reflectance, 2, 0).astype(np.float32),
                fillvalue=np.float32(FILL),
            )
            cube.attrs["wavelengths"] = np.asarray(wavelengths, np.float32)
            cube.attrs["fwhm"] = np.asarray(fwhm, np.float32)
            cube.attrs["good_wavelengths"] = np.asarray(good, np.uint8)
            cube.attrs["_FillValue"] = np.float32(FILL)
        mask = np.zeros((rows, cols), np.uint8) if nodata_pixels is None else nodata_pixels.astype(np.uint8)
        fields.create_dataset("nodata_pixels", data=mask)
        fields.create_dataset("beta_cloud_mask", data=np.zeros((rows, cols), np.uint8))
        if ortho:
            f[group].attrs["epsg_code"] = np.int32(EPSG)
            text = (
                f'GROUP=GridStructure\n\tGROUP=GRID_1\n\t\tGridName="HYP"\n\t\tXDim={cols}\n'
                f"\t\tYDim={rows}\n\t\tUpperLeftPointMtrs=({UL[0]:.6f},{UL[1]:.6f})\n"
                f"\t\tLowerRightMtrs=({UL[0] + cols * PIXEL:.6f},{UL[1] - rows * PIXEL:.6f})\n"
                "\t\tProjection=HE5_GCTP_UTM\n\t\tZoneCode=11\nEND_GROUP=GridStructure\nEND"
            )
        else:
            geo = f.create_group(f"{group}/Geolocation Fields")
            lat, lon = np.meshgrid(
                35.0 - 0.0003 * np.arange(rows), -117.0 + 0.0003 * np.arange(cols), indexing="ij"
            )
            geo.create_dataset("Latitude", data=lat)
            geo.create_dataset("Longitude", data=lon)
            text = 'GROUP=SwathStructure\n\tGROUP=SWATH_1\n\t\tSwathName="HYP"\nEND_GROUP=SwathStructure\nEND'
        f.create_group("HDFEOS INFORMATION").create_dataset("StructMetadata.0", data=np.bytes_(text))
    return Path(path)
