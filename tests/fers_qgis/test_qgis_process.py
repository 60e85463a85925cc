"""Headless qgis_process: plain-text help, a detect run, and the shipped graphical model."""

from __future__ import annotations

import json
import re

from qgis_helpers import REPO, expected_device, raster_geometry, synthetic_cube, write_tif
from test_qgis_provider import HTML_TAG

MODEL = REPO / "fers_qgis" / "models" / "detect_threshold_polygonize.model3"


def _json(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    start = proc.stdout.index("{")
    return json.loads(proc.stdout[start:])


def _wkt(path):
    from osgeo import gdal

    return gdal.Open(str(path)).GetProjection()


def test_help_is_plain_text(qgis_process):
    proc = qgis_process("help", "fers:detect")
    assert proc.returncode == 0, proc.stderr
    assert "Detect anomalies" in proc.stdout and "ENHANCER" in proc.stdout
    assert not HTML_TAG.search(proc.stdout), HTML_TAG.search(proc.stdout).group(0)
    proc = qgis_process("help", "fers:detect_threshold_polygonize")
    assert proc.returncode == 0, proc.stderr
    assert not HTML_TAG.search(proc.stdout)


def test_qgis_process_json_run_detect(qgis_process, tmp_path):
    cube, _ = synthetic_cube(bands=6, rows=16, cols=14)
    src = write_tif(tmp_path / "in.tif", cube)
    out = tmp_path / "score.tif"
    proc = qgis_process(
        "--json",
        "run",
        "fers:detect",
        "--",
        f"INPUT={src}",
        "ENHANCER=none",
        "DETECTOR=lrx",
        "WINDOW_OUTER=7",
        f"OUTPUT={out}",
    )
    data = _json(proc)
    assert data["results"]["OUTPUT"] == str(out)
    assert data["results"]["DEVICE"] == expected_device("auto")
    assert raster_geometry(out)[:4] == raster_geometry(src)[:4]
    assert re.search(f"Device used: {data['results']['DEVICE']}", json.dumps(data["log"]))


def test_graphical_model_runs_headless_on_real_scene(qgis_process, real_scene, tmp_path):
    from osgeo import ogr

    scene, _ = real_scene
    score, mask, polys = tmp_path / "score.tif", tmp_path / "mask.tif", tmp_path / "anomalies.gpkg"
    proc = qgis_process(
        "--json",
        "run",
        str(MODEL),
        "--",
        f"INPUT={scene}",
        "ENHANCER=none",
        "DETECTOR=rx",
        "THRESHOLD_METHOD=percentile",
        "THRESHOLD_VALUE=99.5",
        # QGIS 3.22 names a model's outputs childId:OUTPUT
        f"fers_detect_1:SCORE={score}",
        f"fers_threshold_1:MASK={mask}",
        f"native_extractbyattribute_1:POLYGONS={polys}",
    )
    data = _json(proc)
    results = data["results"]
    assert results["fers_detect_1:SCORE"] == str(score), results
    assert raster_geometry(score)[:4] == raster_geometry(scene)[:4]
    assert raster_geometry(mask)[:4] == raster_geometry(scene)[:4]
    ds = ogr.Open(str(polys))
    layer = ds.GetLayer(0)
    assert layer.GetFeatureCount() >= 1
    values = {f.GetField("DN") for f in layer}
    assert values == {1}
    assert layer.GetSpatialRef().IsSame(ogr.osr.SpatialReference(wkt=_wkt(scene)))
