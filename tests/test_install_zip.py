"""A real install (issue 10 item 4): the plugin zip alone runs the full method in a stock QGIS.

``make package`` builds the zip; it is unpacked where *Install from ZIP* puts it, the empty
``python/plugins`` folder of a fresh QGIS profile (a new HOME, no QGIS_PLUGINPATH), enabled there,
and ``/usr/bin/qgis_process`` runs ``fers:detect`` with its defaults (the
full method) on a real scene from an environment with no venv, no PYTHONPATH and no FERS_VENV:
QGIS's own Python, where torch, rasterio and safetensors cannot be imported (checked inside
QGIS by a Processing script that runs the same detect and reports what was importable and
loaded). The score map must carry the input's CRS, size and geotransform, the user's file mode,
and the scores of the checkout's own ``fers detect`` run by the same Python (max relative
difference 1e-5). Against the venv's ``fers detect`` (other numpy/scipy wheels, so other
OpenBLAS kernels) the float32 rounding differs; that difference is reported, and bounded loosely.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from fers_engine.choices import DEFAULT_DETECTOR, DEFAULT_ENHANCER
from fers_engine.io.atomic import user_file_mode
from fers_engine.pipeline import DetectOptions, detect

REPO = Path(__file__).resolve().parents[1]
QGIS_PROCESS = Path("/usr/bin/qgis_process")
SYSTEM_PYTHON = Path("/usr/bin/python3")

CHECK_SCRIPT = textwrap.dedent("""
    import importlib.util, json, sys
    from qgis.core import QgsProcessingAlgorithm, QgsProcessingOutputString, QgsProcessingParameterString

    class FersZipCheck(QgsProcessingAlgorithm):
        def name(self):
            return "fers_zip_check"

        def displayName(self):
            return "FERS zip check"

        def createInstance(self):
            return FersZipCheck()

        def initAlgorithm(self, config=None):
            self.addParameter(QgsProcessingParameterString("INPUT", "input"))
            self.addParameter(QgsProcessingParameterString("OUTPUT", "output"))
            self.addOutput(QgsProcessingOutputString("REPORT", "report"))

        def processAlgorithm(self, parameters, context, feedback):
            import processing
            processing.run("fers:detect", {"INPUT": parameters["INPUT"], "OUTPUT": parameters["OUTPUT"]},
                           context=context, feedback=feedback, is_child_algorithm=True)
            import fers_engine
            from fers_engine.detectors.batched_linalg import blas_threads, single_threaded_blas
            with single_threaded_blas():
                limited = blas_threads()
            import threadpoolctl
            names = ("torch", "rasterio", "safetensors")
            report = {"importable": [n for n in names if importlib.util.find_spec(n) is not None],
                      "loaded": [n for n in names if n in sys.modules],
                      "fers_engine": fers_engine.__file__, "python": sys.executable,
                      "threadpoolctl": threadpoolctl.__file__, "blas_threads_limited": limited}
            return {"REPORT": json.dumps(report)}
""")


PROFILE = Path(".local/share/QGIS/QGIS3/profiles/default")  # QGIS's default profile, under HOME


def _clean_env(home: Path) -> dict:
    """What a desktop user's QGIS sees: no venv, no PYTHONPATH, no plugin path, nothing of this checkout."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "QT_QPA_PLATFORM": "offscreen",
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": str(home / "run"),
    }
    (home / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
    return env


def _qgis(env: dict, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(QGIS_PROCESS), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _read(path: Path):
    ds = gdal.Open(str(path))
    out = (
        ds.ReadAsArray().astype(np.float64),
        ds.GetProjection(),
        ds.GetGeoTransform(),
        (ds.RasterXSize, ds.RasterYSize),
    )
    ds = None
    return out


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    assert np.array_equal(np.isnan(a), np.isnan(b))
    return float(np.nanmax(np.abs(a - b) / np.abs(b)))


@pytest.mark.skipif(
    not QGIS_PROCESS.exists() or not SYSTEM_PYTHON.exists(),
    reason="needs Debian's QGIS (/usr/bin/qgis_process) and its Python",
)
def test_plugin_zip_runs_the_full_method_in_a_stock_qgis(shared_data, tmp_path):
    scene = shared_data / "san-diego-envi-90x90" / "SDData"
    dist, home = tmp_path / "dist", tmp_path / "home"
    plugins = home / PROFILE / "python" / "plugins"
    plugins.mkdir(parents=True)
    env = _clean_env(home)
    built = subprocess.run(
        ["make", "-s", "-C", str(REPO), "package", f"DIST={dist}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (package,) = dist.glob("fers_qgis-*.zip")
    with zipfile.ZipFile(package) as zf:
        zf.extractall(plugins)
    assert [p.name for p in plugins.iterdir()] == ["fers_qgis"]
    enabled = _qgis(env, "plugins", "enable", "fers_qgis")
    assert enabled.returncode == 0, enabled.stdout[-2000:] + enabled.stderr[-2000:]

    # 1. what a user runs: fers:detect with its defaults (ENHANCER=spectral, DETECTOR=crd,
    # MODEL=default, DEVICE=auto); QGIS ships no numba, so CRD takes its numpy path
    out = tmp_path / "zip_score.tif"
    run = _qgis(env, "run", "fers:detect", "--", f"INPUT={scene}", f"OUTPUT={out}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "enhancer fers-default.safetensors" in run.stdout and "(numpy)" in run.stdout, run.stdout[-3000:]
    assert f"detector {DEFAULT_DETECTOR}, enhancer {DEFAULT_ENHANCER}, device cpu" in run.stdout, run.stdout[
        -3000:
    ]
    assert "CRD: numpy path" in run.stdout, run.stdout[-3000:]

    # the shipped graphical model from the zip, as the Toolbox lists it (detect defaults -> threshold ->
    # QGIS's GDAL polygonize -> the anomaly polygons)
    polygons = tmp_path / "anomalies.gpkg"
    modelled = _qgis(
        env,
        "run",
        "fers:detect_threshold_polygonize",
        "--",
        f"INPUT={scene}",
        f"fers_detect_1:SCORE={tmp_path / 'model_score.tif'}",
        f"fers_threshold_1:MASK={tmp_path / 'model_mask.tif'}",
        f"native_extractbyattribute_1:POLYGONS={polygons}",
    )
    assert modelled.returncode == 0, modelled.stdout[-3000:] + modelled.stderr[-3000:]
    vectors = ogr.Open(str(polygons))
    assert vectors.GetLayer(0).GetFeatureCount() >= 1
    vectors = None

    # 2. inside QGIS's Python: nothing of torch, rasterio or safetensors, the zip's own engine
    scripts = home / PROFILE / "processing" / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / "fers_zip_check.py").write_text(CHECK_SCRIPT)
    checked = _qgis(
        env,
        "--json",
        "run",
        "script:fers_zip_check",
        "--",
        f"INPUT={scene}",
        f"OUTPUT={tmp_path / 'inside.tif'}",
    )
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    report = json.loads(json.loads(checked.stdout[checked.stdout.index("{") :])["results"]["REPORT"])
    assert report["importable"] == [] and report["loaded"] == [], report
    assert report["fers_engine"] == str(plugins / "fers_qgis" / "ext" / "fers_engine" / "__init__.py")
    assert report["python"] == str(SYSTEM_PYTHON)
    # the numpy kernels keep BLAS on one thread per worker through the zip's own threadpoolctl
    assert report["threadpoolctl"] == str(plugins / "fers_qgis" / "ext" / "threadpoolctl.py"), report
    assert report["blas_threads_limited"] == 1, report

    # 3. the georeference and the size of the input, the user's file mode
    scores, crs, transform, size = _read(out)
    src = gdal.Open(str(scene))
    assert osr.SpatialReference(wkt=crs).IsSame(osr.SpatialReference(wkt=src.GetProjection()))
    assert transform == src.GetGeoTransform() and size == (src.RasterXSize, src.RasterYSize) == (90, 90)
    src = None
    assert stat.S_IMODE(out.stat().st_mode) == user_file_mode()
    assert np.isfinite(scores).all() and scores.min() > 0

    # 4. the checkout's scores: its `fers detect` run by the same Python, outside QGIS
    ref = tmp_path / "checkout_score.tif"
    cli = subprocess.run(
        [str(SYSTEM_PYTHON), "-m", "fers_engine.cli", "detect", str(scene), str(ref), "-q"],
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    assert _rel(scores, _read(ref)[0]) <= 1e-5
    assert _rel(_read(tmp_path / "inside.tif")[0], scores) == 0.0, "the same run inside QGIS, the same scores"
    assert _rel(_read(tmp_path / "model_score.tif")[0], scores) == 0.0, "the model runs detect's defaults"

    # 5. against this test's own interpreter (the venv's numpy/scipy wheels): float32 rounding only
    venv = tmp_path / "venv_score.tif"
    detect(scene, venv, DetectOptions())
    difference = _rel(scores, _read(venv)[0])
    print(f"zip in QGIS against the venv's fers detect: max relative difference {difference:.1e}")
    assert difference <= 1e-3
    shutil.rmtree(home, ignore_errors=True)
