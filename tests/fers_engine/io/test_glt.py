"""Moving a score map onto a map grid through a lookup: EMIT's GLT and the north-up AVIRIS grid."""

from __future__ import annotations

import numpy as np

from fers_engine.io.aviris import NorthUp
from fers_engine.io.glt import Lookup, MapView


class _Table(Lookup):
    def __init__(self, src_row, src_col):
        self.src_row, self.src_col = src_row, src_col
        self.height, self.width = src_row.shape

    def rows(self, row0, row1):
        return self.src_row[row0:row1], self.src_col[row0:row1]


class _Rows:
    def __init__(self, shape):
        self.out, self.calls = np.zeros(shape, np.float32), []

    def write(self, row0, block):
        self.calls.append(block.shape[0])
        self.out[row0 : row0 + block.shape[0]] = block


def test_map_view_is_a_plain_lookup_whatever_the_blocking():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(9, 7)).astype(np.float32)
    src_row = rng.integers(-1, 9, size=(11, 6))
    src_col = np.where(src_row >= 0, rng.integers(0, 7, size=(11, 6)), -1)
    view = MapView(_Table(src_row, src_col), "EPSG:4326", (0, 1, 0, 0, 0, -1), "test")
    expected = np.where(src_row >= 0, values[np.maximum(src_row, 0), np.maximum(src_col, 0)], np.nan)
    for block_rows in (1, 4, 100):
        sink = _Rows(expected.shape)
        view.write(values, sink, block_rows)
        np.testing.assert_array_equal(sink.out, expected)
        assert max(sink.calls) <= block_rows


def test_north_up_grid_samples_the_pixel_under_each_centre():
    a = np.deg2rad(30.0)
    gt = (1000.0, 2 * np.cos(a), 2 * np.sin(a), 5000.0, 2 * np.sin(a), -2 * np.cos(a))
    lookup = NorthUp(gt, 10, 6)
    x0, size, _, y0, _, _ = lookup.transform
    assert size == 2.0 and lookup.transform[2] == lookup.transform[4] == 0.0
    src_row, src_col = lookup.rows(0, lookup.height)
    hit = np.argwhere(src_row >= 0)
    assert len(hit) > 0.9 * 60  # the rotated footprint covers about its own area
    for r, c in hit[::7]:
        x, y = x0 + (c + 0.5) * size, y0 - (r + 0.5) * size
        # forward: the input pixel (row, col) must contain the map pixel centre
        col, row = np.linalg.solve([[gt[1], gt[2]], [gt[4], gt[5]]], [x - gt[0], y - gt[3]])
        assert (int(np.floor(row)), int(np.floor(col))) == (src_row[r, c], src_col[r, c])
    # every input pixel centre lands in the bounding grid
    for row, col in [(0, 0), (9, 5), (0, 5), (9, 0)]:
        x = gt[0] + (col + 0.5) * gt[1] + (row + 0.5) * gt[2]
        y = gt[3] + (col + 0.5) * gt[4] + (row + 0.5) * gt[5]
        assert x0 <= x <= x0 + lookup.width * size and y0 - lookup.height * size <= y <= y0
