"""One scene split in row blocks over the workers of a Dask cluster.

The same per-block engine calls as ``pipeline.detect``, distributed:

* every task opens the scene itself and reads only its own rows (plus the context rows its
  windows need), so no part of the cube crosses the network; only statistics and score rows do;
* the enhancers' input fit (dead bands, band matrix, scene-wide normalisation) is a first-pass
  gather: each block gives its part of the pipeline's own position-based pixel sample
  (``nets.inputs.block_sample``), and the client fits on them, in block order, exactly as the
  single-process pass does (``nets.inputs.fit_input``);
* global RX is a tree reduction of per-block (count, mean, centred scatter) accumulators
  (``BackgroundStats.merge``, Chan's formula in float64), the covariance is factored once on the
  client, then every block is scored by a map over blocks;
* local RX, CRD and the enhancers' receptive field are overlapped blocks: a task scoring rows
  [r0, r1) reads ``halo_rows`` around them (and the enhanced source adds the networks' halo), so
  block borders never show;
* the client writes the score rows in order through the one atomic writer.

Tasks work on the pipeline's own row blocks (``options.block_rows``, or the memory budget's), a
group of consecutive blocks per task: any grouping gives every block the same inputs, tiles and
calls as ``detect``, so the scores are the single-process scores (bit for bit at equal BLAS
thread counts; the tree reduction only merges the same accumulators in another order). Blocks of
another height would change the enhancers' float32 tiles, which the ill-conditioned covariance of
real scenes turns into relative differences of up to ~1e-4 on a few pixels (the pipeline shows the
same between two block sizes). Columns are never split: local RX scores full-width rows.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..choices import Detector
from ..detectors import BackgroundStats, RxScorer
from ..detectors.crd import crd_block
from ..detectors.crd_rx import crd_rx_block
from ..detectors.device import choose_device
from ..detectors.lrx import choose_covariance, local_rx_block
from ..detectors.rx import whitener_from_cov
from ..detectors.threshold import check_threshold
from ..detectors.windows import halo_rows
from ..errors import Cancelled, InputError
from ..io import RasterWriter, iter_row_blocks, open_scene
from ..memory import MemoryPlan
from ..nets.inputs import block_sample, fit_input, grid_stride
from ..pipeline import (
    DetectOptions,
    DetectResult,
    _block_rows,
    _collecting,
    _plan,
    _SceneScores,
    _ScoreSink,
    _subset_info,
    guard_detect_outputs,
    scene_bands,
    source_tags,
    threshold_raster,
)
from ..progress import SILENT, Reporter
from ..sources import BlockSource, EnhancedSource, SceneSource
from .worker import portable_errors, task_options

#: Accumulators merged per task of the tree reduction.
SPLIT_EVERY = 8
#: Tasks per worker when the caller does not choose the grouping (balance against overhead).
TASKS_PER_WORKER = 4

Blocks = List[Tuple[int, int]]  # the pipeline's row blocks [row0, row1) one task works on
#: Seconds between two cancel checks of the client while it waits for a block.
CLIENT_POLL_S = 0.25


@dataclass(frozen=True)
class SplitPlan:
    """What every block task needs to rebuild the pipeline's source for its rows."""

    input: str
    options: DetectOptions
    bands: Tuple[int, ...]
    matrix: Optional[
        np.ndarray
    ]  # onto the model's bands (dead bands repaired once fitted); None without enhancer
    height: int
    width: int
    count: int
    variants: Tuple[str, ...]
    halo: int
    device: str
    crs: Optional[str]
    transform: Optional[tuple]
    block_rows: int  # the single-process block size under the memory budget
    covariance: Optional[str]  # local RX: 'ring' or 'scene'
    stride: int  # input sample stride (every stride-th pixel in scene order)
    grid: Optional[Any]  # the model's input side (nets.inputs.Grid); None without enhancer
    wavelengths: Optional[np.ndarray] = None  # of the selected bands, for the band matrix
    messages: Tuple[str, ...] = field(default=())

    @property
    def enhanced(self) -> bool:
        return self.matrix is not None


# -- tasks (worker side) -------------------------------------------------------------------------
@portable_errors
def plan_task(input_path: str, options: DetectOptions) -> SplitPlan:
    """Open the scene on a worker (the client may have no torch) and decide what ``detect`` would:
    bands, resampling, device, variants, covariance mode, block size."""
    messages: List[str] = []
    rep = _collecting(SILENT, messages)
    with open_scene(input_path, options.reader) as scene:
        info = scene.info
        bands = scene_bands(scene, input_path, options, rep)
        matrix, stride, grid = None, 1, None
        sub_info = _subset_info(info, bands)
        if options.enhancer == "none":
            device = choose_device(options.device, rep)
            source: BlockSource = SceneSource(scene, bands)
        else:
            enhancer = _enhancer(options, rep)
            grid = enhancer.grid
            # the provisional matrix sizes the plan; the client's fit repairs dead bands in it
            matrix, _ = enhancer.input_matrix(sub_info, band_mode=options.band_mode)
            stride = grid_stride(grid, info.height, info.width)
            source = EnhancedSource(
                SceneSource(scene, bands, matrix),
                enhancer,
                grid.new_normaliser(),
                options.enhancer,
                options.fusion,
            )
            device = enhancer.device
        covariance = None
        if options.detector == "lrx":
            choice = choose_covariance(options.local_covariance, options.inner, options.outer, source.count)
            covariance = choice.mode
            say = rep.warning if choice.singular else rep.info
            say(f"local RX covariance: {covariance} ({choice.reason})")
        block_rows = options.block_rows or _block_rows(source, len(bands), _plan(options, source))
        transform = None if info.transform is None else tuple(info.transform)
        return SplitPlan(
            str(input_path),
            options,
            tuple(bands),
            matrix,
            info.height,
            info.width,
            source.count,
            tuple(source.variants),
            int(getattr(source, "halo", 0)),
            device,
            info.crs,
            transform,
            block_rows,
            covariance,
            stride,
            grid,
            sub_info.wavelengths,
            tuple(messages),
        )


@portable_errors
def sample_task(plan: SplitPlan, blocks: Blocks):
    """The blocks' parts of the input sample (raw selected bands), in block order."""
    with open_scene(plan.input, plan.options.reader) as scene:
        raw = SceneSource(scene, plan.bands)
        parts = []
        for r0, r1 in blocks:
            data, valid = raw.read(r0, r1)
            parts.append(block_sample(data["x"], valid, r0, plan.width, plan.stride))
        return parts


@portable_errors
def read_task(plan: SplitPlan, normaliser, blocks: Blocks) -> List:
    """The source's (variants, valid) of each block, kept in the worker's memory for both passes."""
    with open_scene(plan.input, plan.options.reader) as scene:
        source = _source(plan, scene, normaliser)
        return [source.read(r0, r1) for r0, r1 in blocks]


def _blocks_of(plan: SplitPlan, normaliser, blocks: Blocks, held: Optional[List]) -> Iterator:
    """Each block's (variants, valid): from ``read_task``'s result when held, else read here."""
    if held is not None:
        yield from held
        return
    with open_scene(plan.input, plan.options.reader) as scene:
        source = _source(plan, scene, normaliser)
        for r0, r1 in blocks:
            yield source.read(r0, r1)


@portable_errors
def stats_task(
    plan: SplitPlan, normaliser, blocks: Blocks, held: Optional[List] = None
) -> Dict[str, BackgroundStats]:
    """Each variant's (count, mean, scatter) over the blocks, accumulated as ``detect`` does."""
    stats = {v: BackgroundStats(plan.count, device=_stats_device(plan)) for v in plan.variants}
    for data, valid in _blocks_of(plan, normaliser, blocks, held):
        for v in plan.variants:
            stats[v].update(data[v], valid)
    return stats


def merge_task(*parts: Dict[str, BackgroundStats]) -> Dict[str, BackgroundStats]:
    """One node of the tree reduction (into fresh accumulators: inputs stay as the scheduler
    stored them, so a re-run of this task gives the same result)."""
    merged = {v: BackgroundStats(s.bands) for v, s in parts[0].items()}
    for part in parts:
        for v, s in part.items():
            merged[v].merge(s)
    return merged


@portable_errors
def rx_task(
    plan: SplitPlan, normaliser, whiteners, blocks: Blocks, held: Optional[List] = None
) -> Dict[str, np.ndarray]:
    """Global RX scores of the blocks' rows against the scene's statistics."""
    device = _stats_device(plan)
    scorers = {v: RxScorer(mean, whiten, device=device) for v, (mean, whiten) in whiteners.items()}
    parts: Dict[str, List[np.ndarray]] = {v: [] for v in plan.variants}
    for data, valid in _blocks_of(plan, normaliser, blocks, held):
        for v in plan.variants:
            parts[v].append(scorers[v](data[v], valid))
    return {v: np.concatenate(p) for v, p in parts.items()}


@portable_errors
def lrx_task(plan: SplitPlan, normaliser, covariances, blocks: Blocks, held=None) -> Dict[str, np.ndarray]:
    """Local RX scores of the blocks' rows, each block read with the rows its windows reach."""
    options = task_options(plan.options)
    workers = options.workers
    covariances = covariances or {}
    return _windowed_scores(
        plan,
        normaliser,
        blocks,
        lambda v, data, valid, h0, r0, r1: local_rx_block(
            data,
            valid,
            h0,
            r0,
            r1,
            plan.height,
            inner=options.inner,
            outer=options.outer,
            cov=covariances.get(v),
            workers=workers,
        ),
    )


@portable_errors
def crd_task(plan: SplitPlan, normaliser, whiteners, blocks: Blocks, held=None) -> Dict[str, np.ndarray]:
    """CRD scores of the blocks' rows, every pixel scored from its ring; with ``whiteners`` (the
    scene's RX statistics, per variant) CRD+RX: each block's CRD fused with its global RX scores
    (``detectors.crd_rx``)."""
    options = task_options(plan.options)
    device = _stats_device(plan)
    scorers = (
        None
        if whiteners is None
        else {v: RxScorer(mean, whiten, device=device) for v, (mean, whiten) in whiteners.items()}
    )
    windows = {
        "inner": options.inner,
        "outer": options.outer,
        "lam": options.crd_lambda,
        "workers": options.workers,
    }

    def score(v, data, valid, h0, r0, r1):
        rows = (data, valid, h0, r0, r1, plan.height)
        if scorers is None:
            return crd_block(*rows, **windows)
        return crd_rx_block(*rows, scorers[v], **windows)

    return _windowed_scores(plan, normaliser, blocks, score, centred=True)


def _windowed_scores(
    plan: SplitPlan, normaliser, blocks: Blocks, score, centred: bool = False
) -> Dict[str, np.ndarray]:
    """``score(variant, block, valid, block_row0, core_row0, core_row1)`` of each block, read
    with the rows its windows reach (shifted inside the image, or ``centred``:
    ``windows.halo_rows``), concatenated per variant."""
    parts: Dict[str, List[np.ndarray]] = {v: [] for v in plan.variants}
    with open_scene(plan.input, plan.options.reader) as scene:
        source = _source(plan, scene, normaliser)
        for r0, r1 in blocks:
            h0, h1 = halo_rows(r0, r1, plan.height, plan.options.outer, centred)
            data, valid = source.read(h0, h1)
            for v in plan.variants:
                parts[v].append(score(v, data[v], valid, h0, r0, r1))
    return {v: np.concatenate(p) for v, p in parts.items()}


def _source(plan: SplitPlan, scene, normaliser) -> BlockSource:
    """The pipeline's source for this scene, built as ``detect`` builds it, with the scene-wide
    normaliser fitted by the client."""
    if not plan.enhanced:
        return SceneSource(scene, plan.bands)
    enhancer = _enhancer(plan.options, SILENT)
    return EnhancedSource(
        SceneSource(scene, plan.bands, plan.matrix),
        enhancer,
        normaliser,
        plan.options.enhancer,
        plan.options.fusion,
    )


def _enhancer(options: DetectOptions, rep: Reporter):
    """This worker's copy of the model (loaded once per worker), logging to ``rep``."""
    from .worker import current_plugin

    enhancer = copy.copy(current_plugin().enhancer(options.model, options.device))
    enhancer.reporter = rep
    return enhancer


def _stats_device(plan: SplitPlan) -> Optional[str]:
    return None if plan.device == "cpu" else plan.device


# -- the client side -----------------------------------------------------------------------------
def detect_split(
    input_path,
    output_path,
    options: Optional[DetectOptions] = None,
    client=None,
    *,
    blocks_per_task: Optional[int] = None,
    reporter: Reporter = SILENT,
    mask_output=None,
    threshold_method: Optional[str] = None,
    threshold_value: Optional[float] = None,
    scheduler: Optional[str] = None,
    workers: Optional[int] = None,
) -> DetectResult:
    """``pipeline.detect`` with the scene's row blocks spread over a cluster, ``blocks_per_task``
    consecutive blocks per task (default: about TASKS_PER_WORKER tasks per worker).

    Uses ``client`` when given, else connects to ``scheduler`` or starts a LocalCluster of
    ``workers`` processes for this call. The block height is the pipeline's:
    ``options.block_rows``, or what ``options.memory_mb`` allows, which bounds each worker's memory.
    Before any work (and before a cluster is started) it checks what ``detect`` checks: the
    options, the threshold request and the outputs (``pipeline.guard_detect_outputs``).
    """
    options = options or DetectOptions()
    options.validate()
    threshold_method = threshold_method or "percentile"
    if mask_output is not None:
        threshold_value = check_threshold(threshold_method, threshold_value)
    if blocks_per_task is not None and blocks_per_task < 1:
        raise InputError(f"a task needs at least 1 block, got {blocks_per_task}")
    messages: List[str] = []
    rep = _collecting(reporter, messages)
    # the client writes: it opens the scene for the output guard, the output's grid (a product's
    # map view) and the writer's copy of the input's metadata
    with open_scene(input_path, options.reader) as scene:
        guard_detect_outputs(scene, output_path, mask_output, options, rep)
        if client is not None:
            return _split_on(
                client,
                scene,
                input_path,
                output_path,
                options,
                blocks_per_task,
                rep,
                messages,
                mask_output,
                threshold_method,
                threshold_value,
            )
        from .connect import cluster_client

        with cluster_client(scheduler, workers, threads=options.workers) as own:
            return _split_on(
                own,
                scene,
                input_path,
                output_path,
                options,
                blocks_per_task,
                rep,
                messages,
                mask_output,
                threshold_method,
                threshold_value,
            )


def _split_on(
    client,
    scene,
    input_path,
    output_path,
    options: DetectOptions,
    blocks_per_task: Optional[int],
    rep: Reporter,
    messages: List[str],
    mask_output,
    threshold_method: str,
    threshold_value: Optional[float],
) -> DetectResult:
    """``detect_split`` once the outputs are guarded, on ``client``."""
    t0 = time.perf_counter()
    futures: List = []
    try:
        plan: SplitPlan = _result(client.submit(plan_task, str(input_path), options, pure=False), rep)
        for line in plan.messages:
            (rep.warning if line.startswith("WARNING: ") else rep.info)(line.removeprefix("WARNING: "))
        blocks = [(r0, r1) for r0, r1, _, _ in iter_row_blocks(plan.height, plan.block_rows)]
        per = blocks_per_task or -(-len(blocks) // (TASKS_PER_WORKER * _worker_count(client)))
        groups = [blocks[i : i + per] for i in range(0, len(blocks), per)]
        rep.info(
            f"detector {options.detector}, enhancer {options.enhancer}, device {plan.device}, "
            f"block {plan.block_rows} rows; {len(blocks)} blocks in {len(groups)} tasks over the "
            "cluster"
        )
        normaliser = None
        if plan.enhanced:
            plan, normaliser = _fit_input(client, plan, groups, futures, rep.stage(0.0, 0.1))
        start = 0.1 if plan.enhanced else 0.0
        view = scene.map_view
        height, width, crs, transform = _grid(plan, view)
        with RasterWriter(
            output_path,
            height,
            width,
            count=1,
            dtype="float32",
            crs=crs,
            transform=transform,
            nodata=float("nan"),
            band_descriptions=["anomaly score"],
            like_input=scene,
            tags=source_tags(input_path),
        ) as writer:
            _write_scores(
                client, plan, view, writer, normaliser, groups, futures, rep, start, Path(output_path)
            )
    except (Cancelled, KeyboardInterrupt):
        client.cancel(futures, force=True)
        raise
    threshold = None
    if mask_output is not None:
        threshold = threshold_raster(
            output_path, mask_output, threshold_method, threshold_value, rep.stage(0.97, 1.0)
        )
    rep.report(1.0)  # the outputs are committed: a stop that comes now does not undo them
    seconds = time.perf_counter() - t0
    rep.info(f"done in {seconds:.2f} s")
    return DetectResult(
        Path(output_path),
        None if mask_output is None else Path(mask_output),
        plan.device,
        threshold,
        seconds,
        height,
        width,
        plan.count,
        messages,
    )


def _fits_cluster_memory(client, plan: SplitPlan) -> bool:
    """True when the source's blocks (every variant, float32) fit in half the workers' memory
    limits together: the same rule as ``EnhancedSource``'s cache, at the cluster's scale."""
    limits = [w.get("memory_limit") or 0 for w in client.scheduler_info().get("workers", {}).values()]
    if not limits or not all(limits):
        return False  # a worker without a limit: its memory is unknown
    need = plan.height * plan.width * (plan.count * 4 * len(plan.variants) + 1)
    return need <= sum(limits) // 2


def _write_scores(
    client,
    plan: SplitPlan,
    view,
    writer,
    normaliser,
    groups: List[Blocks],
    futures: List,
    rep: Reporter,
    start: float,
    output: Path,
) -> None:
    """The statistics pass (when the detector has one) and the scoring pass, written in block order."""
    options = plan.options
    target = writer if view is None else _SceneScores(plan.height, plan.width)
    with _ScoreSink(
        plan, target, plan.block_rows, MemoryPlan.for_run(options.memory_mb).working // 4, output
    ) as sink:
        plan_f, norm_f = _broadcast(client, plan), _broadcast(client, normaliser)
        held: List = [None] * len(groups)
        if options.detector == "rx" and _fits_cluster_memory(client, plan):
            # both passes read the same blocks: read (and enhance) each once, on the worker
            # that then keeps it; the scheduler runs both passes' tasks where the data is
            held = [client.submit(read_task, plan_f, norm_f, group, pure=False) for group in groups]
            futures.extend(held)
            rep.info("blocks kept in the workers' memory between the two passes")
        stats: Dict[str, BackgroundStats] = {}
        global_stats = options.detector in (Detector.RX, Detector.CRD_RX)
        if global_stats or plan.covariance == "scene":
            stats = _reduce_stats(
                client, plan_f, norm_f, groups, held, futures, rep.stage(start, start + 0.3)
            )
            start += 0.3
        if global_stats:
            whiteners = {}
            for v, s in stats.items():
                whiten, info = whitener_from_cov(s.covariance())
                whiteners[v] = (s.mean, whiten)
                rep.info(info.describe())
            task = rx_task if options.detector == Detector.RX else crd_task
            arg = _broadcast(client, whiteners)
        elif options.detector == Detector.CRD:
            arg, task = None, crd_task
        else:
            covs = {v: s.covariance() for v, s in stats.items()}
            arg, task = _broadcast(client, covs), lrx_task
        scored = [
            client.submit(task, plan_f, norm_f, arg, group, data, pure=False)
            for group, data in zip(groups, held)
        ]
        futures.extend(scored)
        step = rep.stage(start, 0.97)
        for i, (group, future) in enumerate(zip(groups, scored)):
            top = group[0][0]
            for v, scores in _result(future, rep).items():
                for r0, r1 in group:  # block by block, as detect writes them
                    sink.put(v, r0, scores[r0 - top : r1 - top])
            future.release()
            if held[i] is not None:
                held[i].release()
            step.step((i + 1) / len(groups))
    if view is not None:
        view.write(target.scores, writer, plan.block_rows)


def _grid(plan: SplitPlan, view) -> Tuple:
    """(height, width, crs, transform) of the output: the scene's, or its product's map grid."""
    if view is None:
        return plan.height, plan.width, plan.crs, plan.transform
    return view.height, view.width, view.crs, view.transform


def _worker_count(client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def _broadcast(client, value):
    """``value`` copied once to every worker (a future tasks take as an argument); None stays None."""
    if value is None:
        return None
    # in a list: a dict would be scattered per key; hash=False: a key of its own, never one that an
    # earlier identical value (a previous call on the same scene) is about to release
    return client.scatter([value], broadcast=True, hash=False)[0]


def _fit_input(
    client, plan: SplitPlan, groups: List[Blocks], futures: List, rep: Reporter
) -> Tuple[SplitPlan, object]:
    """Dead bands, the band matrix and the fitted normaliser from every block's part of the
    sample, gathered in block order as ``detect`` reads them; the plan comes back with the matrix."""
    from dataclasses import replace

    parts = [client.submit(sample_task, plan, group, pure=False) for group in groups]
    futures.extend(parts)
    sample: List[np.ndarray] = []
    for i, future in enumerate(parts):
        sample.extend(_result(future, rep))
        future.release()
        rep.step((i + 1) / len(groups))
    joined = np.concatenate(sample, axis=1) if sample else np.zeros((len(plan.bands), 0), np.float32)
    assert plan.grid is not None, "the input is fitted only for an enhancer"
    fitted = fit_input(plan.grid, len(plan.bands), plan.wavelengths, joined, plan.options.band_mode, rep)
    _ = fitted.normaliser.params  # fits lo/hi here, once, instead of on every worker
    return replace(plan, matrix=fitted.matrix), fitted.normaliser


def _reduce_stats(
    client, plan_f, norm_f, groups: List[Blocks], held: List, futures: List, rep: Reporter
) -> Dict[str, BackgroundStats]:
    """Per-task statistics merged in a tree of SPLIT_EVERY-way merges; checked like ``detect``."""
    level = [
        client.submit(stats_task, plan_f, norm_f, group, data, pure=False)
        for group, data in zip(groups, held)
    ]
    futures.extend(level)
    while len(level) > 1:
        level = [
            client.submit(merge_task, *level[i : i + SPLIT_EVERY], pure=False)
            for i in range(0, len(level), SPLIT_EVERY)
        ]
        futures.extend(level)
    stats = _result(level[0], rep)
    rep.step(1.0)
    for s in stats.values():
        if s.count < 2:
            raise InputError(
                "the raster has no valid pixel (all nodata or NaN)"
                if s.count == 0
                else "the raster has only one valid pixel: no background to compare with"
            )
    return stats


def _result(future, rep: Reporter):
    """The future's result, checking for cancel while it is computed."""
    from distributed import wait

    while True:
        try:
            with future.client.as_current():
                wait([future], timeout=CLIENT_POLL_S)
            break
        except TimeoutError:
            rep.check()
    return future.result()
