"""Where the models shipped with FERS live: one rule for the checkout, the plugin zip and pip.

Bundled models sit in the folder ``models`` beside the ``fers_engine`` package, computed here
once (``MODELS_DIR``): in a checkout that is the repository's ``models/``; in the plugin zip,
``fers_qgis/ext/models/`` beside ``fers_qgis/ext/fers_engine`` (``scripts/package.py`` puts the
default model and its card there). ``FERS_MODELS_DIR`` (one or more folders separated by
``os.pathsep``) adds folders that are searched first. A model is named by its file stem:
``fers-default`` is ``fers-default.safetensors``; training checkpoints (``*.ckpt.safetensors``)
are not models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

from ..errors import ModelError

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = "fers-default"
SUFFIX = ".safetensors"
ENV_VAR = "FERS_MODELS_DIR"


def model_folders() -> List[Path]:
    """The folders searched for bundled models, in order: ``FERS_MODELS_DIR``, then ``MODELS_DIR``."""
    extra = [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    return [p for p in extra if p.is_dir()] + [MODELS_DIR]


def bundled_models() -> List[str]:
    """Names of every bundled model (first folder wins for a name given twice), sorted."""
    names = []
    for folder in model_folders():
        if folder.is_dir():
            names += [
                p.name[: -len(SUFFIX)]
                for p in folder.glob("*" + SUFFIX)
                if not p.name.endswith(".ckpt" + SUFFIX)
            ]
    return sorted(dict.fromkeys(names))


def resolve_model_path(path_or_name: Optional[str]) -> Path:
    """The model file for a bundled name (None or "" = the default model) or a path."""
    text = DEFAULT_MODEL if path_or_name is None or str(path_or_name).strip() == "" else str(path_or_name)
    path = Path(text).expanduser()
    is_name = path.suffix == "" and "/" not in text and "\\" not in text
    if is_name or (not path.is_absolute() and len(path.parts) == 1 and not path.exists()):
        stem = text[: -len(SUFFIX)] if text.endswith(SUFFIX) else text
        for folder in model_folders():
            candidate = folder / (stem + SUFFIX)
            if candidate.is_file():
                return candidate
        if is_name:
            where = ", ".join(str(f) for f in model_folders())
            raise ModelError(
                f"no bundled model named '{text}' in {where} "
                f"(available: {', '.join(bundled_models()) or 'none'})"
            )
    if path.is_dir():
        raise ModelError(f"model path is a folder, not a model file: {path}")
    if not path.is_file():
        raise ModelError(
            f"model file not found: {path} (bundled models: {', '.join(bundled_models()) or 'none'})"
        )
    return path
