"""What every Dask worker process sets up once for FERS: thread limits, GDAL's cache, loaded models.

A worker runs one engine task per thread. Left alone, each task's BLAS (and torch) would start one
thread per core and GDAL would keep 5 % of the machine's memory as block cache in every process,
so N workers on N cores would run N^2 threads and hold N caches. The plugin caps BLAS and torch at
one thread per task thread and GDAL's cache at a share of the worker's memory limit, and keeps
every enhancer model it loads, so a worker reads a model file once, not once per scene.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import signal
import threading
from typing import Any, Callable, Dict, Optional, Tuple

from distributed import WorkerPlugin, get_worker

from ..errors import FersError

PLUGIN_NAME = "fers"
#: GDAL block cache of a worker: this share of its memory limit (the detect run caps it again).
GDAL_CACHE_SHARE = 8
#: GDAL block cache when the worker has no memory limit.
GDAL_CACHE_DEFAULT = 256 * 2**20
#: The smallest GDAL cache that still holds a few tiles of a wide scene.
GDAL_CACHE_MIN = 16 * 2**20


class FersWorkerPlugin(WorkerPlugin):
    """Per-process limits and the model cache of one worker (registered by ``install_plugin``).

    ``threads``: BLAS and torch threads per task. One is right whenever the cluster has a task
    thread per core (a LocalCluster, or ``dask worker --nthreads 1 --nworkers <cores>``).
    """

    name = PLUGIN_NAME

    def __init__(self, threads: int = 1, local: bool = False) -> None:
        self.threads = max(1, int(threads))  # BLAS/torch threads per task
        self.local = bool(local)  # a worker of a LocalCluster this client started
        self.gdal_cache = GDAL_CACHE_DEFAULT

    def setup(self, worker) -> None:
        # made here, on the worker: the plugin object travels pickled and a lock does not
        self._blas = None
        self._models: Dict[Tuple[str, str], object] = {}
        self._lock = threading.Lock()
        if self.local and threading.current_thread() is threading.main_thread():
            # Ctrl-C in a terminal reaches the whole process group: the client must see it alone,
            # stop the tasks through the batch's stop flag (outputs abort cleanly) and then close
            # the cluster. A worker killed by SIGINT mid-write would leave its temporary file.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        limit = getattr(worker, "memory_manager", None)
        limit = getattr(limit, "memory_limit", None)
        self.gdal_cache = max(GDAL_CACHE_MIN, int(limit) // GDAL_CACHE_SHARE) if limit else GDAL_CACHE_DEFAULT
        try:
            from osgeo import gdal

            gdal.SetCacheMax(int(min(gdal.GetCacheMax(), self.gdal_cache)))
        except ImportError:  # pragma: no cover - GDAL always comes with the engine's readers
            pass
        try:
            # The whole process is this worker's: a process-wide limit is what is wanted here
            # (inside QGIS the engine never does this).
            from threadpoolctl import threadpool_limits

            self._blas = threadpool_limits(limits=self.threads)
        except ImportError:
            self._blas = None  # BLAS keeps its own thread count; still correct, maybe slower

    def teardown(self, worker) -> None:
        if self._blas is not None:
            self._blas.restore_original_limits()
            self._blas = None
        self._models.clear()

    def enhancer(self, model: Optional[str], device: str):
        """The enhancer ``model`` on ``device``, loaded on this worker's first request only."""
        key = (str(model or ""), str(device))
        with self._lock:
            if key not in self._models:
                from ..nets.enhancer import load_enhancer

                loaded = load_enhancer(model, device=device)
                _limit_torch_threads(self.threads)
                self._models[key] = loaded
            return self._models[key]


def current_plugin() -> FersWorkerPlugin:
    """The plugin of the worker running the calling task (registered by ``cluster_client``)."""
    plugin: Any = get_worker().plugins.get(PLUGIN_NAME)
    if plugin is None:  # a client that did not go through cluster_client: set up here, once
        plugin = FersWorkerPlugin()
        plugin.setup(get_worker())
        get_worker().plugins[PLUGIN_NAME] = plugin
    return plugin


def task_options(options):
    """``options`` as a task on this worker runs them (a ``DetectOptions``): the windowed
    kernels get the plugin's thread count, the one BLAS and torch run with, unless the options
    name their own. Left at None, every task would start one kernel thread per core of the
    machine: N workers on N cores would run N^2 threads."""
    if options.workers is not None:
        return options
    return dataclasses.replace(options, workers=current_plugin().threads)


def portable_errors(task: Callable) -> Callable:
    """Raise a task's FersError to the client as the same error, without its chain.

    Dask pickles a task's exception with its ``__context__`` (tblib); a GDAL or rasterio error in
    that chain may not unpickle, and the client would get a bare ``Exception`` with a repr
    instead of the InputError that names the problem in one line.
    """

    @functools.wraps(task)
    def run(*args, **kwargs):
        detached = None
        try:
            return task(*args, **kwargs)
        except FersError as exc:
            detached = copy.copy(exc)  # same class and fields, no context
        raise detached

    return run


def _limit_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before torch's first parallel work
        pass
