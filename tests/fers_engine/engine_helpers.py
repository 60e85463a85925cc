"""Small rasters written inside a test's tmp_path."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Optional

import numpy as np

from fers_engine.io import RasterWriter
from fers_engine.synthetic import make_scene, write_scene

TRANSFORM = (500000.0, 2.0, 0.0, 4100000.0, 0.0, -2.0)
CRS = "EPSG:32633"
#: ``fers detect`` flags of plain global RX, the fastest method: for tests that need a
#: detection, not the default method (``choices.DEFAULT_ENHANCER`` / ``DEFAULT_DETECTOR``)
PLAIN_RX = ("--enhancer", "none", "--detector", "rx")


def small_scene(tmp_path: Path, rows: int = 48, cols: int = 40, bands: int = 24, seed: int = 3):
    """A generated scene with implanted targets: (cube path, truth path, SyntheticScene)."""
    scene = make_scene(rows=rows, cols=cols, bands=bands, seed=seed, n_targets=5)
    cube, truth = tmp_path / "scene.tif", tmp_path / "truth.tif"
    write_scene(scene, cube, truth)
    return cube, truth, scene


def write_cube(
    path: Path, cube: np.ndarray, crs: Optional[str] = CRS, nodata=None, transform=TRANSFORM
) -> Path:
    """Write a (bands, rows, cols) array as a GeoTIFF through the project's writer."""
    bands, rows, cols = cube.shape
    with RasterWriter(
        path,
        rows,
        cols,
        count=bands,
        dtype=str(cube.dtype),
        crs=crs,
        transform=transform if crs is not None else None,
        nodata=nodata,
    ) as w:
        w.write(0, cube)
    return path


TINY_ARCH_CONFIG = {
    "bands": 12,
    "spectral": {"width": 8, "hidden": 16, "dilations": [1, 1], "out_act": "none", "skip": True},
    "spatial": {"width": 6, "rgb_hidden": 8, "dilations": [1, 2], "pools": [1, 5, 9], "hidden": 16},
}


def write_tiny_model(path: Path, symmetric: bool = True, seed: int = 0) -> Path:
    """A randomly initialised tiny enhancer model file, with D4-tied kernels when ``symmetric``
    (what training writes) and non-trivial frozen BatchNorm statistics."""
    import torch

    from fers_engine.nets.model_file import FORMAT, FORMAT_VERSION, save_model
    from fers_engine.nets.networks import Networks, deployed_arch
    from fers_engine.nets.normalise import DEFAULT
    from fers_engine.nets.recipes import get_recipe

    cfg = get_recipe(None).full_config({**TINY_ARCH_CONFIG, "symmetric": symmetric})
    torch.manual_seed(seed)
    nets = Networks(cfg)
    for m in nets.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    card = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": Path(path).stem,
        "arch": deployed_arch(cfg, True),
        "parts": ["spectral", "spatial"],
        "wavelengths": None,
        "normalisation": dict(DEFAULT),
        "halo": max(nets.fen.halo, nets.spatial.halo),
    }
    save_model(path, nets.deployed_tensors(True), card)
    return Path(path)


def as_terminal_job() -> None:
    """``preexec_fn`` for a child that must take Ctrl-C as a terminal's foreground job does.

    A shell starts background jobs with SIGINT ignored, and the children inherit that; Python
    started with SIGINT ignored never raises KeyboardInterrupt. A test run launched in the
    background (``nohup make test &``) would then see every Ctrl-C test fail for a reason
    outside the product, so the child gets the default disposition back before it starts.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
