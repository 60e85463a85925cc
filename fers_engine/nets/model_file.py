"""Model files: safetensors weights + a JSON model card, never pickle, no package beyond numpy.

The card is embedded in the safetensors header (``__metadata__['fers_card']``) and written as a
sidecar ``<name>.json``; the embedded copy is authoritative. Files are read and written by the
pure-numpy ``safetensors_file`` (neither torch nor the safetensors package is needed, so QGIS's
own Python loads models), and a model is only used once ``card.ModelCard.validate`` has checked
its card against its weights. Every failure (missing, truncated, not safetensors, no card, a
card that does not fit the weights) is a ``ModelError`` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from .. import hints
from ..errors import DependencyError, ModelError
from ..io.atomic import AtomicFile, write_text
from . import safetensors_file
from .card import FORMAT, FORMAT_VERSION, ModelCard  # noqa: F401  (FORMAT* re-exported for writers)


def require_torch():
    """The torch module, or a ``DependencyError`` that says how to get it."""
    try:
        import torch
    except ImportError as e:
        raise DependencyError(f"this needs PyTorch, which is not installed ({e}); {hints.TORCH}") from None
    return torch


def save_model(path, tensors: Mapping, card: dict, sidecar: bool = True) -> Path:
    """Write ``tensors`` (name -> numpy array or torch tensor) and ``card`` atomically."""
    path = Path(path)
    arrays = {k: _to_numpy(v) for k, v in tensors.items()}
    data = safetensors_file.encode(arrays, {"fers_card": json.dumps(card, sort_keys=True)})
    path.parent.mkdir(parents=True, exist_ok=True)
    out = AtomicFile(path)
    out.write_bytes(data)
    out.commit()
    if sidecar:
        write_text(path.with_suffix(".json"), json.dumps(card, indent=2, sort_keys=True) + "\n")
    return path


def read_card(path) -> dict:
    """The embedded card as stored (reads the header only, not the weights; not validated)."""
    path = Path(path)
    _, metadata, _ = safetensors_file.read_header(path)
    return _card_of(path, metadata)


def load_model(path, expect_format: Optional[str] = FORMAT) -> Tuple[Dict[str, np.ndarray], dict]:
    """(numpy tensors, card dict). With ``expect_format=FORMAT`` the card is validated against the
    weights (``load_enhancer_file`` returns the typed card); ``None`` reads any FERS file, such as
    a training checkpoint, as it is."""
    path = Path(path)
    tensors, metadata = safetensors_file.read_file(path)
    card = _card_of(path, metadata)
    if expect_format == FORMAT:
        ModelCard.validate(card, tensors, source=path.name)
    elif expect_format is not None and card.get("format") != expect_format:
        raise ModelError(f"{path.name} is not a {expect_format} file (format {card.get('format')!r})")
    return tensors, card


def load_enhancer_file(path) -> Tuple[Dict[str, np.ndarray], ModelCard]:
    """(numpy tensors, validated typed card) of an enhancer model file."""
    path = Path(path)
    tensors, metadata = safetensors_file.read_file(path)
    return tensors, ModelCard.validate(_card_of(path, metadata), tensors, source=path.name)


def torch_tensors(tensors: Mapping[str, np.ndarray], device: str = "cpu") -> Dict:
    """The same tensors as torch tensors (for ``load_state_dict``)."""
    torch = require_torch()
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in tensors.items()}


def _card_of(path: Path, metadata: Mapping[str, str]) -> dict:
    if "fers_card" not in metadata:
        raise ModelError(f"{path.name} has no FERS model card in its safetensors metadata")
    try:
        card = json.loads(metadata["fers_card"])
    except ValueError as e:
        raise ModelError(f"{path.name}: the model card is not valid JSON ({e})") from None
    if not isinstance(card, dict):
        raise ModelError(f"{path.name}: the model card is not a JSON object")
    return card


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().contiguous().numpy()
    return np.asarray(value)
