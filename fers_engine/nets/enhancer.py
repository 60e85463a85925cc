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

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError, ModelError
from ..progress import Reporter
from .model_file import FORMAT, load_model, require_torch
from .normalise import Normaliser

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = "fers-default"
PARTS = ("spectral", "spatial")


def resolve_model_path(path_or_name: Optional[str]) -> Path:
    if path_or_name is None or str(path_or_name).strip() == "":
        path_or_name = DEFAULT_MODEL
    s = str(path_or_name)
    p = Path(s)
    if p.suffix == "" and "/" not in s and "\\" not in s:
        bundled = MODELS_DIR / f"{s}.safetensors"
        if not bundled.is_file():
            names = sorted(q.stem for q in MODELS_DIR.glob("*.safetensors")) if MODELS_DIR.is_dir() else []
            raise ModelError(f"no bundled model named '{s}' in {MODELS_DIR} (available: {', '.join(names) or 'none'})")
        return bundled
    if not p.is_file():
        if not p.is_absolute() and len(p.parts) == 1 and (MODELS_DIR / p.name).is_file():
            return MODELS_DIR / p.name
        raise ModelError(f"model file not found: {p}")
    return p


def resolve_device(device: Optional[str], reporter: Optional[Reporter] = None) -> str:
    torch = require_torch()
    d = (device or "auto").lower()
    if d not in ("auto", "cpu", "cuda") and not d.startswith("cuda:"):
        raise InputError(f"unknown device '{device}' (use auto, cpu or cuda)")
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d.startswith("cuda") and not torch.cuda.is_available():
        (reporter or Reporter()).warning(f"device '{device}' requested but CUDA is not available: running on CPU")
        return "cpu"
    return d


def build_networks(arch: dict):
    """The deployed networks from a card's ``arch``: a ModuleDict with 'spectral' (and 'spatial')."""
    require_torch()
    from torch import nn
    from .spectral import SpectralFEN
    from .spatial import SpatialNet
    c = int(arch["bands"])
    # "symmetric" says the 3x3 kernels were trained D4-tied; the file holds them expanded, so the
    # deployed network is built with plain convolutions either way
    plain = lambda part: {k: v for k, v in arch[part].items() if k != "symmetric"}  # noqa: E731
    mods = {"spectral": SpectralFEN(c, **plain("spectral"))}
    if arch.get("spatial"):
        mods["spatial"] = SpatialNet(c, **plain("spatial"))
    return nn.ModuleDict(mods)


class Enhancer:
    """A loaded model. Attributes: card, bands, wavelengths, halo, device, parts."""

    def __init__(self, nets, card: dict, device: str, path: Optional[Path] = None, reporter=None):
        self.nets = nets
        self.card = card
        self.path = path
        self.device = device
        self.reporter = reporter or Reporter()
        self.bands = int(card["arch"]["bands"])
        wl = card.get("wavelengths")
        self.wavelengths = None if wl is None else np.asarray(wl, dtype=np.float64)
        self.parts = tuple(k for k in PARTS if k in nets)
        self.halo = int(max(int(getattr(nets[k], "halo", 0)) for k in self.parts))
        self.nets.eval()

    # -- spectral grid -------------------------------------------------------------------------
    @property
    def grid(self):
        """The model's input side (bands, wavelengths, normalisation) as ``inputs.Grid``."""
        from .inputs import Grid
        return Grid(self.bands, self.wavelengths, self.card.get("normalisation"))

    def input_matrix(self, info, band_mode: str = "resample",
                     dead: Optional[np.ndarray] = None) -> Tuple[np.ndarray, str]:
        """(model bands x input bands) matrix onto the model's grid (``inputs.input_matrix``)."""
        from .inputs import input_matrix
        R, desc = input_matrix(self.grid, int(info.count), getattr(info, "wavelengths", None), band_mode, dead)
        self.reporter.info(desc)
        return R, desc

    def new_normaliser(self) -> Normaliser:
        return self.grid.new_normaliser()

    # -- features ------------------------------------------------------------------------------
    def features(self, block: np.ndarray, parts: Sequence[str] = ("spectral",), tile: int = 256,
                 max_batch_bytes: int = 256 << 20) -> Dict[str, np.ndarray]:
        torch = require_torch()
        parts = tuple(parts)
        for p in parts:
            if p not in self.parts:
                raise ModelError(f"model {self.path or ''} has no '{p}' network (it has {', '.join(self.parts)})")
        block = np.asarray(block, np.float32)
        if block.ndim != 3 or block.shape[0] != self.bands:
            raise InputError(f"enhancer expects a ({self.bands}, rows, cols) block, got {block.shape}")
        c, h, w = block.shape
        out = {p: np.empty((c, h, w), np.float32) for p in parts}
        tile = max(int(tile), 8)
        halo = self.halo
        groups: Dict[tuple, list] = {}
        for r0 in range(0, h, tile):
            for c0 in range(0, w, tile):
                r1, c1 = min(r0 + tile, h), min(c0 + tile, w)
                a0, a1 = max(0, r0 - halo), min(h, r1 + halo)
                b0, b1 = max(0, c0 - halo), min(w, c1 + halo)
                groups.setdefault((a1 - a0, b1 - b0), []).append((r0, r1, c0, c1, a0, a1, b0, b1))
        with torch.inference_mode():
            for (th, tw), tiles in groups.items():
                per = max(1, int(max_batch_bytes // (4 * c * th * tw * (2 + 4 * len(parts)))))
                for i in range(0, len(tiles), per):
                    chunk = tiles[i:i + per]
                    x = np.stack([block[:, a0:a1, b0:b1] for (_, _, _, _, a0, a1, b0, b1) in chunk])
                    xt = torch.from_numpy(x).to(self.device)
                    res = {}
                    if "spectral" in parts:
                        res["spectral"] = self.nets["spectral"](xt)
                    if "spatial" in parts:
                        res["spatial"] = self.nets["spatial"](xt)[0]
                    for p, t in res.items():
                        arr = t.float().cpu().numpy()
                        for k, (r0, r1, c0, c1, a0, a1, b0, b1) in enumerate(chunk):
                            out[p][:, r0:r1, c0:c1] = arr[k, :, r0 - a0:r1 - a0, c0 - b0:c1 - b0]
        return out


def enhancer_from_tensors(tensors: dict, card: dict, device: str = "cpu", path=None, reporter=None) -> Enhancer:
    try:
        arch = card["arch"]
        nets = build_networks(arch)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{path or 'model'}: the model card's architecture is incomplete or invalid ({e})") from None
    state = {k: v for k, v in tensors.items()}
    try:
        missing, unexpected = nets.load_state_dict(state, strict=False)
    except RuntimeError as e:
        msg = str(e).strip().splitlines()
        raise ModelError(f"{path or 'model'}: weights do not fit the architecture in its card ({msg[-1].strip()[:200]})") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        what = (f"missing {missing[:3]}" if missing else "") + (f" unexpected {unexpected[:3]}" if unexpected else "")
        raise ModelError(f"{path or 'model'}: weights do not fit the architecture in its card ({what.strip()})")
    nets.to(device)
    nets.eval()
    return Enhancer(nets, card, device, path, reporter)


def load_enhancer(path_or_name: Optional[str] = None, device: str = "auto", reporter=None) -> Enhancer:
    """Load a bundled model by name (None = 'fers-default') or a .safetensors file."""
    require_torch()
    reporter = reporter or Reporter()
    path = resolve_model_path(path_or_name)
    tensors, card = load_model(path, expect_format=FORMAT)
    dev = resolve_device(device, reporter)
    enh = enhancer_from_tensors(tensors, card, dev, path, reporter)
    grid = "wavelength grid" if enh.wavelengths is not None else "band-axis grid (no wavelengths)"
    reporter.info(f"enhancer {path.name}: {enh.bands} bands, {grid}, parts {', '.join(enh.parts)}, "
                  f"halo {enh.halo} px, device {dev}")
    return enh
