"""Opening sensor products through ``osgeo.gdal`` with one-line errors instead of GDAL noise.

Every product reader opens its file here: GDAL's own error text goes to a quiet handler and
the first line of it ends up in an ``InputError`` that names the file and what was expected,
so a truncated HDF5 file or a missing group never surfaces as a traceback or as stderr spam.
GDAL's process-wide exception mode is left alone (other code in the process may rely on it).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Sequence

import numpy as np

from ..errors import InputError


@contextmanager
def quiet_gdal() -> Iterator[None]:
    """Silence GDAL's error printing for the block; ``last_gdal_error()`` still reports it."""
    from osgeo import gdal

    gdal.ErrorReset()
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        yield
    finally:
        gdal.PopErrorHandler()


def last_gdal_error() -> str:
    """First line of GDAL's last error message ('' when there was none)."""
    from osgeo import gdal

    text = (gdal.GetLastErrorMsg() or "").strip()
    return text.splitlines()[0] if text else ""


def open_raster(source: str, label: str, what: str = "a raster"):
    """``gdal.Dataset`` opened read-only as a 2-D raster, or an ``InputError`` naming ``label``."""
    from osgeo import gdal

    with quiet_gdal():
        ds = gdal.OpenEx(str(source), gdal.OF_RASTER | gdal.OF_READONLY)
        reason = last_gdal_error()
    if ds is None:
        raise InputError(f"cannot read {label} as {what}" + (f" ({reason})" if reason else ""))
    return ds


def open_multidim(path: str, label: str, what: str):
    """Root group of a NetCDF/HDF5 file through GDAL's multidimensional API."""
    from osgeo import gdal

    short = hdf5_truncation(path)
    if short:  # checked first: libhdf5 prints a page of diagnostics GDAL cannot silence
        raise InputError(f"cannot read {label} as {what}: {short}")
    with quiet_gdal():
        ds = gdal.OpenEx(str(path), gdal.OF_MULTIDIM_RASTER | gdal.OF_READONLY)
        reason = last_gdal_error()
        root = ds.GetRootGroup() if ds is not None else None
    if root is None:
        raise InputError(f"cannot read {label} as {what}: the file is truncated, corrupt or not "
                         f"NetCDF/HDF5" + (f" ({reason})" if reason else ""))
    return ds, root


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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
    stored = int.from_bytes(head[at:at + offsets], "little")
    if stored != (1 << (8 * offsets)) - 1 and size < stored:  # all ones = undefined address
        return f"the file is truncated ({size} of {stored} bytes; an interrupted download?)"
    return None


def find_array(root, fullname: str):
    """The array at ``/group/sub/name`` or None (HDF5 and NetCDF names may contain spaces)."""
    with quiet_gdal():
        return root.OpenMDArrayFromFullname(fullname)


def find_group(root, fullname: str):
    with quiet_gdal():
        return root.OpenGroupFromFullname(fullname)


def require_array(root, fullname: str, label: str, ndim: Optional[int] = None):
    """The array at ``fullname``; an ``InputError`` naming the file when it is missing or the
    wrong shape (the usual sign of a truncated download or a different product)."""
    array = find_array(root, fullname)
    if array is None:
        raise InputError(f"{label}: missing {fullname} (not a complete product of this kind)")
    if ndim is not None and array.GetDimensionCount() != ndim:
        raise InputError(f"{label}: {fullname} has {array.GetDimensionCount()} dimensions, "
                         f"expected {ndim}")
    return array


def array_shape(array) -> List[int]:
    return [int(d.GetSize()) for d in array.GetDimensions()]


def read_array(array, label: str, start: Optional[Sequence[int]] = None,
               count: Optional[Sequence[int]] = None) -> np.ndarray:
    """A hyperslab of an MDArray as numpy; a failed read (truncated file) is an ``InputError``."""
    with quiet_gdal():
        if start is None:
            data = array.ReadAsArray()
        else:
            data = array.ReadAsArray(array_start_idx=[int(v) for v in start],
                                     count=[int(v) for v in count])
        reason = last_gdal_error()
    if data is None:
        raise InputError(f"{label}: reading {array.GetFullName()} failed (file truncated or corrupt"
                         + (f": {reason})" if reason else ")"))
    return np.asarray(data)


def read_text(array, label: str) -> str:
    """A scalar or 1-element string array (e.g. HDF-EOS ``StructMetadata.0``) as text."""
    with quiet_gdal():
        value = array.Read()
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    return str(value)


def attribute(obj, name: str) -> Any:
    """An attribute's value (scalar, tuple or string) on a group or array, or None."""
    with quiet_gdal():
        attr = obj.GetAttribute(name)
        return None if attr is None else attr.Read()


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
    with quiet_gdal():
        err = srs.SetFromUserInput(str(user_input))
    if err != 0:
        raise InputError(f"unknown coordinate reference system {user_input!r}")
    return srs.ExportToWkt()
