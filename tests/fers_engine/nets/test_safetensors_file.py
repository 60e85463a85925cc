"""The pure-numpy safetensors reader/writer: the reference package's files read the same, and
every hostile header is one ModelError line before any tensor is read."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from fers_engine.errors import ModelError
from fers_engine.nets.bundled import MODELS_DIR
from fers_engine.nets.safetensors_file import encode, read_file, read_header


def _tensors():
    rng = np.random.default_rng(0)
    return {
        "w": rng.normal(size=(3, 4, 1, 1)).astype(np.float32),
        "b": np.arange(5, dtype=np.float64),
        "n": np.array(7, dtype=np.int64),
        "empty": np.zeros((0, 3), np.float32),
        "flags": np.array([True, False]),
        "h": np.ones(2, np.float16),
    }


def _file(tmp_path: Path, header: dict, data: bytes = b"", raw_header: bytes = None) -> Path:
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def test_round_trip_keeps_names_dtypes_shapes_values_and_metadata(tmp_path):
    tensors = _tensors()
    path = tmp_path / "x.safetensors"
    path.write_bytes(encode(tensors, {"fers_card": "{}", "k": "v"}))
    got, meta = read_file(path)
    assert meta == {"fers_card": "{}", "k": "v"} and set(got) == set(tensors)
    for k, v in tensors.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and np.array_equal(got[k], v), k
        assert got[k].flags.writeable and got[k].flags.c_contiguous
    big_endian = {"w": tensors["w"].astype(">f4")}
    path.write_bytes(encode(big_endian))
    assert np.array_equal(read_file(path)[0]["w"], tensors["w"])


def test_files_of_the_reference_package_read_identically(tmp_path):
    """The shipped model (written by the safetensors package) and our own writer agree with it."""
    st = pytest.importorskip("safetensors.numpy")
    shipped = MODELS_DIR / "fers-default.safetensors"
    ours, meta = read_file(shipped)
    ref = st.load_file(str(shipped))
    assert set(ours) == set(ref) and all(
        np.array_equal(ours[k], ref[k]) and ours[k].dtype == ref[k].dtype for k in ref
    )
    assert "fers_card" in meta
    path = tmp_path / "ours.safetensors"
    path.write_bytes(encode(_tensors(), {"a": "b"}))
    back = st.load_file(str(path))
    assert all(np.array_equal(back[k], v) for k, v in _tensors().items())


@pytest.mark.parametrize(
    "case, header, data, words",
    [
        ("header longer than the file", None, b"", "header of 1000000 bytes"),
        ("not JSON", b"{not json}", b"", "header"),
        ("not an object", b"[1, 2]  ", b"", "not a JSON object"),
        (
            "duplicate names",
            b'{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
            b'"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}',
            b"\0",
            "duplicate",
        ),
        ("unknown dtype", {"a": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, b"\0\0", "BF16"),
        (
            "negative dimension",
            {"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
            b"\0" * 4,
            "shape",
        ),
        (
            "float dimension",
            {"a": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}},
            b"\0" * 4,
            "shape",
        ),
        (
            "size does not match shape",
            {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 4]}},
            b"\0" * 4,
            "needs 12 bytes",
        ),
        (
            "offsets beyond the file",
            {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
            b"\0" * 4,
            "starts at byte 4",
        ),
        (
            "overlap",
            {
                "a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]},
            },
            b"\0" * 3,
            "gap or overlap",
        ),
        ("trailing bytes", {"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\0\0", "padded"),
        (
            "truncated data",
            {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
            b"\0" * 8,
            "truncated",
        ),
        (
            "extra field",
            {"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "x": 1}},
            b"\0",
            "exactly",
        ),
        ("metadata not strings", {"__metadata__": {"a": 1}}, b"", "strings"),
        (
            "billions of elements claimed",
            {"a": {"dtype": "F64", "shape": [100000, 100000, 100], "data_offsets": [0, 8 * 10**12]}},
            b"\0" * 8,
            "file has 8",
        ),
    ],
)
def test_hostile_headers_are_one_line_errors(tmp_path, case, header, data, words):
    if header is None:
        path = tmp_path / "m.safetensors"
        path.write_bytes((10**6).to_bytes(8, "little") + b"{}")
    else:
        path = _file(
            tmp_path,
            header if isinstance(header, dict) else {},
            data,
            raw_header=header if isinstance(header, bytes) else None,
        )
    tracemalloc.start()
    try:
        with pytest.raises(ModelError, match=words) as err:
            read_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(err.value) and path.name in str(err.value), case
    assert peak < 2 * 2**20, f"{case}: {peak} bytes allocated before refusing"


def test_empty_and_tiny_files(tmp_path):
    for blob in (b"", b"\x01\x00"):
        path = tmp_path / "tiny.safetensors"
        path.write_bytes(blob)
        with pytest.raises(ModelError, match="not a safetensors model file"):
            read_header(path)
    with pytest.raises(ModelError, match="model path is not a file"):
        read_header(tmp_path)
