"""The safetensors format in pure numpy: read and write model files without the safetensors
package or torch (neither is in QGIS's Python).

Layout (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length N, N
bytes of UTF-8 JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{str: str}}``, then the raw little-endian tensor bytes, offsets counted from the end of the
header. Nothing in a file is trusted: the header size, every dtype, shape and offset are checked
against the file's actual size before a single tensor is read, the tensors must tile the data
area exactly (no gap, no overlap, nothing after), and nothing is ever unpickled, so a hostile
file can neither run code nor make the reader allocate more than the file holds.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from ..errors import ModelError

#: safetensors dtype name -> little-endian numpy dtype (bfloat16 has no numpy type: refused).
DTYPES: Dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {dt.newbyteorder("<") if dt.itemsize > 1 else dt: name for name, dt in DTYPES.items()}
MAX_HEADER_BYTES = 100 * 2**20  # the reference implementation's limit
MAX_DIMS = 8


def read_header(path) -> Tuple[Dict[str, dict], Dict[str, str], int]:
    """``(tensor entries, metadata, data start)`` of a safetensors file, all checked against
    the file's size; the tensor bytes are not read."""
    path = Path(path)
    size = _size(path)
    if size < 8:
        raise ModelError(f"{path.name} is not a safetensors model file ({size} bytes)")
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        if n < 2 or n > min(MAX_HEADER_BYTES, size - 8):
            raise ModelError(
                f"{path.name} is not a safetensors model file (header of {n} bytes in a {size}-byte file)"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path.name} is not a safetensors model file (header: {_short(exc)})") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path.name} is not a safetensors model file (header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ModelError(f"{path.name}: safetensors metadata must map strings to strings")
    data_len = size - 8 - n
    entries = {name: _check_entry(path, name, entry) for name, entry in header.items()}
    spans = sorted((e["data_offsets"][0], e["data_offsets"][1], name) for name, e in entries.items())
    at = 0
    for begin, end, name in spans:
        if begin != at:
            raise ModelError(
                f"{path.name}: tensor {name!r} starts at byte {begin}, expected {at} "
                "(gap or overlap in the data)"
            )
        at = end
    if at != data_len:
        raise ModelError(
            f"{path.name}: the tensors hold {at} bytes but the file has {data_len} (truncated or padded)"
        )
    return entries, dict(metadata), 8 + n


def read_file(path) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """``(name -> numpy array in native byte order, metadata)``; see ``read_header`` for checks."""
    path = Path(path)
    entries, metadata, start = read_header(path)
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read()
    tensors = {}
    for name, e in entries.items():
        begin, end = e["data_offsets"]
        dtype = DTYPES[e["dtype"]]
        arr = np.frombuffer(data, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=begin)
        tensors[name] = arr.reshape(e["shape"]).astype(dtype.newbyteorder("="), copy=True)
    return tensors, metadata


def encode(tensors: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` (numpy arrays) and ``metadata``."""
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    at = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        little = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
        if little not in _NAMES:
            raise ModelError(f"tensor {name!r}: data type {arr.dtype} cannot be stored in safetensors")
        blob = np.ascontiguousarray(arr, dtype=little).tobytes()
        header[name] = {
            "dtype": _NAMES[little],
            "shape": list(arr.shape),
            "data_offsets": [at, at + len(blob)],
        }
        blobs.append(blob)
        at += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data area starts 8-byte aligned
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


# -- helpers ----------------------------------------------------------------------------------
def _check_entry(path: Path, name: str, entry) -> dict:
    where = f"{path.name}: tensor {name!r}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ModelError(f"{where} must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        raise ModelError(f"{where} has unsupported dtype {dtype!r} (supported: {', '.join(DTYPES)})")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise ModelError(f"{where} has an invalid shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise ModelError(f"{where} has invalid data offsets {offsets!r}")
    expected = math.prod(shape) * DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != expected:
        raise ModelError(
            f"{where}: shape {shape} of {dtype} needs {expected} bytes, its offsets span "
            f"{offsets[1] - offsets[0]}"
        )
    return {"dtype": dtype, "shape": tuple(shape), "data_offsets": tuple(offsets)}


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys")
    return dict(pairs)


def _size(path: Path) -> int:
    try:
        if not path.is_file():
            raise ModelError(
                f"model file not found: {path}" if not path.exists() else f"model path is not a file: {path}"
            )
        return os.path.getsize(path)
    except OSError as exc:
        raise ModelError(f"cannot read {path} ({exc.strerror or exc})") from None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
