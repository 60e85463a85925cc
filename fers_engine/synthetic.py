"""A generated, georeferenced hyperspectral scene with material boundaries, small targets and
known truth.

Real scenes cannot ship in the repository, so the demo and the tests make one. It is built the
way an airborne scene looks, not the way a detector would like it:

* land cover with hard boundaries: field parcels (a Voronoi partition) of vegetation and soil,
  a lake, straight roads, and buildings with roofs of three materials and their shadows;
* within-class variability: every parcel and roof has its own brightness and spectral shape,
  every pixel a little texture, and the whole scene smooth illumination changes;
* mixed pixels: the scene is drawn on a grid twice as fine and each pixel averages 2 x 2 of it,
  so boundaries and small objects mix with their neighbours as a sensor's footprint does;
* targets: vehicles and panels of 1 x 1 to 3 x 6 fine cells (a quarter of a pixel to 1.5 x 3
  pixels) in paints, a plastic tarp and a green fabric, most on roads and the rest in fields;
  every pixel a target touches, even by a quarter, is in the truth;
* the atmosphere's water-vapour bands and sensor noise, stored as int16 reflectance x 10000.

The generator's parameters were fixed before any detector was run on its output; they are not
tuned to favour one. Everything is seeded, so the scene is the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np
from scipy.ndimage import gaussian_filter

from .errors import InputError

UTM_11N_WKT_EPSG = "EPSG:32611"
BACKGROUND = ("grass", "crop", "dry grass", "soil", "wet soil", "forest")
ROOFS = ("red tile", "metal roof", "concrete")
TARGETS = ("red paint", "white paint", "blue paint", "blue tarp", "green fabric")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _gauss(wl: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-(((wl - centre) / width) ** 2))


def _vegetation(wl: np.ndarray, vigour: float, water: float) -> np.ndarray:
    leaf_water = 1 - water * (
        0.35 * _gauss(wl, 1450, 70) + 0.45 * _gauss(wl, 1940, 90) + 0.12 * _gauss(wl, 1200, 40)
    )
    red_edge = _sigmoid((wl - 715) / 14) * (1 - 0.55 * _sigmoid((wl - 1300) / 120))
    return (
        0.03
        + 0.05 * vigour * _gauss(wl, 550, 35)
        + 0.45 * vigour * red_edge
        + 0.1 * (1 - vigour) * (wl - 400) / 2100
    ) * leaf_water


def surface_spectra(wl: np.ndarray) -> dict:
    """Reflectance (0..1) of the background, roof and target materials on the grid (nm)."""
    s = (wl - 400.0) / 2100.0
    clay = 0.05 * _gauss(wl, 2200, 40) + 0.03 * _gauss(wl, 1410, 30)
    return {
        "grass": _vegetation(wl, 0.9, 1.0),
        "crop": _vegetation(wl, 1.0, 1.1) * (1 + 0.1 * _gauss(wl, 800, 200)),
        "dry grass": _vegetation(wl, 0.35, 0.5) + 0.12 * s,
        "forest": 0.7 * _vegetation(wl, 0.85, 1.2),
        "soil": 0.07 + 0.3 * s**0.6 - clay,
        "wet soil": 0.6 * (0.06 + 0.25 * s**0.6) - 0.8 * clay - 0.05 * _gauss(wl, 1450, 60),
        "water": 0.01 + 0.06 * np.exp(-(wl - 400) / 160),
        "asphalt": 0.05 + 0.06 * s,
        "red tile": 0.08 + 0.3 * _sigmoid((wl - 580) / 30) * (1 - 0.25 * s) - 0.03 * _gauss(wl, 900, 80),
        "metal roof": 0.32 + 0.06 * s - 0.05 * _gauss(wl, 880, 150),
        "concrete": 0.22 + 0.12 * _sigmoid((wl - 600) / 90) - 0.04 * _gauss(wl, 2330, 50),
        # targets: man-made materials with features no background material has
        "red paint": 0.05 + 0.4 * _sigmoid((wl - 610) / 15) * (1 - 0.3 * s) - 0.06 * _gauss(wl, 1720, 30),
        "white paint": 0.62 - 0.1 * s - 0.12 * _gauss(wl, 1730, 30) - 0.15 * _gauss(wl, 2300, 40),
        "blue paint": 0.06 + 0.25 * _gauss(wl, 460, 50) + 0.3 * _sigmoid((wl - 750) / 40) * (1 - 0.4 * s),
        "blue tarp": 0.08
        + 0.3 * _gauss(wl, 470, 60)
        + 0.25 * _sigmoid((wl - 800) / 50)
        - 0.1 * _gauss(wl, 1730, 25)
        - 0.12 * _gauss(wl, 2310, 30)
        - 0.06 * _gauss(wl, 1210, 25),
        "green fabric": 0.04
        + 0.06 * _gauss(wl, 550, 40)
        + 0.3 * _sigmoid((wl - 680) / 30)
        - 0.08 * _gauss(wl, 1730, 30)
        - 0.1 * _gauss(wl, 2150, 60),
    }


def atmosphere(wl: np.ndarray) -> np.ndarray:
    """Transmittance with the water-vapour bands, so the scene looks like at-sensor data."""
    return (
        1
        - 0.35 * _gauss(wl, 940, 25)
        - 0.45 * _gauss(wl, 1135, 30)
        - 0.92 * _gauss(wl, 1400, 55)
        - 0.95 * _gauss(wl, 1880, 75)
    )


@dataclass
class SyntheticScene:
    cube: np.ndarray  # int16 (bands, rows, cols), reflectance x 10000
    truth: np.ndarray  # bool (rows, cols)
    wavelengths: np.ndarray  # nm
    transform: Tuple[float, float, float, float, float, float]  # GDAL geotransform
    crs: str


def _smooth_curve(rng: np.random.Generator, n: int, knots: int = 5) -> np.ndarray:
    return np.interp(np.linspace(0, knots - 1, n), np.arange(knots), rng.uniform(-1, 1, knots))


def _land_cover(rng: np.random.Generator, h: int, w: int):
    """Fine-grid material index map (into BACKGROUND + water, asphalt, ROOFS) and a shadow mask."""
    names = list(BACKGROUND) + ["water", "asphalt"] + list(ROOFS)
    idx = {n: i for i, n in enumerate(names)}
    # field parcels: a Voronoi partition, each parcel one background material
    n_parcels = max(4, h * w // 2400)
    centres = rng.uniform([0, 0], [h, w], size=(n_parcels, 2))
    yy, xx = np.mgrid[0:h, 0:w]
    nearest = np.argmin((yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2, axis=-1)
    parcel_material = rng.integers(0, len(BACKGROUND), size=n_parcels)
    cover = parcel_material[nearest]
    parcel = nearest.copy()
    # a lake
    lake = gaussian_filter(rng.normal(size=(h, w)), max(h, w) / 12)
    cover[lake > np.quantile(lake, 0.93)] = idx["water"]
    # straight roads across the scene
    road = np.zeros((h, w), bool)
    for _ in range(2 + (h * w > 40000)):
        angle = rng.uniform(0, np.pi)
        r0, c0 = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        dist = np.abs((yy - r0) * np.cos(angle) - (xx - c0) * np.sin(angle))
        road |= dist < rng.uniform(2.5, 3.5)
    cover[road] = idx["asphalt"]
    # buildings with shadows to the south-east (the sun in the north-west)
    shadow = np.zeros((h, w), bool)
    n_buildings = max(1, h * w // 3000)
    for b in range(n_buildings):
        bh, bw = rng.integers(6, 17, size=2)
        r, c = int(rng.integers(0, max(1, h - bh))), int(rng.integers(0, max(1, w - bw)))
        if road[r : r + bh, c : c + bw].any():
            continue
        shadow[r + 3 : r + bh + 3, c + 3 : c + bw + 3] = True
        cover[r : r + bh, c : c + bw] = idx[ROOFS[int(rng.integers(0, len(ROOFS)))]]
        parcel[r : r + bh, c : c + bw] = n_parcels + b
    shadow &= np.isin(cover, [idx[n] for n in BACKGROUND])
    return names, cover, parcel, road, shadow


def make_scene(
    rows: int = 200, cols: int = 240, bands: int = 120, seed: int = 7, n_targets: int = 16
) -> SyntheticScene:
    """Generate the scene in memory (about 12 MB at the default size)."""
    margin = 6
    if rows <= 2 * margin or cols <= 2 * margin:
        raise InputError(
            f"a synthetic scene needs more than {2 * margin} rows and columns, got {rows} x {cols}"
        )
    rng = np.random.default_rng(seed)
    wl = np.linspace(400.0, 2500.0, bands)
    lib = surface_spectra(wl)
    h, w = 2 * rows, 2 * cols
    names, cover, parcel, road, shadow = _land_cover(rng, h, w)
    # every parcel / roof its own brightness and spectral shape
    n_units = int(parcel.max()) + 1
    gain = rng.uniform(0.85, 1.15, size=n_units)
    shapes = np.stack([1 + 0.05 * _smooth_curve(rng, bands) for _ in range(n_units)])
    fine = np.empty((bands, h, w), np.float32)
    endmembers = np.stack([lib[n] for n in names]).astype(np.float32)
    for m in range(len(names)):
        sel = cover == m
        if sel.any():
            fine[:, sel] = endmembers[m][:, None] * (gain[parcel[sel]] * shapes[parcel[sel]].T)
    # pixel texture, shadows, illumination
    fine *= (1 + 0.04 * gaussian_filter(rng.normal(size=(h, w)), 1.0) / 0.28)[None].astype(np.float32)
    fine[:, shadow] *= 0.35
    fine *= (0.9 + 0.2 * _sigmoid(gaussian_filter(rng.normal(size=(h, w)), max(h, w) / 10) * 20))[
        None
    ].astype(np.float32)
    # targets on the fine grid, kept 8 fine cells apart and off the border
    occupied = np.zeros((h, w), bool)
    target_fine = np.zeros((h, w), bool)
    on_road = np.argwhere(road[2 * margin : h - 2 * margin, 2 * margin : w - 2 * margin]) + 2 * margin
    placed = tries = 0
    while placed < n_targets:
        tries += 1
        if tries > 1000 * n_targets:  # the targets keep apart: small scenes run out of room
            raise InputError(
                f"a {rows} x {cols} scene has no room for {n_targets} separate targets; "
                "use a larger scene or fewer targets"
            )
        if len(on_road) and rng.random() < 0.6:
            r, c = on_road[int(rng.integers(0, len(on_road)))]
        else:
            r, c = (
                int(rng.integers(2 * margin, h - 2 * margin)),
                int(rng.integers(2 * margin, w - 2 * margin)),
            )
        th, tw = (
            (1, 1)
            if rng.random() < 0.3
            else tuple(int(v) for v in rng.integers(2, 7, size=2) // np.array([2, 1]))
        )
        if occupied[max(0, r - 8) : r + th + 8, max(0, c - 8) : c + tw + 8].any():
            continue
        material = lib[TARGETS[placed % len(TARGETS)]] * rng.uniform(0.9, 1.1)
        fine[:, r : r + th, c : c + tw] = material[:, None, None]
        occupied[r : r + th, c : c + tw] = True
        target_fine[r : r + th, c : c + tw] = True
        placed += 1
    # the sensor's footprint: each pixel averages 2 x 2 fine cells
    reflect = fine.reshape(bands, rows, 2, cols, 2).mean(axis=(2, 4))
    truth = target_fine.reshape(rows, 2, cols, 2).any(axis=(1, 3))
    radiance_like = reflect * atmosphere(wl)[:, None, None]
    noise_sigma = 0.003 + 0.006 * (np.abs(wl - 1450) / 1050)[:, None, None]
    radiance_like = radiance_like + rng.normal(size=radiance_like.shape) * noise_sigma
    cube = np.clip(np.round(radiance_like * 10000.0), -32768, 32767).astype(np.int16)
    transform = (480000.0, 3.5, 0.0, 3620000.0, 0.0, -3.5)  # San Diego area, UTM 11N, 3.5 m
    return SyntheticScene(cube, truth, wl, transform, UTM_11N_WKT_EPSG)


def write_scene(scene: SyntheticScene, cube_path: Path, truth_path: Path) -> None:
    """Write the cube (int16 GeoTIFF with wavelengths) and the truth (uint8 GeoTIFF)."""
    from .io import RasterWriter

    bands, rows, cols = scene.cube.shape
    meta = [{"wavelength": f"{w:.2f}", "wavelength_units": "Nanometers"} for w in scene.wavelengths]
    with RasterWriter(
        cube_path,
        rows,
        cols,
        count=bands,
        dtype="int16",
        crs=scene.crs,
        transform=scene.transform,
        nodata=None,
        band_descriptions=[f"{w:.1f} nm" for w in scene.wavelengths],
        band_metadata=meta,
    ) as writer:
        writer.write(0, scene.cube)
    with RasterWriter(
        truth_path,
        rows,
        cols,
        count=1,
        dtype="uint8",
        crs=scene.crs,
        transform=scene.transform,
        nodata=None,
        band_descriptions=["implanted targets"],
    ) as writer:
        writer.write(0, scene.truth.astype(np.uint8))
