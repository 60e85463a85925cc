"""A generated, georeferenced hyperspectral scene with implanted targets and known truth.

Real scenes cannot ship in the repository, so the demo and the tests make one: a mosaic of
plausible surface spectra (vegetation, soil, asphalt, concrete, water) with smooth texture,
illumination changes, the atmosphere's water absorption and sensor noise, plus a few small and
sub-pixel targets of two man-made materials. Everything is seeded, so the scene is the same on
every machine.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np
from scipy.ndimage import gaussian_filter

from .errors import InputError

UTM_11N_WKT_EPSG = "EPSG:32611"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _gauss(wl: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-(((wl - centre) / width) ** 2))


def surface_spectra(wl: np.ndarray) -> dict:
    """Reflectance (0..1) of the background and target materials on the wavelength grid (nm)."""
    s = (wl - 400.0) / 2100.0
    leaf_water = 1 - 0.35 * _gauss(wl, 1450, 70) - 0.45 * _gauss(wl, 1940, 90)
    return {
        "vegetation": (0.04 + 0.06 * _gauss(wl, 550, 35) + 0.42 * _sigmoid((wl - 715) / 14)
                       * (1 - 0.55 * _sigmoid((wl - 1300) / 120))) * leaf_water,
        "soil": 0.08 + 0.28 * s ** 0.6 - 0.05 * _gauss(wl, 2200, 40),
        "asphalt": 0.05 + 0.05 * s,
        "concrete": 0.22 + 0.12 * _sigmoid((wl - 600) / 90) - 0.04 * _gauss(wl, 2330, 50),
        "water": 0.01 + 0.07 * np.exp(-(wl - 400) / 180),
        # Targets: a painted panel and a plastic sheet, both unlike any background material.
        "panel": 0.14 + 0.12 * _gauss(wl, 1050, 260) + 0.05 * _gauss(wl, 2100, 90),
        "plastic": 0.25 - 0.08 * _gauss(wl, 1730, 25) - 0.1 * _gauss(wl, 2310, 30) - 0.05 * _gauss(wl, 1210, 25),
    }


def atmosphere(wl: np.ndarray) -> np.ndarray:
    """Transmittance with the water-vapour bands, so the scene looks like at-sensor data."""
    return (1 - 0.35 * _gauss(wl, 940, 25) - 0.45 * _gauss(wl, 1135, 30)
            - 0.92 * _gauss(wl, 1400, 55) - 0.95 * _gauss(wl, 1880, 75))


@dataclass
class SyntheticScene:
    cube: np.ndarray  # int16 (bands, rows, cols), reflectance x 10000
    truth: np.ndarray  # bool (rows, cols)
    wavelengths: np.ndarray  # nm
    transform: Tuple[float, float, float, float, float, float]  # GDAL geotransform
    crs: str


def make_scene(rows: int = 200, cols: int = 240, bands: int = 120, seed: int = 7,
               n_targets: int = 16) -> SyntheticScene:
    """Generate the scene in memory (about 12 MB at the default size)."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(400.0, 2500.0, bands)
    spectra = surface_spectra(wl)
    background = ["vegetation", "soil", "asphalt", "concrete", "water"]
    # Patchy land cover: smooth random fields turned into soft class memberships.
    fields = np.stack([gaussian_filter(rng.normal(size=(rows, cols)), sigma) for sigma in (9, 7, 5, 6, 12)])
    fields /= fields.std(axis=(1, 2), keepdims=True)
    fields[4] -= 1.2  # water is rarer
    weights = np.exp(2.5 * fields)
    weights /= weights.sum(axis=0, keepdims=True)
    # A road crossing the scene.
    yy, xx = np.mgrid[0:rows, 0:cols]
    road = np.abs(yy - (0.35 * xx + rows * 0.3)) < 2.5
    weights[:, road] = 0.0
    weights[2, road] = 1.0
    endmembers = np.stack([spectra[name] for name in background])  # (5, bands)
    reflect = np.einsum("kb,krc->brc", endmembers, weights)
    # Within-class variability and illumination (slope, shade).
    reflect *= 1 + 0.06 * gaussian_filter(rng.normal(size=(rows, cols)), 1.5)[None]
    reflect *= (0.85 + 0.3 * _sigmoid(gaussian_filter(rng.normal(size=(rows, cols)), 15) * 4))[None]
    # Targets: small squares and sub-pixel blends of the two man-made materials.
    truth = np.zeros((rows, cols), bool)
    names = ["panel", "plastic"]
    margin = 6
    if rows <= 2 * margin or cols <= 2 * margin:
        raise InputError(f"a synthetic scene needs more than {2 * margin} rows and columns, "
                         f"got {rows} x {cols}")
    placed = 0
    tries = 0
    while placed < n_targets:
        tries += 1
        if tries > 1000 * n_targets:  # the targets keep 4 px apart: small scenes run out of room
            raise InputError(f"a {rows} x {cols} scene has no room for {n_targets} separate targets; "
                             "use a larger scene or fewer targets")
        r = int(rng.integers(margin, rows - margin))
        c = int(rng.integers(margin, cols - margin))
        if truth[r - 4:r + 5, c - 4:c + 5].any():
            continue
        size = int(rng.choice([1, 1, 2, 2, 3]))
        fraction = float(rng.uniform(0.05, 0.25)) if size == 1 else float(rng.uniform(0.15, 0.5))
        material = spectra[names[placed % 2]]
        sl = (slice(r, r + size), slice(c, c + size))
        reflect[:, sl[0], sl[1]] = (1 - fraction) * reflect[:, sl[0], sl[1]] + fraction * material[:, None, None]
        truth[sl] = True
        placed += 1
    radiance_like = reflect * atmosphere(wl)[:, None, None]
    noise_sigma = 0.004 + 0.008 * (np.abs(wl - 1450) / 1050)[:, None, None]
    radiance_like += rng.normal(size=radiance_like.shape) * noise_sigma
    cube = np.clip(np.round(radiance_like * 10000.0), -32768, 32767).astype(np.int16)
    transform = (480000.0, 3.5, 0.0, 3620000.0, 0.0, -3.5)  # San Diego area, UTM 11N, 3.5 m
    return SyntheticScene(cube, truth, wl, transform, UTM_11N_WKT_EPSG)


def write_scene(scene: SyntheticScene, cube_path: Path, truth_path: Path) -> None:
    """Write the cube (int16 GeoTIFF with wavelengths) and the truth (uint8 GeoTIFF)."""
    from .io import RasterWriter

    bands, rows, cols = scene.cube.shape
    meta = [{"wavelength": f"{w:.2f}", "wavelength_units": "Nanometers"} for w in scene.wavelengths]
    with RasterWriter(cube_path, rows, cols, count=bands, dtype="int16", crs=scene.crs,
                      transform=scene.transform, nodata=None,
                      band_descriptions=[f"{w:.1f} nm" for w in scene.wavelengths],
                      band_metadata=meta) as writer:
        writer.write(0, scene.cube)
    with RasterWriter(truth_path, rows, cols, count=1, dtype="uint8", crs=scene.crs,
                      transform=scene.transform, nodata=None,
                      band_descriptions=["implanted targets"]) as writer:
        writer.write(0, scene.truth.astype(np.uint8))
