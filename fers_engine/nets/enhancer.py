"""Inference API used by the pipeline: load a model, map the input bands onto its grid,
normalise scene-wide, and compute enhancer features tile by tile.

    enh = load_enhancer("fers-default", device="auto", reporter=rep)
    R, how = enh.input_matrix(scene.info, band_mode="resample")      # (C_model, B_in)
    norm = enh.new_normaliser(); [norm.update(R @ block, valid) for each block]
    feats = enh.features(norm.apply(R @ block_with_halo), parts=("spectral", "spatial"))

Both networks are fully convolutional with finite receptive field ``halo``: features of a block
that carries ``halo`` extra rows on each side equal the whole-scene features on its core rows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..detectors.device import choose_device
from ..detectors.parallel import available_cores
from ..errors import InputError, ModelError
from ..progress import Reporter
from .bundled import resolve_model_path
from .card import ModelCard
from .model_file import load_enhancer_file, require_torch, torch_tensors
from .normalise import Normaliser
from .numpy_forward import bytes_per_pixel, numpy_networks

BACKENDS = ("numpy", "torch")

__all__ = [
    "BACKENDS",
    "Enhancer",
    "build_networks",
    "load_enhancer",
]


def build_networks(arch: dict):
    """The deployed torch networks from a card's ``arch``: a ModuleDict with 'spectral' (and
    'spatial'). For training and the torch backend; inference on the CPU uses ``numpy_forward``."""
    require_torch()
    from torch import nn

    from .spatial import SpatialNet
    from .spectral import SpectralFEN

    c = int(arch["bands"])
    # "symmetric" says the 3x3 kernels were trained D4-tied; the file holds them expanded, so the
    # deployed network is built with plain convolutions either way
    plain = lambda part: {k: v for k, v in arch[part].items() if k != "symmetric"}  # noqa: E731
    mods = {"spectral": SpectralFEN(c, **plain("spectral"))}
    if arch.get("spatial"):
        mods["spatial"] = SpatialNet(c, **plain("spatial"))
    return nn.ModuleDict(mods)


class Enhancer:
    """A loaded model: ``card`` (typed, validated), ``bands``, ``wavelengths``, ``halo``,
    ``parts``, ``device`` and ``backend``.

    Two backends compute the same features: ``numpy`` (``numpy_forward``; the CPU path, always,
    even where torch is installed) and ``torch`` (CUDA, or the CPU when asked for explicitly, as
    the tests and the speed benchmark do). ``nets`` holds the backend's networks.
    """

    def __init__(
        self,
        card: ModelCard,
        tensors: Mapping[str, np.ndarray],
        device: str = "cpu",
        backend: Optional[str] = None,
        path: Optional[Path] = None,
        reporter=None,
    ):
        backend = backend or ("numpy" if device == "cpu" else "torch")
        if backend not in BACKENDS:
            raise InputError(f"unknown enhancer backend {backend!r}: choose {' or '.join(BACKENDS)}")
        if backend == "numpy" and device != "cpu":
            raise InputError(f"the numpy backend runs on the CPU, not on {device}")
        self.card = card
        self.path = path
        self.device = device
        self.backend = backend
        self.reporter = reporter or Reporter()
        self.bands = card.arch.bands
        self.wavelengths = (
            None if card.wavelengths is None else np.asarray(card.wavelengths, dtype=np.float64)
        )
        self.parts = card.parts
        self.halo = card.halo
        if backend == "numpy":
            self.nets = numpy_networks(card.arch, tensors)
        else:
            self.nets = _torch_networks(card, tensors, device)

    # -- spectral grid -------------------------------------------------------------------------
    @property
    def grid(self):
        """The model's input side (bands, wavelengths, normalisation) as ``inputs.Grid``."""
        from .inputs import Grid

        return Grid(self.bands, self.wavelengths, self.card.normalisation.kwargs())

    def input_matrix(
        self, info, band_mode: str = "resample", dead: Optional[np.ndarray] = None
    ) -> Tuple[np.ndarray, str]:
        """(model bands x input bands) matrix onto the model's grid (``inputs.input_matrix``)."""
        from .inputs import input_matrix

        R, desc = input_matrix(
            self.grid, int(info.count), getattr(info, "wavelengths", None), band_mode, dead
        )
        self.reporter.info(desc)
        return R, desc

    def new_normaliser(self) -> Normaliser:
        """The scene-wide normaliser of the card's recipe; its sampling loop checks for cancel."""
        return self.grid.new_normaliser(check=self.reporter.check)

    def _numpy_parts(self, x: np.ndarray, parts: Sequence[str]) -> Dict[str, np.ndarray]:
        """Each network on ``x``; with two networks and two CPUs, both at once. Half of a numpy
        forward pass is single-threaded copying and summing (the taps, the box means), and
        numpy and BLAS release the GIL, so the two networks overlap on the two cores."""
        if len(parts) < 2 or available_cores() < 2:
            return {p: self.nets[p](x) for p in parts}
        with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="fers-enhancer") as pool:
            running = {p: pool.submit(self.nets[p], x) for p in parts}
            return {p: job.result() for p, job in running.items()}

    # -- features ------------------------------------------------------------------------------
    def features(
        self,
        block: np.ndarray,
        parts: Sequence[str] = ("spectral",),
        tile: int = 256,
        max_batch_bytes: int = 256 << 20,
    ) -> Dict[str, np.ndarray]:
        """Enhancer features ``{part: (C, H, W) float32}`` of a normalised block.

        The block is cut into tiles that carry ``halo`` extra pixels on each side, so any tiling
        gives the whole-block features: the numpy backend takes full-width row chunks of at most
        ``max_batch_bytes`` working memory; the torch backend ``tile`` x ``tile`` tiles in batches.
        Cancel is checked once per chunk.
        """
        parts = tuple(parts)
        for p in parts:
            if p not in self.parts:
                raise ModelError(
                    f"model {self.path or ''} has no '{p}' network (it has {', '.join(self.parts)})"
                )
        block = np.asarray(block, np.float32)
        if block.ndim != 3 or block.shape[0] != self.bands:
            raise InputError(f"enhancer expects a ({self.bands}, rows, cols) block, got {block.shape}")
        c, h, w = block.shape
        if self.backend == "numpy":
            rows = max(1, int(max_batch_bytes // (bytes_per_pixel(self.card.arch) * w)))
            if rows >= h:  # one chunk: the networks' outputs are the features, no copy
                self.reporter.check()
                return self._numpy_parts(np.ascontiguousarray(block), parts)
            out = {p: np.empty((c, h, w), np.float32) for p in parts}
            for tile_ in _tiles(h, w, rows, w, self.halo):
                self.reporter.check()
                r0, r1, c0, c1, a0, a1, b0, b1 = tile_
                got = self._numpy_parts(np.ascontiguousarray(block[:, a0:a1, b0:b1]), parts)
                for p in parts:
                    out[p][:, r0:r1, c0:c1] = got[p][:, r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]
            return out
        torch = require_torch()
        out = {p: np.empty((c, h, w), np.float32) for p in parts}
        tile = max(int(tile), 8)
        groups: Dict[tuple, list] = {}
        for tile_ in _tiles(h, w, tile, tile, self.halo):
            _, _, _, _, a0, a1, b0, b1 = tile_
            groups.setdefault((a1 - a0, b1 - b0), []).append(tile_)
        with torch.inference_mode():
            for (th, tw), tiles in groups.items():
                per = max(1, int(max_batch_bytes // (4 * c * th * tw * (2 + 4 * len(parts)))))
                for i in range(0, len(tiles), per):
                    self.reporter.check()
                    chunk = tiles[i : i + per]
                    x = np.stack([block[:, a0:a1, b0:b1] for (_, _, _, _, a0, a1, b0, b1) in chunk])
                    xt = torch.from_numpy(x).to(self.device)
                    res = {}
                    if "spectral" in parts:
                        res["spectral"] = self.nets["spectral"](xt)
                    if "spatial" in parts:
                        res["spatial"] = self.nets["spatial"](xt)[0]
                    for p, t in res.items():
                        arr = t.float().cpu().numpy()
                        for k, (r0, r1, c0, c1, a0, _a1, b0, _b1) in enumerate(chunk):
                            out[p][:, r0:r1, c0:c1] = arr[k, :, r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]
        return out


def _tiles(h: int, w: int, tile_h: int, tile_w: int, halo: int):
    """``(r0, r1, c0, c1, a0, a1, b0, b1)``: each tile's core rows/cols and the window read
    around it, ``halo`` wider on every side that has image there."""
    for r0 in range(0, h, tile_h):
        for c0 in range(0, w, tile_w):
            r1, c1 = min(r0 + tile_h, h), min(c0 + tile_w, w)
            yield (r0, r1, c0, c1, max(0, r0 - halo), min(h, r1 + halo), max(0, c0 - halo), min(w, c1 + halo))


def _torch_networks(card: ModelCard, tensors: Mapping[str, np.ndarray], device: str):
    """The torch modules of a validated card with its weights, in eval mode on ``device``."""
    nets = build_networks(card.arch.as_dict())
    missing, unexpected = nets.load_state_dict(torch_tensors(tensors), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:  # the card's validation makes this unreachable for a checked card
        raise ModelError(
            f"weights do not fit the networks (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    nets.to(device)
    nets.eval()
    return nets


def load_enhancer(
    path_or_name: Optional[str] = None, device: str = "auto", reporter=None, backend: Optional[str] = None
) -> Enhancer:
    """Load a bundled model by name (None = 'fers-default') or a .safetensors file.

    ``device`` follows the product's policy (``detectors.device.choose_device``): the CPU runs
    the numpy backend, a GPU the torch one; ``backend="torch"`` forces torch (on the CPU too).

    Args:
        path_or_name: a bundled model's name (``nets.bundled``), a ``.safetensors`` path, or None.
        device: ``choices.Device``.
        reporter: where the loading messages go (``progress.Reporter``), or None.
        backend: "numpy" or "torch" to override the device policy's choice; None follows it.

    Returns:
        The ``Enhancer``, its card validated against its weights.

    Raises:
        ModelError: the file is missing, corrupt or its card does not match its weights.
    """
    reporter = reporter or Reporter()
    path = resolve_model_path(path_or_name)
    tensors, card = load_enhancer_file(path)
    dev = choose_device(device, reporter)
    enh = Enhancer(card, tensors, dev, backend, path, reporter)
    grid = "wavelength grid" if enh.wavelengths is not None else "band-axis grid (no wavelengths)"
    reporter.info(
        f"enhancer {path.name}: {enh.bands} bands, {grid}, parts {', '.join(enh.parts)}, "
        f"halo {enh.halo} px, device {dev} ({enh.backend})"
    )
    return enh
