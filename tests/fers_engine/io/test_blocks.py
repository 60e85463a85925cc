"""Block sizes from a memory budget and row blocks with halos."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.io import default_block_rows, iter_row_blocks
from fers_engine.io.blocks import count_blocks


def test_block_rows_from_budget():
    # 1000 px * 200 bands * 4 B * 4 copies = 3.2 MB per row; 256 MiB -> 83 rows
    assert default_block_rows(1000, 200) == 83
    assert default_block_rows(1000, 200, budget_bytes=3_200_000) == 1
    assert default_block_rows(10, 10, bytes_per_value=8, budget_bytes=8000, copies=1) == 10
    assert default_block_rows(10**6, 500, budget_bytes=1) == 1, "never less than one row"
    with pytest.raises(ValueError):
        default_block_rows(0, 10)


@pytest.mark.parametrize("height, rows, halo", [(10, 3, 0), (10, 3, 2), (10, 10, 5), (7, 1, 3), (5, 100, 1)])
def test_cores_tile_the_image_and_halos_clamp(height, rows, halo):
    blocks = list(iter_row_blocks(height, rows, halo))
    assert len(blocks) == count_blocks(height, rows)
    covered = np.zeros(height, int)
    for c0, c1, r0, r1 in blocks:
        covered[c0:c1] += 1
        assert 0 <= r0 <= c0 < c1 <= r1 <= height
        assert r0 == max(0, c0 - halo) and r1 == min(height, c1 + halo)
        assert c1 - c0 <= rows
    assert (covered == 1).all()


def test_halo_values():
    assert list(iter_row_blocks(10, 4, halo=1)) == [(0, 4, 0, 5), (4, 8, 3, 9), (8, 10, 7, 10)]
    assert list(iter_row_blocks(0, 4)) == []
    with pytest.raises(ValueError):
        list(iter_row_blocks(10, 0))
    with pytest.raises(ValueError):
        list(iter_row_blocks(10, 2, halo=-1))
