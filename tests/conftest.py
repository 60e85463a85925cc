"""Shared test fixtures: where the real scenes live, and how their absence is handled; markers.

Tests that need ``../shared/data`` use the ``shared_data`` fixture. Without the folder they skip
with a clear reason, except when ``FERS_REQUIRE_DATA=1`` (set by ``.ci/run``), where a missing
folder is a failure: CI must never go green by skipping the real-data tests.

Markers (registered in pyproject.toml) are applied here from where a test lives and what it
uses, so no test can forget its own: ``qgis`` for the plugin's tests (``tests/fers_qgis``, the
zip install) and every test that runs ``qgis_process``; ``real_data`` for every test that takes
``shared_data``; ``slow`` is set by hand.
``pytest -m "not qgis"`` runs the engine's tests alone; where QGIS cannot be imported at all,
the plugin's test files are not even collected (their imports would fail), and the header says so.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FERS_SHARED_DATA", REPO.parent / "shared" / "data"))
TESTS = Path(__file__).resolve().parent
#: Test files and folders that need QGIS (qgis.core, qgis_process, pytest-qgis's fixtures).
QGIS_TESTS = (TESTS / "fers_qgis", TESTS / "test_install_zip.py")


def _qgis_importable() -> bool:
    try:
        return importlib.util.find_spec("qgis") is not None
    except (ImportError, ValueError):
        return False


HAVE_QGIS = _qgis_importable()


def _needs_qgis(path: Path) -> bool:
    return any(path == p or p in path.parents for p in QGIS_TESTS)


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Without QGIS the plugin's tests cannot be imported: leave them out instead of erroring."""
    if not HAVE_QGIS and _needs_qgis(Path(collection_path)):
        return True
    return None


def pytest_report_header(config) -> str | None:
    if not HAVE_QGIS:
        return "qgis: not importable, the plugin's tests (marker qgis) are not collected"
    return None


def pytest_collection_modifyitems(config, items) -> None:
    """``qgis`` by location or the ``qgis_process`` fixture, ``real_data`` by ``shared_data``."""
    for item in items:
        if _needs_qgis(Path(item.path)) or "qgis_process" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.qgis)
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_data)


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


@pytest.fixture(scope="session")
def qgis_process():
    """A runner for qgis_process with this checkout's plugin enabled; returns CompletedProcess
    (``tests/qgis_runner.py``; skips when QGIS is not installed)."""
    from qgis_runner import plugin_runner

    return plugin_runner()
