"""scripts/package.py builds a zip the QGIS plugin repository accepts, and the plugin works from it."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "package.py"), "--dist", str(dist)],
        capture_output=True,
        text=True,
        timeout=120,
    )
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
    for required in (
        "fers_qgis/__init__.py",
        "fers_qgis/metadata.txt",
        "fers_qgis/LICENSE",
        "fers_qgis/plugin.py",
        "fers_qgis/provider.py",
        "fers_qgis/bridge.py",
        "fers_qgis/icon.svg",
        "fers_qgis/styles/score.qml",
        "fers_qgis/models/detect_threshold_polygonize.model3",
        "fers_qgis/algorithms/detect.py",
        "fers_qgis/ext/fers_engine/__init__.py",
        "fers_qgis/ext/fers_engine/pipeline.py",
        "fers_qgis/ext/fers_engine/report.py",
        "fers_qgis/ext/threadpoolctl.py",  # QGIS has none: the numpy kernels' BLAS limit needs it
        "fers_qgis/ext/threadpoolctl-LICENSE.txt",
    ):
        assert required in names, required
    weights = [n for n in names if n.endswith((".safetensors", ".pt", ".pth", ".ckpt"))]
    assert weights == ["fers_qgis/ext/models/fers-default.safetensors"], weights
    assert "fers_qgis/ext/models/fers-default.json" in names
    for name in names:
        assert "__pycache__" not in name and not name.endswith((".pyc", ".pyo")), name
        assert not any(part.startswith(".") for part in name.split("/")), name
    assert os.path.getsize(package) < 5 * 2**20
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(meta_text)
    meta = parser["general"]
    for key in (
        "name",
        "qgisMinimumVersion",
        "description",
        "about",
        "version",
        "author",
        "email",
        "repository",
        "tracker",
        "homepage",
        "tags",
        "category",
        "hasProcessingProvider",
        "experimental",
    ):
        assert meta.get(key, "").strip(), key
    assert meta["version"] == "0.1.0" and meta["hasProcessingProvider"] == "yes"
    assert "<" not in meta["about"]


def test_packaging_ships_the_default_model_and_nothing_else_heavy(tmp_path):
    """The filter on a built zip: a copy of the checkout planted with everything that must stay
    out (fold models, training candidates, checkpoints, stray weights, bytecode, hidden files)."""
    root = tmp_path / "repo"
    for folder in ("fers_qgis", "fers_engine"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "ext"))
    (root / "models" / "folds").mkdir(parents=True)
    shutil.copy(REPO / "LICENSE", root / "LICENSE")
    for name in ("fers-default.safetensors", "fers-default.json"):
        shutil.copy(REPO / "models" / name, root / "models" / name)
    planted = [
        "models/folds/fold1of4.safetensors",
        "models/folds/fold1of4.json",
        "models/fers-default-pretrained-s0.safetensors",
        "models/fers-default-pretrained-s0.json",
        "models/fers-default.ckpt.safetensors",
        "models/fers-default.ckpt.json",
        "models/retrain.py",
        "fers_qgis/stray.safetensors",
        "fers_qgis/weights.pt",
        "fers_engine/nets/old.ckpt",
        "fers_engine/__pycache__/pipeline.cpython-311.pyc",
        "fers_engine/io/scene.pyc",
        "fers_qgis/.hidden.py",
        "fers_engine/.cache/x.py",
        "fers_engine/nets/card.py~",
        "fers_engine/io/scratch.bin",
    ]
    for rel in planted:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    dist = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "package.py"), "--dist", str(dist), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(dist / "fers_qgis-0.1.0.zip") as zf:
        names = set(zf.namelist())
        shipped = zf.read("fers_qgis/ext/models/fers-default.safetensors")
    assert shipped == (REPO / "models" / "fers-default.safetensors").read_bytes()
    assert {
        "fers_qgis/ext/models/fers-default.safetensors",
        "fers_qgis/ext/models/fers-default.json",
        "fers_qgis/ext/fers_engine/nets/card.py",
        "fers_qgis/__init__.py",
    } <= names
    assert not [n for n in names if n.startswith("fers_qgis/ext/models/") and "fers-default." not in n]
    for rel in planted:
        base = rel.rsplit("/", 1)[-1]
        assert not any(n.endswith("/" + base) for n in names), rel
    # without the default model there is nothing worth shipping: the build says so
    (root / "models" / "fers-default.safetensors").unlink()
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "package.py"), "--dist", str(dist), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "default model is missing" in proc.stderr


def test_plugin_uses_vendored_engine_from_zip(package, tmp_path):
    """Installed from the zip (no fers_engine on the path), the plugin falls back to fers_qgis/ext."""
    with zipfile.ZipFile(package) as zf:
        zf.extractall(tmp_path / "plugins")
    env = {k: v for k, v in os.environ.items() if k not in ("FERS_VENV", "VIRTUAL_ENV", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tmp_path / "plugins")
    code = (
        "import sys; import fers_qgis, fers_engine; "
        "print(fers_engine.__file__); print(fers_engine.__version__); "
        "from fers_engine.nets.bundled import MODELS_DIR, bundled_models, resolve_model_path; "
        "print(MODELS_DIR); print(resolve_model_path(None)); print(bundled_models())"
    )
    # the system interpreter has no editable install of fers_engine (the venv has)
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    proc = subprocess.run(
        [python, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path / 'plugins')!r}); " + code],
        env=env,
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    path, _, models, default, names = proc.stdout.splitlines()[:5]
    ext = tmp_path / "plugins" / "fers_qgis" / "ext"
    assert path.startswith(str(ext / "fers_engine")), path
    assert models == str(ext / "models") and default == str(ext / "models" / "fers-default.safetensors")
    assert names == "['fers-default']"
