"""Without torch the plugin loads and detect runs, enhancers included (they run on numpy);
training, which needs torch, says what to install."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from qgis_helpers import REPO, synthetic_cube, write_tif
from qgis_runner import qgis_env

INSTALL_HINT = "Install PyTorch for FERS"

SCRIPT = textwrap.dedent(r"""
    import json, sys
    sys.modules["torch"] = None          # import torch -> ImportError, as when it is not installed
    sys.modules["safetensors"] = None
    sys.path.insert(0, {repo!r}); sys.path.append("/usr/share/qgis/python/plugins")
    from qgis.core import QgsApplication, QgsProcessingException
    app = QgsApplication([], False); app.initQgis()
    from processing.core.Processing import Processing
    Processing.initialize()
    import fers_qgis
    plugin = fers_qgis.classFactory(None); plugin.initProcessing()
    import processing
    out = {{"algs": sorted(a.id() for a in plugin.provider.algorithms())}}
    res = processing.run("fers:detect", {{"INPUT": {src!r}, "ENHANCER": "none", "OUTPUT": {dst!r}}})
    out["none"] = res["OUTPUT"]
    for name, alg, params in (
            ("full", "fers:detect", {{"INPUT": {src!r}, "ENHANCER": "full", "OUTPUT": {dst2!r}}}),
            ("spectral", "fers:detect", {{"INPUT": {src!r}, "ENHANCER": "spectral", "OUTPUT": {dst2!r}}}),
            ("train", "fers:train", {{"INPUTS": [{src!r}], "EPOCHS": 1, "OUTPUT": {model!r}}})):
        try:
            processing.run(alg, params)
            out[name] = "ran"
        except QgsProcessingException as e:
            out[name] = str(e)
    out["torch_imported"] = sys.modules.get("torch") is not None
    print("RESULT " + json.dumps(out))
    plugin.unload()
""")


def test_plugin_works_without_torch(tmp_path):
    cube, _ = synthetic_cube(bands=5, rows=20, cols=20)  # at least the default CRD window (15)
    src = write_tif(tmp_path / "in.tif", cube)
    script = SCRIPT.format(
        repo=str(REPO),
        src=src,
        dst=str(tmp_path / "o.tif"),
        dst2=str(tmp_path / "o2.tif"),
        model=str(tmp_path / "m.safetensors"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=qgis_env(), capture_output=True, text=True, timeout=120
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    assert "fers:detect" in out["algs"] and "fers:train" in out["algs"]
    assert out["none"].endswith("o.tif") and (tmp_path / "o.tif").is_file()
    # the enhancers run without torch: the engine's CPU path is numpy (nets/numpy_forward.py)
    assert out["full"] == out["spectral"] == "ran", out
    assert (tmp_path / "o2.tif").is_file()
    assert "PyTorch" in out["train"] and INSTALL_HINT in out["train"], out["train"]
    assert "pip install" not in out["train"]  # a bare pip into QGIS's Python fails (PEP 668, no pip on PATH)
    assert not out["torch_imported"]
    assert not (tmp_path / "m.safetensors").exists()


MISSING_PACKAGE = textwrap.dedent(r"""
    import json, sys
    sys.modules["scipy"] = None          # QGIS builds without scipy exist (it reads .mat files)
    sys.path.insert(0, {repo!r}); sys.path.append("/usr/share/qgis/python/plugins")
    from qgis.core import QgsApplication, QgsProcessingException
    app = QgsApplication([], False); app.initQgis()
    from processing.core.Processing import Processing
    Processing.initialize()
    import fers_qgis
    plugin = fers_qgis.classFactory(None); plugin.initProcessing()
    import processing
    try:
        processing.run("fers:detect", {{"INPUT_FILE": {src!r}, "ENHANCER": {enhancer!r}, "OUTPUT": {dst!r}}})
        print("RESULT ran")
    except QgsProcessingException as e:
        print("RESULT " + str(e).replace(chr(10), " "))
""")


def test_a_missing_package_is_named_not_blamed_on_torch(tmp_path):
    """Reading a .mat needs scipy: without it the message names scipy, whatever the enhancer."""
    import scipy.io

    cube, _ = synthetic_cube(bands=5, rows=10, cols=10)
    src = tmp_path / "scene.mat"
    scipy.io.savemat(str(src), {"cube": cube.transpose(1, 2, 0)})
    for enhancer in ("none", "full"):
        script = MISSING_PACKAGE.format(
            repo=str(REPO), src=str(src), dst=str(tmp_path / "o.tif"), enhancer=enhancer
        )
        proc = subprocess.run(
            [sys.executable, "-c", script], env=qgis_env(), capture_output=True, text=True, timeout=120
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, proc.stderr[-3000:]
        message = lines[-1][len("RESULT ") :]
        assert "scipy" in message and "PyTorch" not in message, (enhancer, message)
        assert not (tmp_path / "o.tif").exists()
