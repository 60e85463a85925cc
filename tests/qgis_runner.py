"""One way to run Debian's ``qgis_process`` on this checkout from a test: the headless
environment ``scripts/qgis-env.sh`` sets up, the executable, and a runner with the plugin
enabled in the profile that environment points at (the ``qgis_process`` fixture of
``tests/conftest.py``). Imports nothing from QGIS, so engine tests may use it too."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[1]


def qgis_env() -> dict:
    """The environment scripts/qgis-env.sh sets up for headless qgis_process."""
    env = dict(os.environ)
    runtime = env.get("XDG_RUNTIME_DIR") or f"/tmp/runtime-{os.getuid()}"
    os.makedirs(runtime, exist_ok=True)
    os.chmod(runtime, 0o700)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        XDG_RUNTIME_DIR=runtime,
        QGIS_PLUGINPATH=str(REPO),
        FERS_VENV=str(REPO / ".venv"),
    )
    return env


def qgis_process_cmd() -> str:
    """The qgis_process executable, or a skip when QGIS is not installed."""
    for candidate in (shutil.which("qgis_process"), "/usr/bin/qgis_process.bin"):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.skip("qgis_process not installed")


def plugin_runner() -> Callable[..., subprocess.CompletedProcess]:
    """``run(*args, timeout=240)``: qgis_process with this checkout's plugin enabled."""
    exe, env = qgis_process_cmd(), qgis_env()

    def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=timeout)

    listed = run("plugins")
    if not any(line.strip() == "* fers_qgis" for line in listed.stdout.splitlines()):
        enabled = run("plugins", "enable", "fers_qgis")
        assert enabled.returncode == 0, enabled.stderr
    return run
