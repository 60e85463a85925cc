"""Where FERS computes: the one device policy of the whole product (pipeline, enhancers,
detectors, training).

* ``"cpu"``: numpy through its BLAS, for the detectors and the enhancers alike, even where torch
  is installed (the enhancers' numpy forward pass, ``nets.numpy_forward``, is at least as fast
  on the CPU as torch's, and the plugin zip needs no torch at all);
* ``"cuda"`` / ``"cuda:N"``: torch on that GPU; when torch sees none, a warning and the CPU;
* ``"auto"``: the GPU when torch sees one, else the CPU. On Linux without an NVIDIA driver torch
  is not even imported (it costs seconds and may not be installed).

``choose_device`` applies the policy to a user's choice. ``resolve_device`` is the detectors'
low-level form: it maps a device name to a ``torch.device``, or None for numpy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from .. import hints
from ..errors import DependencyError, InputError


def cuda_available() -> bool:
    """True when torch is importable and sees a CUDA GPU; False without importing torch on Linux
    machines that have no NVIDIA driver."""
    if sys.platform.startswith("linux") and not Path("/proc/driver/nvidia").exists():
        return False
    try:
        import torch
    except Exception:  # torch is optional: absent or broken means no GPU for FERS
        return False
    return bool(torch.cuda.is_available())


def choose_device(requested: Optional[str] = "auto", reporter=None) -> str:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` for a user's choice (auto, cpu, cuda, cuda:N)."""
    choice = (requested or "auto").strip().lower()
    if choice not in ("auto", "cpu", "cuda") and not (choice.startswith("cuda:") and choice[5:].isdigit()):
        raise InputError(f"unknown device {requested!r}: choose auto, cpu or cuda")
    if choice == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda" if choice == "auto" else choice
    if choice != "auto" and reporter is not None:
        reporter.warning(f"device {choice} was requested but no CUDA GPU is available: running on the CPU")
    return "cpu"


def resolve_device(device: Optional[str]):
    """``None``/'numpy' -> None (numpy path); 'auto' -> the policy's GPU or None for the CPU;
    'cpu'/'cuda'/'cuda:N' -> that torch device, asked for explicitly (tests, benchmarks)."""
    if device is None or device == "numpy":
        return None
    if device == "auto":
        device = choose_device("auto")
        if device == "cpu":
            return None
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is an optional extra
        raise DependencyError(f"device '{device}' needs PyTorch; {hints.TORCH}") from exc
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DependencyError(f"device '{device}' asked for, but torch sees no CUDA GPU")
    return dev
