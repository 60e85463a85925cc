"""Many scenes on a Dask cluster: one task per scene, each the same ``pipeline.detect`` call as
``fers detect`` (same options, same writer), so every output is bit for bit what ``fers detect``
writes for that scene.

What a campaign needs beyond a loop:

* a scene that fails (bad file, out of memory) is reported with its one-line error and the others
  finish; a worker process that dies (killed, out of memory) has its scene run again elsewhere by
  the scheduler (up to its ``allowed-failures``), then reported failed;
* a rerun skips every scene whose output is complete. *Complete* means the scene's record file
  (``<output>.fers.json``, written by the worker only after the output was committed) names the
  same input (path, size, modification time), the same options and engine version, and every
  output it lists is there with the size and modification time it recorded and opens with GDAL
  at the recorded size. Outputs are committed by rename, so a half-written one never exists;
  a scene whose worker died after the rename but before the record is simply run again;
* every output of every scene, the records and the summary are checked by the output guard
  (``io.guard``) against every input and each other before any work starts, as ``fers detect``
  checks its own; every file is committed by ``io.atomic``;
* cancel (QGIS) or Ctrl-C raises a stop flag (a ``distributed.Event``) that the running detect
  calls check between blocks, so they abort through the writer (which deletes its temporary
  file) instead of being killed mid-write; the partial files a killed worker left are swept
  (``io.guard.sweep_stale_partials``: this host's files of processes that no longer exist) once
  no task of the batch runs any more, and by the next run's guard otherwise;
* a summary table (scene, status, seconds, device, output, error, worker) as CSV and JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence

from .. import __version__
from ..errors import BandIndexError, Cancelled, FersError, InputError, OutputError
from ..io.atomic import write_text
from ..io.guard import Output, guard_outputs, pid_alive, sweep_stale_partials
from ..pipeline import DetectOptions, model_files
from ..progress import SILENT, Reporter
from .connect import first_line

SUMMARY_NAME = "fers-batch-summary"
SCORE_SUFFIX = "_score.tif"
MASK_SUFFIX = "_mask.tif"
RECORD_SUFFIX = ".fers.json"
SUMMARY_COLUMNS = ("scene", "status", "seconds", "device", "output", "error", "worker")
#: Seconds between two looks at the stop flag inside a running task (each look is a scheduler call).
STOP_POLL_S = 0.5
#: Seconds the client waits for running tasks to see the stop flag before it gives up on them.
STOP_GRACE_S = 60.0
#: Seconds between two cancel checks of the client while it waits for results.
CLIENT_POLL_S = 0.25


@dataclass(frozen=True)
class SceneJob:
    """One scene of a batch: what to read, what to write, with which options."""

    index: int
    input: str
    output: str
    mask: Optional[str]
    options: DetectOptions
    threshold_method: Optional[str] = None
    threshold_value: Optional[float] = None

    @property
    def scene(self) -> str:
        return self.input

    @property
    def record(self) -> Path:
        return Path(self.output + RECORD_SUFFIX)

    @property
    def outputs(self) -> List[str]:
        return [self.output] + ([self.mask] if self.mask else [])

    def guarded(self) -> List[Optional[Output]]:
        """What this scene writes, as the output guard names it."""
        name = Path(self.input).name
        return [
            Output.raster(f"score raster of {name}", self.output),
            None if self.mask is None else Output.raster(f"mask of {name}", self.mask),
            Output.file(f"record of {name}", self.record),
        ]


@dataclass
class SceneOutcome:
    """One row of the summary table."""

    scene: str
    status: str  # ok, failed, skipped, cancelled
    seconds: float = 0.0
    device: str = ""
    output: str = ""  # the score raster, when there is one
    error: str = ""
    worker: str = ""


@dataclass
class BatchResult:
    """The rows of a batch in input order, and where the summary was written."""

    outcomes: List[SceneOutcome]
    summary_csv: Path
    summary_json: Path
    seconds: float
    workers: int = 0
    messages: List[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> bool:
        return any(o.status in ("failed", "cancelled") for o in self.outcomes)


# -- planning (client side, before any work) ----------------------------------------------------
def plan_jobs(
    inputs: Sequence,
    out_dir,
    options: DetectOptions,
    mask: bool = False,
    threshold_method: Optional[str] = None,
    threshold_value: Optional[float] = None,
    reporter: Reporter = SILENT,
) -> List[SceneJob]:
    """One job per distinct input, outputs named ``<scene>_score.tif`` in ``out_dir``; refuses
    (before any work) two scenes that would write the same output."""
    options.validate()
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out-dir {out} is a file, not a folder")
    if not inputs:
        raise InputError("no input scene given")
    jobs: List[SceneJob] = []
    seen_inputs: Dict[str, str] = {}
    seen_outputs: Dict[str, str] = {}
    for raw in inputs:
        path = Path(raw).expanduser()
        key = os.path.normcase(os.path.realpath(path))
        if key in seen_inputs:
            reporter.warning(f"{raw} is listed more than once; it runs once")
            continue
        seen_inputs[key] = str(raw)
        stem = path.name if path.is_dir() else path.stem
        output = out / f"{stem}{SCORE_SUFFIX}"
        if output.name in seen_outputs:
            raise InputError(
                f"{seen_outputs[output.name]} and {raw} would both write {output.name} in "
                f"{out}: rename one, or run them into separate folders"
            )
        seen_outputs[output.name] = str(raw)
        jobs.append(
            SceneJob(
                len(jobs),
                str(path),
                str(output),
                str(out / f"{stem}{MASK_SUFFIX}") if mask else None,
                options,
                threshold_method,
                threshold_value,
            )
        )
    return jobs


def read_input_list(path) -> List[str]:
    """Scene paths from a text file, one per line; blank lines and '#' comments are skipped."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the input list {path} ({exc.strerror or exc})") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# -- the record that says an output is complete -------------------------------------------------
def _signature(job: SceneJob) -> Dict:
    """What a complete output must have been made from."""
    st = os.stat(job.input)
    options = json.loads(json.dumps(asdict(job.options)))
    return {
        "fers": __version__,
        "input": os.path.realpath(job.input),
        "input_size": st.st_size,
        "input_mtime_ns": st.st_mtime_ns,
        "options": options,
        "mask": job.mask is not None,
        "threshold_method": job.threshold_method,
        "threshold_value": job.threshold_value,
    }


def write_record(job: SceneJob, device: str, seconds: float, threads: Optional[int] = None) -> None:
    """Record the committed outputs of ``job`` (called after ``detect`` returned), with the
    device and the kernels' thread count they were computed with."""
    outputs = []
    for name in job.outputs:
        st = os.stat(name)
        size = _raster_size(name)
        outputs.append(
            {"path": os.path.basename(name), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "raster": size}
        )
    record = dict(_signature(job), outputs=outputs, device=device, threads=threads, seconds=round(seconds, 3))
    write_text(job.record, json.dumps(record, indent=2) + "\n")


def is_complete(job: SceneJob) -> bool:
    """True when ``job``'s outputs exist, match their record, and the record matches the job."""
    try:
        record = json.loads(job.record.read_text(encoding="utf-8"))
        wanted = _signature(job)
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in wanted.items()):
        return False
    listed = record.get("outputs")
    names = [os.path.basename(p) for p in job.outputs]
    if not isinstance(listed, list) or [o.get("path") for o in listed] != names:
        return False
    for entry, path in zip(listed, job.outputs):
        try:
            st = os.stat(path)
        except OSError:
            return False
        if st.st_size != entry.get("size") or st.st_mtime_ns != entry.get("mtime_ns"):
            return False
        if _raster_size(path) != entry.get("raster"):
            return False
    return True


def _raster_size(path: str) -> Optional[List[int]]:
    """[bands, rows, cols] of a raster as GDAL opens it, None when it does not open."""
    from osgeo import gdal

    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        ds = gdal.Open(str(path))
    except RuntimeError:  # GDAL exceptions on
        ds = None
    finally:
        gdal.PopErrorHandler()
    if ds is None:
        return None
    size = [ds.RasterCount, ds.RasterYSize, ds.RasterXSize]
    ds = None  # closes the dataset
    return size


class BatchLock:
    """One batch at a time per output folder (``.fers-batch.lock``: pid and host of the holder).

    Two batches writing the same outputs would race on them (each would skip or redo the other's
    scenes half-way). A lock left by a batch that was killed on this host (its pid is gone) is
    taken over; one held from another host is reported.
    """

    NAME = ".fers-batch.lock"

    def __init__(self, folder: Path):
        self.path = Path(folder) / self.NAME
        self.held = False

    def __enter__(self) -> BatchLock:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None or not self._alive(holder):
                    try:
                        self.path.unlink()  # stale: its batch was killed
                    except FileNotFoundError:
                        pass
                    continue
                raise OutputError(
                    f"another fers batch (pid {holder.get('pid')} on {holder.get('host')}) is "
                    f"writing to {self.path.parent}; wait for it, or delete {self.path} if it "
                    "no longer runs"
                ) from None
            except OSError as exc:
                raise OutputError(f"cannot write in {self.path.parent} ({exc.strerror or exc})") from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise OutputError(f"cannot take the batch lock {self.path}")

    def __exit__(self, *exc) -> Literal[False]:
        if self.held:
            try:
                self.path.unlink()
            except OSError:
                pass
            self.held = False
        return False

    def _holder(self) -> Optional[Dict]:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # half-written or unreadable: treated as stale
        return holder if isinstance(holder, dict) else None

    @staticmethod
    def _alive(holder: Dict) -> bool:
        if holder.get("host") != socket.gethostname():
            return True  # cannot tell from here: assume it runs
        try:
            pid = int(holder.get("pid", -1))
        except (ValueError, TypeError, OverflowError):
            return True
        return pid_alive(pid)


def guard_batch(jobs: Sequence[SceneJob], folder: Path, reporter: Reporter = SILENT) -> None:
    """The output guard of a whole batch, before any work: every scene's score raster, mask and
    record, and the summary files, against every input (scenes and the model file) and each
    other; then the sweep of partial files that dead writers left in the folder."""
    outputs: List[Optional[Output]] = [o for job in jobs for o in job.guarded()]
    outputs += [
        Output.file("batch summary table", folder / f"{SUMMARY_NAME}.csv"),
        Output.file("batch summary", folder / f"{SUMMARY_NAME}.json"),
    ]
    inputs = [job.input for job in jobs] + (model_files(jobs[0].options) if jobs else [])
    guard_outputs(outputs, inputs=inputs, reporter=reporter)


# -- the task (worker side) ----------------------------------------------------------------------
def detect_task(job: SceneJob, stop_name: Optional[str]) -> Dict:
    """Run ``pipeline.detect`` on one scene inside a worker; always returns a summary row (as a
    dict): a scene's own error never fails the task, so it is reported, not retried."""
    from distributed import get_worker

    from ..pipeline import detect
    from .worker import current_plugin, task_options

    t0 = time.perf_counter()
    started = time.time()  # wall clock, to tell the outputs this task committed
    row = SceneOutcome(job.scene, "failed", worker=get_worker().address)
    try:
        plugin = current_plugin()
        options = task_options(job.options)  # the kernels' threads: the worker's, not every core
        reporter = Reporter(should_stop=_stop_flag(stop_name))
        reporter.check()  # a batch cancelled before this task started: no file is opened
        enhancer = None
        if options.enhancer != "none":
            enhancer = plugin.enhancer(options.model, options.device)
        result = detect(
            job.input,
            job.output,
            options,
            reporter,
            mask_output=job.mask,
            threshold_method=job.threshold_method,
            threshold_value=job.threshold_value,
            enhancer=enhancer,
        )
        row.device = result.device
        write_record(job, result.device, time.perf_counter() - t0, options.workers)
        row.status, row.output = "ok", job.output
    except Cancelled:
        row.status, row.error = "cancelled", _cancelled_text(job, started)
    except BandIndexError as exc:  # a summary row is read by people: bands count from 1
        row.error = first_line(exc.one_based())
    except FersError as exc:
        row.error = first_line(exc)
    except MemoryError:
        row.error = "out of memory on the worker (lower --memory-mb, or give workers more memory)"
    except Exception as exc:  # noqa: BLE001 - any other failure is this scene's, reported in one line
        row.error = f"{type(exc).__name__}: {first_line(exc)}"
    row.seconds = round(time.perf_counter() - t0, 3)
    return asdict(row)


def _stop_flag(name: Optional[str]):
    """A ``should_stop`` callable reading the batch's stop Event at most every STOP_POLL_S."""
    if name is None:
        return None
    from distributed import Event

    event = Event(name)
    polled = {"at": -1e9}
    stopped = {"stop": False}

    def should_stop() -> bool:
        now = time.monotonic()
        if not stopped["stop"] and now - polled["at"] >= STOP_POLL_S:
            polled["at"] = now
            stopped["stop"] = bool(event.is_set())
        return stopped["stop"]

    return should_stop


# -- the batch (client side) ---------------------------------------------------------------------
def run_batch(
    inputs: Sequence,
    out_dir,
    options: Optional[DetectOptions] = None,
    *,
    scheduler: Optional[str] = None,
    workers: Optional[int] = None,
    client=None,
    overwrite: bool = False,
    mask: bool = False,
    threshold_method: Optional[str] = None,
    threshold_value: Optional[float] = None,
    split: bool = False,
    blocks_per_task: Optional[int] = None,
    reporter: Reporter = SILENT,
) -> BatchResult:
    """Detect anomalies in every scene of ``inputs``, writing ``<scene>_score.tif`` to ``out_dir``.

    Runs on ``client`` when given, else on the scheduler at ``scheduler``, else on a LocalCluster
    of ``workers`` processes (default: one per core). ``split=True`` runs the scenes one after
    another, each split in row blocks over all workers (``cluster.split``: for scenes larger than
    one worker), instead of one task per scene. Scenes whose outputs are complete are skipped
    unless ``overwrite``. ``reporter.step`` gets the fraction of scenes done; its log gets one line
    per scene. Returns the summary; a failed scene is in it, not raised.
    """
    t0 = time.perf_counter()
    options = options or DetectOptions()
    jobs = plan_jobs(inputs, out_dir, options, mask, threshold_method, threshold_value, reporter)
    folder = Path(out_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {folder} ({exc.strerror or exc})") from None
    with BatchLock(folder):
        guard_batch(jobs, folder, reporter)
        return _run_locked(
            jobs, folder, client, scheduler, workers, overwrite, split, blocks_per_task, reporter, t0
        )


def _run_locked(
    jobs: List[SceneJob],
    folder: Path,
    client,
    scheduler,
    workers,
    overwrite: bool,
    split: bool,
    blocks_per_task: Optional[int],
    reporter: Reporter,
    t0: float,
) -> BatchResult:
    """``run_batch`` once the folder is this batch's."""
    started = time.time()  # wall clock, to tell this batch's committed outputs from older ones
    outcomes: Dict[int, SceneOutcome] = {}
    todo: List[SceneJob] = []
    for job in jobs:
        if not overwrite and is_complete(job):
            outcomes[job.index] = SceneOutcome(
                job.scene, "skipped", output=job.output, error="output complete from an earlier run"
            )
        else:
            todo.append(job)
    if outcomes:
        reporter.info(
            f"{len(outcomes)} of {len(jobs)} scenes already complete: skipped (--overwrite redoes them)"
        )
    workers_seen = 0
    interrupted: Optional[BaseException] = None
    try:
        if todo:
            if client is not None:
                workers_seen = _run_on(client, todo, outcomes, len(jobs), split, blocks_per_task, reporter)
            else:
                from .connect import cluster_client

                with cluster_client(scheduler, workers, threads=jobs[0].options.workers) as own:
                    workers_seen = _run_on(own, todo, outcomes, len(jobs), split, blocks_per_task, reporter)
    except (Cancelled, KeyboardInterrupt) as exc:
        interrupted = exc
    finally:
        # no task of this batch runs any more (or its cluster is gone): what a dead worker left
        swept = sweep_stale_partials(folder)
        if swept:
            reporter.info(f"removed {len(swept)} partial file(s) left by interrupted workers")
    for job in jobs:  # whatever never reported back
        outcomes.setdefault(job.index, _unreported(job, started))
    ordered = [outcomes[job.index] for job in jobs]
    csv_path, json_path = write_summary(folder, ordered, workers_seen, time.perf_counter() - t0)
    result = BatchResult(ordered, csv_path, json_path, time.perf_counter() - t0, workers_seen)
    if interrupted is not None:
        raise interrupted
    return result


def _run_on(
    client,
    todo: List[SceneJob],
    outcomes: Dict[int, SceneOutcome],
    total: int,
    split: bool,
    blocks_per_task: Optional[int],
    reporter: Reporter,
) -> int:
    """Run ``todo`` on ``client``, filling ``outcomes``; returns the number of workers."""
    workers = len(client.scheduler_info().get("workers", {}))
    reporter.info(f"{len(todo)} scene(s) on {workers} Dask worker(s)")
    if split:
        _run_split(client, todo, outcomes, total, blocks_per_task, reporter)
    else:
        _run_tasks(client, todo, outcomes, total, reporter)
    return workers


def _run_tasks(
    client, todo: List[SceneJob], outcomes: Dict[int, SceneOutcome], total: int, reporter: Reporter
) -> None:
    """One task per scene; results in completion order; a stop flag for cancel."""
    from distributed import Event, wait

    stop_name = f"fers-batch-stop-{uuid.uuid4().hex}"
    stop = Event(stop_name, client=client)
    futures = {
        client.submit(
            detect_task, job, stop_name, key=f"fers-detect-{job.index}-{stop_name[-8:]}", pure=False
        ): job
        for job in todo
    }
    pending = set(futures)
    try:
        while pending:
            try:
                with client.as_current():
                    done, pending = wait(pending, timeout=CLIENT_POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                reporter.check()
                continue
            for future in done:
                job = futures[future]
                outcomes[job.index] = _outcome(future, job)
                _say(reporter, outcomes[job.index])
            reporter.step(len(outcomes) / total)
    except (Cancelled, KeyboardInterrupt):
        stop.set()
        with client.as_current():
            _drain(pending, futures, outcomes)
        client.cancel(list(pending), force=True)
        raise


def _drain(pending: set, futures: Dict, outcomes: Dict[int, SceneOutcome]) -> None:
    """Wait (at most STOP_GRACE_S) for the tasks to see the stop flag and end through the writer's
    cleanup; keep the rows of those that still finished."""
    from distributed import wait

    try:
        done, _ = wait(pending, timeout=STOP_GRACE_S)
    except TimeoutError:
        done = {f for f in pending if f.done()}
    for future in done:
        job = futures[future]
        outcomes[job.index] = _outcome(future, job)
        pending.discard(future)


def _committed_since(path: str, started: float) -> bool:
    """Whether ``path`` was committed at or after ``started`` (wall clock). Outputs are committed
    atomically, so such a file is whole."""
    try:
        return os.stat(path).st_mtime >= started
    except OSError:
        return False


def _cancelled_text(job: SceneJob, started: float) -> str:
    """What a cancelled scene's row says was left: its score may already be committed when the
    stop came while the mask was being written."""
    if job.mask and _committed_since(job.output, started):
        return "cancelled while writing the mask; the score was written, the mask was not"
    return "cancelled before it finished; no output written"


def _unreported(job: SceneJob, started: float) -> SceneOutcome:
    """The row of a scene whose task never reported back (the batch was stopped, or its worker
    went with it). A score (and mask, when asked for) that this batch committed is whole: the
    scene finished just as the stop came, and its row says so; no record is written for it, so a
    rerun redoes it."""
    outputs = [job.output] + ([job.mask] if job.mask else [])
    if all(_committed_since(path, started) for path in outputs):
        return SceneOutcome(
            job.scene, "ok", output=job.output, error="finished as the batch was stopped (no record kept)"
        )
    return SceneOutcome(job.scene, "cancelled", error="not run: the batch was stopped")


def _outcome(future, job: SceneJob) -> SceneOutcome:
    """The task's own row, or a row saying how the task itself failed (its worker died)."""
    if future.status == "finished":
        return SceneOutcome(**future.result())
    try:
        exc = future.exception()
    except Exception as err:  # noqa: BLE001 - cancelled futures raise here
        exc = err
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):
        text = (
            "its worker process died on every try (killed, or out of memory); "
            "lower --memory-mb or give workers more memory"
        )
    else:
        text = f"{type(exc).__name__}: {first_line(exc)}"
    return SceneOutcome(job.scene, "failed", error=text)


def _run_split(
    client,
    todo: List[SceneJob],
    outcomes: Dict[int, SceneOutcome],
    total: int,
    blocks_per_task: Optional[int],
    reporter: Reporter,
) -> None:
    """Scenes one after another, each split in row blocks over every worker."""
    from .split import detect_split

    done = len(outcomes)
    for job in todo:
        t0 = time.perf_counter()
        row = SceneOutcome(job.scene, "failed", worker="all")
        stage = reporter.stage(done / total, (done + 1) / total)
        try:
            scene_reporter = stage.replace(on_info=None, on_warning=None)  # its progress range, no messages
            result = detect_split(
                job.input,
                job.output,
                job.options,
                client,
                blocks_per_task=blocks_per_task,
                reporter=scene_reporter,
                mask_output=job.mask,
                threshold_method=job.threshold_method,
                threshold_value=job.threshold_value,
            )
            row.device = result.device
            write_record(job, result.device, time.perf_counter() - t0)
            row.status, row.output = "ok", job.output
        except Cancelled:
            raise
        except BandIndexError as exc:
            row.error = first_line(exc.one_based())
        except FersError as exc:
            row.error = first_line(exc)
        except MemoryError:
            row.error = "out of memory"
        except Exception as exc:  # noqa: BLE001 - this scene's failure, reported in one line
            row.error = f"{type(exc).__name__}: {first_line(exc)}"
        row.seconds = round(time.perf_counter() - t0, 3)
        outcomes[job.index] = row
        _say(reporter, row)
        done += 1
        reporter.step(done / total)


def _say(reporter: Reporter, row: SceneOutcome) -> None:
    if row.status == "ok":
        reporter.info(f"ok      {row.scene} ({row.seconds:.1f} s, {row.device})")
    else:
        reporter.warning(f"{row.status}  {row.scene}: {row.error}")


def write_summary(out_dir: Path, outcomes: List[SceneOutcome], workers: int, seconds: float):
    """``fers-batch-summary.csv`` and ``.json`` in ``out_dir``; returns both paths."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in outcomes:
        writer.writerow(asdict(row))
    csv_path = out_dir / f"{SUMMARY_NAME}.csv"
    json_path = out_dir / f"{SUMMARY_NAME}.json"
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("ok", "skipped", "failed", "cancelled")}
    doc = {
        "fers": __version__,
        "workers": workers,
        "seconds": round(seconds, 3),
        "counts": counts,
        "scenes": [asdict(o) for o in outcomes],
    }
    write_text(csv_path, buf.getvalue())
    write_text(json_path, json.dumps(doc, indent=2) + "\n")
    return csv_path, json_path
