"""Where the detectors compute: numpy on the CPU, or a torch device.

Kept apart from the detectors so that the statistics and the scorer resolve devices one way.
"""
from __future__ import annotations

from typing import Optional

from ..errors import DependencyError


def resolve_device(device: Optional[str]):
    """``None``/'numpy' -> None (numpy path); 'cpu'/'cuda'/'cuda:N'/'auto' -> a torch.device.

    'auto' picks CUDA when available, otherwise stays on numpy, which is as fast as torch on CPU
    and does not compete with numpy's BLAS threads.
    """
    if device is None or device == "numpy":
        return None
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is an optional extra
        if device == "auto":
            return None
        raise DependencyError(
            f"device '{device}' needs torch: pip install 'fers[torch]'"
        ) from exc
    if device == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else None
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DependencyError(f"device '{device}' asked for, but torch sees no CUDA GPU")
    return dev
