"""Fixtures for the detector tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["compiled", "numpy"])
def lrx_backend(request, monkeypatch):
    """Runs a windowed-detector test on both paths: the numba kernels and the numpy fallbacks."""
    from fers_engine.detectors import compiled

    if request.param == "compiled" and not compiled.available():
        pytest.skip("numba is not installed: the compiled kernels cannot run")
    if request.param == "numpy":
        monkeypatch.setattr(compiled, "available", lambda: False)
    return request.param
