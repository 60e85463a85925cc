"""Putting scores computed in a product's own geometry onto its map grid, through a lookup table.

EMIT ships its swath with a geometry lookup table (GLT): for every pixel of the north-up ortho
grid, the 1-based swath column and row it shows (0 = no data). A rotated AVIRIS flight line asks
the same question of a computed table when a north-up output is wanted. Detection runs in the
product's own geometry, where every pixel appears once (an ortho cube repeats some swath pixels
and drops others, which would bias the background statistics); the one 2-D score map is then
gathered onto the map grid row block by row block: ``map[r, c] = scores[src_row, src_col]``,
NaN where the lookup has no source. Each map pixel is one swath pixel, so the result does not
depend on the blocking, and the cube itself is never resampled or held whole (every known EMIT
reader loads the 1.8 GB swath first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


class Lookup:
    """Where each map pixel comes from: ``rows(row0, row1) -> (src_row, src_col)``, int64
    arrays of shape (rows, width), -1 where the map pixel has no source."""

    height: int
    width: int

    def rows(self, row0: int, row1: int) -> Tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError


@dataclass
class MapView:
    """The map grid a scene's scores are written on: size and georeference of ``lookup``."""

    lookup: Lookup
    crs: Optional[str]
    transform: Tuple[float, ...]
    note: str

    @property
    def height(self) -> int:
        return self.lookup.height

    @property
    def width(self) -> int:
        return self.lookup.width

    def render(self, values: np.ndarray, row0: int, row1: int) -> np.ndarray:
        """Map rows ``row0:row1`` of a 2-D map in the scene's geometry (float32, NaN = no source)."""
        src_row, src_col = self.lookup.rows(row0, row1)
        out = np.full(src_row.shape, np.nan, dtype=np.float32)
        has = src_row >= 0
        out[has] = values[src_row[has], src_col[has]]
        return out

    def write(self, values: np.ndarray, writer, block_rows: int) -> None:
        """Stream the whole map into ``writer`` (anything with ``write(row0, array)``)."""
        for r0 in range(0, self.height, max(1, int(block_rows))):
            r1 = min(self.height, r0 + max(1, int(block_rows)))
            writer.write(r0, self.render(values, r0, r1))
