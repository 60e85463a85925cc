"""Band tables and a small reflectance scene with one implanted anomaly, shared by the builders."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np


def band_table(shared_data: Path, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """(wavelength nm, fwhm nm) of a sensor from ``sensor-band-tables/<name>.csv``."""
    with open(shared_data / "sensor-band-tables" / f"{name}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return (np.array([float(r["wavelength"]) for r in rows]), np.array([float(r["fwhm"]) for r in rows]))


@dataclass
class Reflectance:
    """A (rows, cols, bands) float32 reflectance cube and where its anomaly is."""

    cube: np.ndarray
    anomaly: Tuple[int, int]  # (row, col) of the implanted pixel block's top-left corner
    size: int = 2


def reflectance(
    rows: int, cols: int, wavelengths: np.ndarray, seed: int = 0, anomaly: Tuple[int, int] = None
) -> Reflectance:
    """Two smooth background materials mixed per pixel plus noise, and a 2x2 block of a third
    material whose spectrum differs in shape (not only in brightness), so RX must find it."""
    rng = np.random.default_rng(seed)
    wl = np.asarray(wavelengths, dtype=np.float64)
    x = (wl - wl.min()) / max(1.0, wl.max() - wl.min())
    soil = 0.10 + 0.25 * x
    veg = 0.05 + 0.40 / (1.0 + np.exp(-(wl - 720.0) / 15.0)) - 0.10 * x
    paint = 0.30 + 0.15 * np.sin(12.0 * x)
    mix = rng.uniform(0.0, 1.0, size=(rows, cols, 1))
    cube = mix * soil + (1.0 - mix) * veg
    cube = cube * rng.uniform(0.9, 1.1, size=(rows, cols, 1))
    cube = cube + rng.normal(0.0, 0.004, size=(rows, cols, wl.size))
    if anomaly is None:
        anomaly = (rows // 2, cols // 2)
    r, c = anomaly
    cube[r : r + 2, c : c + 2, :] = paint
    return Reflectance(cube.astype(np.float32), anomaly)
