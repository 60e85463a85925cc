"""Where a training run keeps its resumable state, named in one place (imports nothing heavy, so
the QGIS plugin can name the files without torch).

A run writing ``model.safetensors`` keeps ``model.ckpt.safetensors`` (weights, optimiser state)
and ``model.ckpt.json`` (progress) beside it while it runs. A finished run deletes them unless
asked to keep them; a cancelled or failed run leaves them for ``resume``. A recipe that trains
several candidates keeps each candidate's finished model as ``model.cand-<tag>.safetensors``
(+ card) until the best one is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple


def checkpoint_paths(model_path) -> Tuple[Path, Path]:
    """(weights, progress) checkpoint files of a run that writes ``model_path``."""
    p = Path(model_path)
    return p.with_name(p.stem + ".ckpt.safetensors"), p.with_name(p.stem + ".ckpt.json")


def candidate_path(model_path, tag: str) -> Path:
    """Where the candidate ``tag`` of a multi-candidate run writes its model."""
    p = Path(model_path)
    return p.with_name(f"{p.stem}.cand-{tag}.safetensors")


def run_files(model_path, tags=()) -> List[Path]:
    """Every intermediate file a run writing ``model_path`` may leave (checkpoints and candidates)."""
    files = list(checkpoint_paths(model_path))
    for tag in tags:
        cand = candidate_path(model_path, tag)
        files += [cand, cand.with_suffix(".json"), *checkpoint_paths(cand)]
    return files
