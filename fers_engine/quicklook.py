"""PNG quick-looks: a true-colour view of the scene beside the anomaly map.

Written with zlib alone (PNG is a few chunks of deflated rows), so the quick-look needs neither
matplotlib nor a GDAL driver that supports creating PNGs.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .io.atomic import write_bytes

# Anchor colours of a perceptually ordered ramp (dark blue -> teal -> yellow), as in viridis.
_RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float)


def colourise(values: np.ndarray) -> np.ndarray:
    """Map values in 0..1 to RGB uint8 along the ramp; NaN becomes black."""
    v = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(v.astype(int), len(_RAMP) - 2)
    t = (v - i)[..., None]
    rgb = (1 - t) * _RAMP[i] + t * _RAMP[i + 1]
    rgb[np.isnan(values)] = 0
    return rgb.astype(np.uint8)


def stretch(values: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Percentile stretch to 0..1, ignoring NaN."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros_like(values, dtype=float)
    lo, hi = np.percentile(finite, [low, high])
    return np.clip((values - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)


def true_colour(cube: np.ndarray, wavelengths: Optional[Sequence[float]]) -> np.ndarray:
    """RGB uint8 (rows, cols, 3) from the bands nearest 640, 550 and 470 nm (or spread bands)."""
    count = cube.shape[0]
    if wavelengths is not None:
        wl = np.asarray(wavelengths, float)
        idx = [int(np.argmin(np.abs(wl - target))) for target in (640, 550, 470)]
    else:
        idx = [int(count * f) for f in (0.6, 0.35, 0.1)]
    return (np.stack([stretch(cube[i].astype(float)) for i in idx], axis=-1) * 255).astype(np.uint8)


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels on the border of the True regions, to draw truth without hiding the scores."""
    m = np.pad(mask, 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask & ~inner


def side_by_side(panels: Sequence[np.ndarray], gap: int = 6) -> np.ndarray:
    """Panels (rows, cols, 3) placed left to right on a white background."""
    rows = max(p.shape[0] for p in panels)
    cols = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    out = np.full((rows, cols, 3), 255, np.uint8)
    x = 0
    for p in panels:
        out[: p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image (rows, cols, 3) as a PNG file."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    rows, cols, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(rows))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", cols, rows, 8, 2, 0, 0, 0)
    write_bytes(
        path,
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b""),
    )


def scene_and_scores_png(
    path: Path,
    cube: np.ndarray,
    wavelengths,
    scores: np.ndarray,
    truth: Optional[np.ndarray] = None,
    scale: int = 2,
) -> None:
    """The quick-look the demo writes: true colour | anomaly map (with truth outlined in red)."""
    left = true_colour(cube, wavelengths)
    right = colourise(stretch(scores, 1.0, 99.9))
    if truth is not None:
        right[outline(truth)] = (255, 0, 0)
    image = side_by_side([left, right])
    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    write_png(path, image)
