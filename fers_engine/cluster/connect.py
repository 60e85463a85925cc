"""Connect to a Dask cluster, or start one on this machine, with the FERS worker plugin installed.

``dask`` and ``distributed`` are optional: nothing outside ``fers_engine.cluster`` imports them, and
this module imports them only when a cluster is asked for, so the single-process path never pays
for them and a missing install is one line naming what to install.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator, Optional

from .. import __version__
from ..errors import ClusterError, DependencyError

INSTALL_HINT = 'python -m pip install "fers-hsi[cluster]" (dask==2026.8.0, distributed==2026.8.0)'
#: Seconds to wait for a scheduler address to answer before saying it cannot be reached.
CONNECT_TIMEOUT_S = 20


def require_distributed():
    """The ``distributed`` module, or a DependencyError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise DependencyError(
            f"running on a Dask cluster needs dask and distributed: {INSTALL_HINT}"
        ) from None
    return distributed


def local_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one): the detectors'
    one rule, ``detectors.parallel.available_cores``."""
    from ..detectors.parallel import available_cores

    return available_cores()


@contextmanager
def cluster_client(
    scheduler: Optional[str] = None,
    workers: Optional[int] = None,
    memory_limit: str = "auto",
    threads: Optional[int] = None,
) -> Iterator[object]:
    """A ``distributed.Client`` with the FERS worker plugin registered; closed on exit.

    ``scheduler`` is the address of a running scheduler (``tcp://host:8786``); without it a
    ``LocalCluster`` of ``workers`` processes (default: one per core) with one thread each is
    started and shut down on exit. One thread per worker process is what the engine wants: its
    BLAS, torch and GDAL caches are per process, and the plugin sets them for one task at a time.
    ``threads`` is each task's BLAS/torch thread count, and its windowed kernels' (through
    ``DetectOptions.workers``, ``worker.task_options``): by default 1 on a scheduler's workers,
    and the cores left per worker on a LocalCluster. Float32 matrix products of OpenBLAS round
    differently with another thread count, so outputs are bit for bit those of ``fers detect``
    run with the same count (``--threads N`` and ``OPENBLAS_NUM_THREADS=N``).
    """
    distributed = require_distributed()
    cluster = None
    per_task = 1
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {scheduler} ({first_line(exc)})"
            ) from None
    else:
        count = int(workers) if workers else local_cores()
        if count < 1:
            raise ClusterError(f"a local cluster needs at least 1 worker, got {count}")
        cluster = distributed.LocalCluster(
            n_workers=count,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},  # no port clash
            silence_logs=logging.CRITICAL,
        )
        client = distributed.Client(cluster, set_as_default=False)
        per_task = max(1, local_cores() // count)  # fewer workers than cores: BLAS uses the rest
    try:
        install_plugin(client, threads or per_task, local=cluster is not None)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def install_plugin(client, threads: int = 1, local: bool = False) -> None:
    """Register the FERS worker plugin (new workers get it too) after checking that every worker
    runs this version of the engine: a worker with another version would write other numbers."""
    from .worker import PLUGIN_NAME, FersWorkerPlugin

    def engine_version() -> str:
        import fers_engine

        return fers_engine.__version__

    try:
        versions = client.run(engine_version)
    except ImportError:
        raise ClusterError(
            "the cluster's workers cannot import fers_engine: install fers-hsi "
            f"{__version__} in the workers' Python environment"
        ) from None
    if not versions:
        raise ClusterError("the Dask cluster has no worker")
    other = {addr: v for addr, v in versions.items() if v != __version__}
    if other:
        addr, version = next(iter(other.items()))
        raise ClusterError(
            f"worker {addr} runs fers_engine {version}, this is {__version__}: "
            "install the same version everywhere"
        )

    def current(dask_worker):
        plugin = dask_worker.plugins.get(PLUGIN_NAME)
        return None if plugin is None else (plugin.threads, plugin.local)

    if set(client.run(current).values()) != {(max(1, int(threads)), bool(local))}:
        # registering again would tear down the workers' loaded models: only when it changes
        client.register_plugin(FersWorkerPlugin(threads, local), name=PLUGIN_NAME)


def first_line(exc: BaseException) -> str:
    """An error's first line (a summary row, a one-line message), or its type when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
