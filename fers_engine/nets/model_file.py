"""Model files: safetensors weights + a JSON model card, never pickle.

The card is embedded in the safetensors header (``__metadata__['fers_card']``) and written as a
sidecar ``<name>.json``; the embedded copy is authoritative. Loading uses ``safetensors`` only
(``torch.load`` is never called), so a model file cannot execute code. Every failure (missing,
truncated, not safetensors, no card, wrong format) is a ``ModelError`` naming the file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple

from ..errors import DependencyError, ModelError
from ..io.atomic import AtomicFile, write_text

FORMAT = "fers-enhancer"
FORMAT_VERSION = 1
INSTALL_HINT = "install torch==2.13.0 safetensors==0.8.0 (pip install 'fers[torch]')"


def require_torch():
    try:
        import torch  # noqa: F401
        import safetensors.torch  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without torch
        raise DependencyError(f"the neural enhancer needs torch and safetensors ({e}); {INSTALL_HINT}") from None
    return torch


def save_model(path, tensors: Dict, card: dict, sidecar: bool = True) -> Path:
    """Write ``tensors`` (name -> torch.Tensor) and ``card`` atomically; returns the path."""
    require_torch()
    from safetensors.torch import save_file
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"fers_card": json.dumps(card, sort_keys=True)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    if sidecar:
        write_text(path.with_suffix(".json"), json.dumps(card, indent=2, sort_keys=True) + "\n")
    return path


def read_card(path) -> dict:
    """The embedded card only (reads the header, not the weights)."""
    require_torch()
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        raise ModelError(f"{path} is not a readable safetensors model file ({_short(e)})") from None
    if "fers_card" not in meta:
        raise ModelError(f"{path} has no FERS model card in its safetensors metadata")
    try:
        card = json.loads(meta["fers_card"])
    except ValueError as e:
        raise ModelError(f"{path}: the model card is not valid JSON ({e})") from None
    return card


def load_model(path, expect_format: str | None = FORMAT) -> Tuple[Dict, dict]:
    """(tensors on CPU, card). Raises ModelError for any unreadable or foreign file."""
    require_torch()
    from safetensors.torch import load_file
    path = Path(path)
    card = read_card(path)
    if expect_format is not None and card.get("format") != expect_format:
        raise ModelError(f"{path} is not a {expect_format} model (format {card.get('format')!r})")
    if expect_format is not None and int(card.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"{path} needs a newer FERS (model format {card.get('format_version')})")
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as e:
        raise ModelError(f"{path}: cannot read the weights ({_short(e)})") from None
    return tensors, card


def _short(e: Exception) -> str:
    s = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return s[:160]
