"""scripts/package.py builds a zip the QGIS plugin repository accepts, and the plugin works from it."""
from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "--dist", str(dist)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    zips = list(dist.glob("*.zip"))
    assert len(zips) == 1
    return zips[0]


def test_zip_layout_and_contents(package):
    assert package.name == "fers_qgis-0.1.0.zip"
    with zipfile.ZipFile(package) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
        meta_text = zf.read("fers_qgis/metadata.txt").decode("utf-8")
    assert {n.split("/")[0] for n in names} == {"fers_qgis"}
    for required in ("fers_qgis/__init__.py", "fers_qgis/metadata.txt", "fers_qgis/LICENSE",
                     "fers_qgis/plugin.py", "fers_qgis/provider.py", "fers_qgis/bridge.py",
                     "fers_qgis/icon.svg", "fers_qgis/styles/score.qml",
                     "fers_qgis/models/detect_threshold_polygonize.model3",
                     "fers_qgis/algorithms/detect.py", "fers_qgis/ext/fers_engine/__init__.py",
                     "fers_qgis/ext/fers_engine/pipeline.py", "fers_qgis/ext/fers_engine/report.py"):
        assert required in names, required
    for name in names:
        assert "__pycache__" not in name and not name.endswith((".pyc", ".pyo")), name
        assert not name.endswith((".safetensors", ".pt", ".pth", ".ckpt")), name
        assert not any(part.startswith(".") for part in name.split("/")), name
    assert os.path.getsize(package) < 5 * 2**20
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(meta_text)
    meta = parser["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                "repository", "tracker", "homepage", "tags", "category", "hasProcessingProvider",
                "experimental"):
        assert meta.get(key, "").strip(), key
    assert meta["version"] == "0.1.0" and meta["hasProcessingProvider"] == "yes"
    assert "<" not in meta["about"]


def test_packaging_leaves_out_weights(tmp_path):
    """A weights file dropped in the plugin folder never reaches the zip."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import package as pkg
    finally:
        sys.path.pop(0)
    assert not pkg.keep("enhancer.safetensors") and not pkg.keep("x.pyc") and pkg.keep("detect.py")
    files = [rel for _, rel in pkg.walk(str(REPO / "fers_qgis"))]
    assert not any("__pycache__" in f or f.endswith(".safetensors") for f in files)


def test_plugin_uses_vendored_engine_from_zip(package, tmp_path):
    """Installed from the zip (no fers_engine on the path), the plugin falls back to fers_qgis/ext."""
    with zipfile.ZipFile(package) as zf:
        zf.extractall(tmp_path / "plugins")
    env = {k: v for k, v in os.environ.items() if k not in ("FERS_VENV", "VIRTUAL_ENV", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tmp_path / "plugins")
    code = ("import sys; import fers_qgis, fers_engine; "
            "print(fers_engine.__file__); print(fers_engine.__version__)")
    # the system interpreter has no editable install of fers_engine (the venv has)
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    proc = subprocess.run([python, "-I", "-c", "import sys; sys.path.insert(0, %r); " % str(tmp_path / "plugins") + code],
                          env=env, capture_output=True, text=True, cwd=str(tmp_path), timeout=60)
    assert proc.returncode == 0, proc.stderr
    path = proc.stdout.splitlines()[0]
    assert path.startswith(str(tmp_path / "plugins" / "fers_qgis" / "ext" / "fers_engine")), path
