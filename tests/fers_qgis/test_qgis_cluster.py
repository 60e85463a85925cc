"""fers:detect with a Dask scheduler address (CLUSTER), headless through qgis_process."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("distributed")

from qgis_helpers import synthetic_cube, write_tif  # noqa: E402


@pytest.fixture(scope="module")
def scheduler():
    """A LocalCluster of two workers started by this test process; qgis_process connects to it."""
    from fers_engine.cluster import cluster_client

    with cluster_client(workers=2, threads=1) as client:
        yield client.scheduler.address


def _json(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout[proc.stdout.index("{") :])


def test_qgis_process_detect_on_a_running_scheduler(qgis_process, scheduler, tmp_path):
    from osgeo import gdal
    from threadpoolctl import threadpool_limits

    from fers_engine.pipeline import DetectOptions, detect

    cube, _ = synthetic_cube(bands=12, rows=60, cols=40)
    src = write_tif(tmp_path / "in.tif", cube)
    out, mask = tmp_path / "score.tif", tmp_path / "mask.tif"
    proc = qgis_process(
        "--json",
        "run",
        "fers:detect",
        "--",
        f"INPUT={src}",
        "ENHANCER=none",
        "DETECTOR=rx",
        "BLOCK_SIZE=9",
        f"CLUSTER={scheduler}",
        f"OUTPUT={out}",
        f"OUTPUT_MASK={mask}",
    )
    data = _json(proc)
    assert data["results"]["OUTPUT"] == str(out)
    log = json.dumps(data["log"])
    assert "Running on the Dask cluster at" in log and "tasks over the cluster" in log
    with threadpool_limits(1):
        detect(src, tmp_path / "ref.tif", DetectOptions(enhancer="none", detector="rx", block_rows=9))
    ours, ref = (gdal.Open(str(p)).ReadAsArray().astype(np.float64) for p in (out, tmp_path / "ref.tif"))
    assert np.nanmax(np.abs(ours - ref) / np.abs(ref)) < 1e-5
    assert gdal.Open(str(mask)).RasterCount == 1


def test_qgis_process_unreachable_scheduler_is_one_line(qgis_process, tmp_path):
    cube, _ = synthetic_cube(bands=6, rows=16, cols=14)
    src = write_tif(tmp_path / "in.tif", cube)
    proc = qgis_process(
        "run",
        "fers:detect",
        "--",
        f"INPUT={src}",
        "ENHANCER=none",
        "DETECTOR=rx",
        "CLUSTER=tcp://127.0.0.1:9",
        f"OUTPUT={tmp_path / 'score.tif'}",
        timeout=120,
    )
    assert proc.returncode != 0
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "score.tif").exists()
