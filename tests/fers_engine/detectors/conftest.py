"""Fixtures for the detector tests."""
from __future__ import annotations

import pytest


@pytest.fixture(params=["compiled", "numpy"])
def lrx_backend(request, monkeypatch):
    """Runs a local-RX test on both full-mode paths: the numba kernel and the numpy fallback."""
    from fers_engine.detectors import ring_kernel

    if request.param == "compiled" and not ring_kernel.available():
        pytest.skip("numba is not installed: the compiled local-RX kernel cannot run")
    if request.param == "numpy":
        monkeypatch.setattr(ring_kernel, "available", lambda: False)
    return request.param
