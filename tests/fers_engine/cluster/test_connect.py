"""Getting a cluster: optional dependencies, addresses, the worker plugin's limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fers_engine.errors import ClusterError, DependencyError

REPO = Path(__file__).resolve().parents[3]


def test_the_single_process_path_never_imports_dask(tmp_path):
    """`fers detect` and the engine's imports stay free of dask and distributed."""
    code = (
        "import sys\n"
        "from fers_engine.cli import main\n"
        "from fers_engine.synthetic import make_scene, write_scene\n"
        "from pathlib import Path\n"
        f"tmp = Path(r'{tmp_path}')\n"
        "scene = make_scene(rows=40, cols=40, bands=8, seed=1, n_targets=3)\n"
        "write_scene(scene, tmp / 'c.tif', tmp / 't.tif')\n"
        "code = main(['detect', str(tmp / 'c.tif'), str(tmp / 's.tif'), '--enhancer', 'none',\n"
        "             '--detector', 'rx', '-q'])\n"
        "assert code == 0\n"
        "import fers_engine.pipeline, fers_engine.io, fers_engine.detectors\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_without_dask_batch_is_one_line_naming_the_install(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['distributed'] = None\n"
        "from fers_engine.cli import main\n"
        f"sys.exit(main(['batch', 'x.tif', '--out-dir', r'{tmp_path}']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2
    assert "fers-hsi[cluster]" in out.stderr and "Traceback" not in out.stderr


def test_require_distributed_raises_dependency_error(monkeypatch):
    from fers_engine.cluster.connect import require_distributed

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(DependencyError, match="dask"):
        require_distributed()


def test_unreachable_scheduler_is_one_clear_error(monkeypatch):
    pytest.importorskip("distributed")
    from fers_engine.cluster import connect

    monkeypatch.setattr(connect, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with connect.cluster_client("tcp://127.0.0.1:9"):
            pass


def test_workers_run_with_the_plugin_limits(client):
    """BLAS threads per task as the plugin says, GDAL's cache capped, SIGINT left to the client.
    (Dask's nanny already starts workers with OPENBLAS_NUM_THREADS=1: the plugin must also be able
    to raise it, for fewer workers than cores.)"""
    from fers_engine.cluster.connect import install_plugin

    def limits(dask_worker):
        import signal

        from osgeo import gdal
        from threadpoolctl import threadpool_info

        plugin = dask_worker.plugins["fers"]
        blas = sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
        ignores_sigint = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        return blas, gdal.GetCacheMax() <= plugin.gdal_cache, ignores_sigint

    try:
        install_plugin(client, threads=2, local=True)
        assert [blas for blas, _, _ in client.run(limits).values()] == [[2], [2]]
    finally:
        install_plugin(client, threads=1, local=True)
    for blas, capped, ignores_sigint in client.run(limits).values():
        assert blas == [1] and capped and ignores_sigint


def test_a_worker_with_another_engine_version_is_refused(client, monkeypatch):
    import fers_engine
    from fers_engine.cluster.connect import install_plugin

    monkeypatch.setattr(fers_engine.cluster.connect, "__version__", "0.0.0-other")
    with pytest.raises(ClusterError, match="runs fers_engine"):
        install_plugin(client)


def test_connecting_again_keeps_the_workers_loaded_models(client):
    """A second client (the next `fers batch --scheduler`, the next QGIS run) with the same
    settings leaves the plugin, and the models it loaded, in place."""
    from fers_engine.cluster.connect import install_plugin

    def plugin_id(dask_worker):
        return id(dask_worker.plugins["fers"])

    before = client.run(plugin_id)
    install_plugin(client, threads=1, local=True)
    assert client.run(plugin_id) == before
