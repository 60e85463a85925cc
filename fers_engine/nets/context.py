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

from typing import Callable, Dict, Iterator, Tuple

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
    """``block`` (C, H, W) with its invalid pixels holding a nearest valid pixel's spectrum (0
    where none is within ``depth`` steps: such pixels never reach a scored one): a new array when
    there is something to fill, else ``block`` itself, read-only by contract."""
    valid = np.asarray(valid, bool)
    if valid.all():  # nothing to fill: the block itself (callers only read it), no copy to hold
        return np.asarray(block, dtype=np.float32)
    out = np.array(block, dtype=np.float32, copy=True)
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


def feature_strips(
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
) -> Iterator[Tuple[int, int, Dict[str, np.ndarray]]]:
    """Features of scene rows ``[row0, row1)``, one column strip at a time: ``(c0, c1, parts)``
    with each part ``(C, row1 - row0, c1 - c0)``, computed from the rows ``[read0, read1)`` read
    around the block.

    ``x`` / ``valid`` hold rows ``[read0, read1)`` of a scene ``height`` rows high (default:
    exactly these rows); they must include ``context_rows(halo, ...)`` rows on each side where
    the scene has them. ``features`` runs on strips of ``strip`` columns plus the halo, each padded
    on its own (edge continued beyond the scene), so only one strip's input and features are in
    memory beside the block: the caller adds them where they go, without a block-sized copy.
    """
    height = read1 if height is None else height
    filled = fill_invalid(x, valid, 2 * halo)
    lo, hi = max(read0, row0 - halo), min(read1, row1 + halo)
    pad_top = halo - (row0 - lo)
    pad_bottom = halo - (hi - row1)
    if (pad_top and lo > 0) or (pad_bottom and hi < height):
        raise ValueError("feature_strips needs halo rows around the block where the scene has them")
    rows, width = row1 - row0, x.shape[2]
    for c0 in range(0, width, max(1, int(strip))):
        c1 = min(width, c0 + strip)
        s0, s1 = max(0, c0 - halo), min(width, c1 + halo)
        part = filled[:, lo - read0 : hi - read0, s0:s1]
        if halo:
            pads = ((0, 0), (pad_top, pad_bottom), (halo - (c0 - s0), halo - (s1 - c1)))
            part = np.pad(part, pads, mode="edge")
        got = features(part)
        yield c0, c1, {k: v[:, halo : halo + rows, halo : halo + c1 - c0] for k, v in got.items()}


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
    """Features of scene rows ``[row0, row1)`` as whole-width arrays ``{part: (C, rows, W)}``
    (``feature_strips`` gathered; its arguments)."""
    rows, width = row1 - row0, x.shape[2]
    out: Dict[str, np.ndarray] = {}
    for c0, c1, part in feature_strips(features, x, valid, read0, read1, row0, row1, halo, height, strip):
        for k, v in part.items():
            if k not in out:
                out[k] = np.empty((v.shape[0], rows, width), np.float32)
            out[k][:, :, c0:c1] = v
    return out
