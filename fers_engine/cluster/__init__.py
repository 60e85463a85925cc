"""FERS on a Dask cluster: many scenes at once (``run_batch``), or one scene split in blocks over
the workers (``detect_split``), on a LocalCluster or an existing scheduler (``cluster_client``).

A layer on top of the pipeline: every task calls the same engine functions as ``fers detect``.
``dask`` and ``distributed`` are optional; they are imported only when a cluster is used, and the
single-process path never imports this package.
"""

# ruff: noqa: E402
from .connect import cluster_client, local_cores, require_distributed

require_distributed()  # without dask: one line naming what to install, before anything else

from .batch import BatchResult, SceneJob, SceneOutcome, is_complete, plan_jobs, read_input_list, run_batch
from .split import detect_split

__all__ = [
    "BatchResult",
    "SceneJob",
    "SceneOutcome",
    "cluster_client",
    "detect_split",
    "is_complete",
    "local_cores",
    "plan_jobs",
    "read_input_list",
    "require_distributed",
    "run_batch",
]
