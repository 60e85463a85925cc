"""What the enhancers see around a pixel: nodata filled from the nearest valid pixel, and the
image border continued the same way (numpy only, no torch).

A convolution near a nodata collar or the image edge must read *something* there. Zeros (the
old rule) are a spectrum no surface has: the networks answered them with strong features along
every collar, and a collar cost 0.005-0.014 AUC (bench/invariance.py). Here every invalid pixel
takes the spectrum of a nearest valid pixel (4-connected propagation, ``depth`` steps), and a
block is extended beyond the image border by repeating its edge pixels (which is the same rule:
outside a rectangle the nearest pixel is the clamped one). A scene with a rectangular nodata
collar therefore gives exactly the features of the same scene without it, and the networks'
own padding never reaches a pixel that is scored.

Locality (for tiled inference): the features of a pixel read at most ``halo`` px around it; a
filled pixel within ``halo`` of a valid one takes its value from at most ``2 * halo`` steps
away. So a block needs ``context_rows(halo, has_nodata)`` rows on each side: ``halo`` without
nodata, ``3 * halo`` with it.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

import numpy as np

# neighbour offsets in a fixed order: ties between equally near valid pixels are broken the same
# way everywhere, so the fill depends only on the data
_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def context_rows(halo: int, has_nodata: bool) -> int:
    """Rows (and columns) of context a block needs on each side for exact features."""
    return int(halo) * (3 if has_nodata else 1)


def nearest_valid_index(valid: np.ndarray, depth: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, reached) of a nearest valid pixel for every pixel, by ``depth`` steps of
    4-connected propagation; ``reached`` is False where no valid pixel is within ``depth``."""
    valid = np.asarray(valid, bool)
    h, w = valid.shape
    rr, cc = np.indices((h, w))
    src_r = np.where(valid, rr, -1)
    src_c = np.where(valid, cc, -1)
    reached = valid.copy()
    for _ in range(int(depth)):
        if reached.all():
            break
        new_r, new_c, new_reached = src_r.copy(), src_c.copy(), reached.copy()
        for dr, dc in _STEPS:
            # neighbour value at (r + dr, c + dc), for pixels not yet reached
            nb_reached = np.zeros_like(reached)
            nb_r = np.full_like(src_r, -1)
            nb_c = np.full_like(src_c, -1)
            ys = slice(max(dr, 0), h + min(dr, 0))
            yd = slice(max(-dr, 0), h + min(-dr, 0))
            xs = slice(max(dc, 0), w + min(dc, 0))
            xd = slice(max(-dc, 0), w + min(-dc, 0))
            nb_reached[yd, xd] = reached[ys, xs]
            nb_r[yd, xd] = src_r[ys, xs]
            nb_c[yd, xd] = src_c[ys, xs]
            take = nb_reached & ~new_reached
            new_r[take] = nb_r[take]
            new_c[take] = nb_c[take]
            new_reached |= take
        src_r, src_c, reached = new_r, new_c, new_reached
    return src_r, src_c, reached


def fill_invalid(block: np.ndarray, valid: np.ndarray, depth: int) -> np.ndarray:
    """A copy of ``block`` (C, H, W) whose invalid pixels hold a nearest valid pixel's spectrum
    (0 where none is within ``depth`` steps: such pixels never reach a scored one)."""
    valid = np.asarray(valid, bool)
    out = np.array(block, dtype=np.float32, copy=True)
    if valid.all():
        return out
    rows, cols, reached = nearest_valid_index(valid, depth)
    todo = ~valid
    out[:, todo] = 0.0
    fill = todo & reached
    if fill.any():
        out[:, fill] = block[:, rows[fill], cols[fill]]
    return out


def scene_features(
    features: Callable[[np.ndarray], Dict[str, np.ndarray]], x: np.ndarray, valid: np.ndarray, halo: int
) -> Dict[str, np.ndarray]:
    """Features of a whole (normalised) cube: invalid pixels filled, the border continued by
    ``halo`` px, ``features`` run on that, the scene's own pixels returned."""
    return block_features(features, x, valid, 0, x.shape[1], 0, x.shape[1], halo)


def block_features(
    features: Callable[[np.ndarray], Dict[str, np.ndarray]],
    x: np.ndarray,
    valid: np.ndarray,
    read0: int,
    read1: int,
    row0: int,
    row1: int,
    halo: int,
    height: int | None = None,
    strip: int = 512,
) -> Dict[str, np.ndarray]:
    """Features of scene rows ``[row0, row1)`` from the rows ``[read0, read1)`` read around them.

    ``x`` / ``valid`` hold rows ``[read0, read1)`` of a scene ``height`` rows high (default:
    exactly these rows); they must include ``context_rows(halo, ...)`` rows on each side where
    the scene has them. Columns are always the scene's full width; ``features`` runs on column
    strips of ``strip`` columns (plus the halo), so only one strip's features are in memory.
    """
    height = read1 if height is None else height
    filled = fill_invalid(x, valid, 2 * halo)
    lo, hi = max(read0, row0 - halo), min(read1, row1 + halo)
    pad_top = halo - (row0 - lo)
    pad_bottom = halo - (hi - row1)
    if (pad_top and lo > 0) or (pad_bottom and hi < height):
        raise ValueError("block_features needs halo rows around the block where the scene has them")
    core = filled[:, lo - read0 : hi - read0]
    if halo:
        core = np.pad(core, ((0, 0), (pad_top, pad_bottom), (halo, halo)), mode="edge")
    rows, width = row1 - row0, x.shape[2]
    out: Dict[str, np.ndarray] = {}
    for c0 in range(0, width, strip):
        c1 = min(width, c0 + strip)
        part = features(core[:, :, c0 : c1 + 2 * halo])
        for k, v in part.items():
            if k not in out:
                out[k] = np.empty((v.shape[0], rows, width), np.float32)
            out[k][:, :, c0:c1] = v[:, halo : halo + rows, halo : halo + c1 - c0]
    return out
