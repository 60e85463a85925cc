"""Sensor products' NetCDF/HDF5 files through GDAL's multidimensional API, with one-line errors.

Every multidimensional product reader (EMIT, AVIRIS-3, PRISMA, Tanager) opens its file and reads
its arrays here. GDAL's failures are collected by ``GdalErrors`` (the engine's one way of hearing
GDAL, in either binding mode) and end up in an ``InputError`` that names the file and what was
expected, so a truncated HDF5 file or a missing group never surfaces as a traceback or stderr spam.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .gdal_runtime import GdalErrors, import_gdal


def gdal_call(fn: Callable[..., Any], *args, **kwargs) -> Tuple[Any, Optional[str]]:
    """``(result or None, GDAL's first failure message or None)`` of one GDAL call."""
    with GdalErrors() as errors:
        result = errors.call(fn, *args, **kwargs)
        return result, errors.take()


def open_multidim(path: str, label: str, what: str):
    """``(dataset, root group)`` of a NetCDF/HDF5 file through GDAL's multidimensional API."""
    gdal = import_gdal()
    short = hdf5_truncation(path)
    if short:  # checked first: libhdf5 prints a page of diagnostics GDAL cannot silence
        raise InputError(f"cannot read {label} as {what}: {short}")
    ds, reason = gdal_call(gdal.OpenEx, str(path), gdal.OF_MULTIDIM_RASTER | gdal.OF_READONLY)
    root = gdal_call(ds.GetRootGroup)[0] if ds is not None else None
    if root is None:
        raise InputError(
            f"cannot read {label} as {what}: the file is corrupt or not NetCDF/HDF5"
            + (f" ({reason})" if reason else "")
        )
    return ds, root


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path) -> bool:
    """NetCDF-4 and HDF5 files (EMIT, AVIRIS-3, PRISMA, Tanager) start with the HDF5 signature."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def hdf5_truncation(path: str) -> Optional[str]:
    """'the file is truncated (...)' when an HDF5/NetCDF-4 file is shorter than the end-of-file
    address its superblock records (an interrupted download), else None. Reads the superblock
    only (versions 0-3 at offset 0; the address is relative to a base address, 0 in practice)."""
    import os

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(128)
    except OSError:
        return None
    if not head.startswith(HDF5_SIGNATURE) or len(head) < 16:
        return None
    version = head[8]
    if version in (0, 1):  # ..., flags (20-23), [v1: 4 bytes], base, free-space, EOF addresses
        offsets = head[13]
        at = 24 + (4 if version == 1 else 0) + 2 * offsets
    elif version in (2, 3):  # ..., flags (11), base, superblock-extension, EOF addresses
        offsets = head[9]
        at = 12 + 2 * offsets
    else:
        return None
    if offsets not in (2, 4, 8) or len(head) < at + offsets:
        return None
    stored = int.from_bytes(head[at : at + offsets], "little")
    if stored != (1 << (8 * offsets)) - 1 and size < stored:  # all ones = undefined address
        return f"the file is truncated ({size} of {stored} bytes; an interrupted download?)"
    return None


def find_array(root, fullname: str):
    """The array at ``/group/sub/name`` or None (HDF5 and NetCDF names may contain spaces)."""
    return gdal_call(root.OpenMDArrayFromFullname, fullname)[0]


def find_group(root, fullname: str):
    return gdal_call(root.OpenGroupFromFullname, fullname)[0]


def require_array(root, fullname: str, label: str, ndim: Optional[int] = None):
    """The array at ``fullname``; an ``InputError`` naming the file when it is missing or the
    wrong shape (the usual sign of a truncated download or a different product)."""
    array = find_array(root, fullname)
    if array is None:
        raise InputError(f"{label}: missing {fullname} (not a complete product of this kind)")
    if ndim is not None and array.GetDimensionCount() != ndim:
        raise InputError(f"{label}: {fullname} has {array.GetDimensionCount()} dimensions, expected {ndim}")
    return array


def array_shape(array) -> List[int]:
    return [int(d.GetSize()) for d in array.GetDimensions()]


def read_array(
    array, label: str, start: Optional[Sequence[int]] = None, count: Optional[Sequence[int]] = None
) -> np.ndarray:
    """A hyperslab of an MDArray as numpy; a failed read (truncated file) is an ``InputError``."""
    if start is None or count is None:
        data, reason = gdal_call(array.ReadAsArray)
    else:
        data, reason = gdal_call(
            array.ReadAsArray, array_start_idx=[int(v) for v in start], count=[int(v) for v in count]
        )
    if data is None or reason:
        raise InputError(
            f"{label}: reading {array.GetFullName()} failed (file truncated or corrupt"
            + (f": {reason})" if reason else ")")
        )
    return np.asarray(data)


def read_text(array, label: str) -> str:
    """A scalar or 1-element string array (e.g. HDF-EOS ``StructMetadata.0``) as text."""
    value = gdal_call(array.Read)[0]
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    return str(value)


def attribute(obj, name: str) -> Any:
    """An attribute's value (scalar, tuple or string) on a group or array, or None."""
    attr = gdal_call(obj.GetAttribute, name)[0]
    return None if attr is None else gdal_call(attr.Read)[0]


def attribute_array(obj, name: str, label: str, where: str) -> np.ndarray:
    """A numeric attribute as a 1-D float64 array; missing or non-numeric is an ``InputError``."""
    value = attribute(obj, name)
    if value is None:
        raise InputError(f"{label}: missing attribute {name} on {where}")
    try:
        return np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise InputError(f"{label}: attribute {name} on {where} is not numeric") from None


def srs_wkt(user_input: str) -> str:
    """WKT of ``EPSG:n`` or any definition osr understands (``InputError`` when it does not)."""
    from osgeo import osr

    srs = osr.SpatialReference()
    err, reason = gdal_call(srs.SetFromUserInput, str(user_input))
    if err != 0 or reason:
        raise InputError(f"unknown coordinate reference system {user_input!r}")
    return srs.ExportToWkt()
