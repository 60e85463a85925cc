"""Shared test fixtures: where the real scenes live, and how their absence is handled.

Tests that need ``../shared/data`` use the ``shared_data`` fixture. Without the folder they skip
with a clear reason, except when ``FERS_REQUIRE_DATA=1`` (set by ``.ci/run``), where a missing
folder is a failure: CI must never go green by skipping the real-data tests.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FERS_SHARED_DATA", REPO.parent / "shared" / "data"))


def _require_data() -> bool:
    return os.environ.get("FERS_REQUIRE_DATA", "") not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-scene folder; skips (or fails under FERS_REQUIRE_DATA=1) when it is absent."""
    if not (SHARED_DATA / "CATALOG.md").is_file():
        message = f"real hyperspectral scenes not found at {SHARED_DATA} (set FERS_SHARED_DATA)"
        if _require_data():
            pytest.fail(message + "; FERS_REQUIRE_DATA=1 forbids skipping", pytrace=False)
        pytest.skip(message)
    return SHARED_DATA
