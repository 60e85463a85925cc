"""The one device policy: the CPU is numpy, a GPU is torch, a missing GPU is said aloud."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fers_engine.detectors import device as device_module
from fers_engine.detectors.device import choose_device, resolve_device
from fers_engine.errors import InputError
from fers_engine.progress import Reporter

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("gpu", [False, True])
def test_choices_follow_the_policy_with_and_without_a_gpu(monkeypatch, gpu):
    monkeypatch.setattr(device_module, "cuda_available", lambda: gpu)
    warnings = []
    rep = Reporter(on_warning=warnings.append)
    assert choose_device("cpu", rep) == "cpu"
    assert choose_device("auto", rep) == ("cuda" if gpu else "cpu")
    assert choose_device(None, rep) == ("cuda" if gpu else "cpu")
    assert choose_device("CUDA:1", rep) == ("cuda:1" if gpu else "cpu")
    assert choose_device("cuda", rep) == ("cuda" if gpu else "cpu")
    assert len(warnings) == (0 if gpu else 2) and all("no CUDA GPU" in w for w in warnings)
    for bad in ("gpu", "cuda:x", "tpu"):
        with pytest.raises(InputError, match="unknown device"):
            choose_device(bad)


def test_detectors_map_the_cpu_to_numpy(monkeypatch):
    monkeypatch.setattr(device_module, "cuda_available", lambda: False)
    assert resolve_device(None) is None and resolve_device("numpy") is None
    assert resolve_device("auto") is None


def test_auto_on_a_linux_machine_without_nvidia_driver_never_imports_torch():
    if not sys.platform.startswith("linux") or Path("/proc/driver/nvidia").exists():
        pytest.skip("needs a Linux machine without an NVIDIA driver")
    code = (
        "import sys; from fers_engine.detectors.device import choose_device; "
        "print(choose_device('auto'), 'torch' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.stdout.split() == ["cpu", "False"], proc.stderr
