"""The engine's front door: detect, threshold and evaluate rasters, streamed block by block.

Every entry point takes paths and a ``Reporter`` and returns a small result object, so the CLI,
the QGIS algorithms and plain Python callers share one implementation. Scores are written through
the one atomic writer, so an error or a cancel never leaves a partial output.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import hints
from .choices import (
    DEFAULT_CRD_LAMBDA,
    DEFAULT_DETECTOR,
    DEFAULT_ENHANCER,
    BandMode,
    Detector,
    Device,
    EnhancerMode,
    Fusion,
    LocalCovariance,
)
from .detectors.crd import check_lambda, crd_block
from .detectors.crd_rx import crd_rx_block
from .detectors.device import choose_device
from .detectors.lrx import choose_covariance, local_rx_block
from .detectors.parallel import resolve_workers
from .detectors.rx import rx_scorers, stream_rx
from .detectors.stats import stream_statistics
from .detectors.threshold import (
    MASK_NODATA,
    check_threshold,
    threshold_mask,
    threshold_value as _threshold_value,
)
from .detectors.windows import halo_rows
from .errors import InputError, ModelError
from .io import RasterWriter, ReaderOptions, iter_row_blocks, open_scene, read_ground_truth, select_bands
from .io.checks import PROBE_BYTES, check_band_count, check_scene, drop_empty_bands
from .io.gdal_runtime import limit_gdal_cache
from .io.guard import Output, guard_outputs, partial_prefix
from .io.scene import BandIndices, Scene
from .memory import MemoryPlan, activation_bytes_per_pixel
from .metrics import evaluate, finite_range, normalise, roc_curve
from .progress import SILENT, Reporter
from .sources import ENHANCER_TILE, BlockSource, EnhancedSource, ReadAhead, SceneSource

__all__ = [
    "DetectOptions",
    "DetectResult",
    "detect",
    "evaluate_rasters",
    "hadamard",
    "scene_bands",
    "threshold_raster",
]

DEFAULT_MEMORY_MB = 1024
#: The smallest memory budget accepted (MiB); the plan's floors (GDAL's cache, one block) still apply.
MIN_MEMORY_MB = 1


@dataclass
class DetectOptions:
    """What to run. The defaults (``choices.DEFAULT_ENHANCER`` / ``DEFAULT_DETECTOR``): the
    spectral enhancer with CRD+RX (``choices`` says how they were chosen)."""

    detector: str = DEFAULT_DETECTOR
    inner: int = 3  # windowed detectors (lrx, crd, crd+rx): guard window
    outer: int = 15  # and outer window; the ring between them is each pixel's background
    local_covariance: str = "auto"  # local RX: "ring", "scene", or chosen by the ring's size
    crd_lambda: float = DEFAULT_CRD_LAMBDA  # CRD's (and CRD+RX's) distance-weighted regularisation
    bands: Optional[Sequence[int]] = None  # 0-based band indices
    wavelength_ranges: Optional[Sequence[Tuple[float, float]]] = None  # nm
    drop_bad_bands: bool = True
    drop_empty_bands: bool = True  # bands with no valid value (all NaN/nodata): drop, or refuse
    enhancer: str = DEFAULT_ENHANCER
    model: Optional[str] = None  # a bundled model name or a path; None = the default model
    band_mode: str = "resample"
    fusion: str = "sum"
    device: str = "auto"
    backend: Optional[str] = (
        None  # enhancers: None = the device policy (numpy on the CPU); "torch" forces torch
    )
    block_rows: Optional[int] = None
    memory_mb: int = DEFAULT_MEMORY_MB
    reader: ReaderOptions = field(default_factory=ReaderOptions)  # EMIT swath / AVIRIS north-up
    #: Threads for the windowed detectors' kernels; None = every core in this process's CPU
    #: affinity mask. Front ends with their own thread setting (QGIS) pass it here.
    workers: Optional[int] = None

    def validate(self) -> None:
        EnhancerMode.parse(self.enhancer, "enhancer")
        Fusion.parse(self.fusion, "fusion")
        Device.parse(self.device, "device")
        BandMode.parse(self.band_mode, "band mode")
        LocalCovariance.parse(self.local_covariance, "local RX covariance")
        detector = Detector.parse(self.detector, "detector")
        if detector.windowed:
            if self.inner < 1 or self.outer <= self.inner or self.inner % 2 == 0 or self.outer % 2 == 0:
                raise InputError(
                    f"{self.detector} windows must be odd with inner < outer, got "
                    f"inner={self.inner}, outer={self.outer}"
                )
        if detector.uses_crd:
            check_lambda(self.crd_lambda)
        resolve_workers(self.workers)
        if self.backend not in (None, "numpy", "torch"):
            raise InputError(f"unknown enhancer backend {self.backend!r}: choose numpy or torch")
        if self.block_rows is not None and self.block_rows < 1:
            raise InputError(f"block size must be at least 1 row, got {self.block_rows}")
        if self.memory_mb is None or self.memory_mb < MIN_MEMORY_MB:
            raise InputError(f"memory budget must be at least {MIN_MEMORY_MB} MiB, got {self.memory_mb}")


@dataclass
class DetectResult:
    """What a ``detect`` call wrote and found."""

    output: Path
    mask_output: Optional[Path]
    device: str
    threshold: Optional[float]
    seconds: float
    height: int
    width: int
    bands_used: int
    messages: List[str] = field(default_factory=list)


def detect(
    input_path,
    output_path,
    options: Optional[DetectOptions] = None,
    reporter: Reporter = SILENT,
    mask_output=None,
    threshold_method: Optional[str] = None,
    threshold_value: Optional[float] = None,
    enhancer=None,
) -> DetectResult:
    """Score every pixel of ``input_path`` and write a float32 anomaly map to ``output_path``.

    Everything that can be checked without the scores is checked before the first pass: the
    options, the threshold request, the outputs (``io.guard``), the model file, the scene's
    type and bands (``io.checks``; bands with no valid value are dropped and named).
    ``enhancer``: the model ``options.model`` already loaded on ``options.device`` (a cluster
    worker loads it once for all its scenes); None loads it here when the options need it.

    Args:
        input_path: the scene: any GDAL raster, an ENVI file or its ``.hdr``, a ``.mat`` cube or
            a sensor product (``io.open.open_scene``).
        output_path: the float32 GeoTIFF of scores to write (NaN where the input is invalid).
        options: detector, enhancer, device, memory budget...; None takes ``DetectOptions()``.
        reporter: progress, messages and cancel (``progress.Reporter``).
        mask_output: also write a uint8 anomaly mask here (1 anomaly, 0 background, 255 nodata).
        threshold_method: the mask's rule (``choices.ThresholdMethod``; None = percentile).
        threshold_value: the rule's value; None takes the method's own default.
        enhancer: an already loaded ``nets.enhancer.Enhancer`` for ``options.model``, or None.

    Returns:
        A ``DetectResult``: the paths written, the device used, the mask's threshold, the
        scene's size, the bands used and the messages the run reported.

    Raises:
        FersError: a subclass naming the problem (bad input, output or model, cancelled).
    """
    options = options or DetectOptions()
    options.validate()
    threshold_method = threshold_method or "percentile"
    if mask_output is not None:
        threshold_value = check_threshold(threshold_method, threshold_value)
    t0 = time.perf_counter()
    messages: List[str] = []
    rep = _collecting(reporter, messages)
    budget = MemoryPlan.for_run(options.memory_mb)  # refined once the source is known (_plan)
    with limit_gdal_cache(budget.gdal_cache) as gdal_cache, open_scene(input_path, options.reader) as scene:
        info = scene.info
        view = scene.map_view  # EMIT ortho grid, north-up AVIRIS: scores are moved onto it at the end
        guard_detect_outputs(scene, output_path, mask_output, options, rep)
        bands = scene_bands(
            scene, input_path, options, rep, probe_bytes=min(PROBE_BYTES, budget.working // 8)
        )
        source, device = _build_source(scene, bands, options, rep, enhancer)
        plan = _plan(options, source, scene)
        gdal_cache.set(plan.gdal_cache)
        if plan.read_cache:
            rep.info(
                f"GDAL cache {plan.read_cache / 2**20:.0f} MiB: one row of the file's "
                f"{plan.read_unit_rows}-row tiles, each decoded once per pass"
            )
        try:
            detector = Detector(options.detector)
            if detector.windowed and device != "cpu":
                rep.info(
                    "CRD runs on the CPU; the GPU serves the enhancers and global RX"
                    if detector == Detector.CRD_RX
                    else f"{options.detector} runs on the CPU; the GPU serves the enhancers"
                )
            workers = resolve_workers(options.workers)
            covariance = "auto"  # local RX only: decided just below
            if options.detector == "lrx":
                choice = choose_covariance(
                    options.local_covariance, options.inner, options.outer, source.count
                )
                covariance = choice.mode
                say = rep.warning if choice.singular else rep.info
                say(f"local RX covariance: {covariance} ({choice.reason})")
                if covariance == "ring":
                    rep.info(_windowed_engine("local RX", workers))
            elif detector.uses_crd:
                rep.info(f"CRD: windows {options.inner}/{options.outer}, lambda {options.crd_lambda:g}")
                rep.info(_windowed_engine("CRD", workers))
            block_rows = options.block_rows or _block_rows(source, len(bands), plan)
            if isinstance(source, EnhancedSource):
                source.tile = _enhancer_tile(source, block_rows, plan)
            rep.info(
                f"detector {options.detector}, enhancer {options.enhancer}, device {device}, "
                f"block {block_rows} rows"
            )
            grid = (
                (info.height, info.width, info.crs, info.transform)
                if view is None
                else (view.height, view.width, view.crs, view.transform)
            )
            with RasterWriter(
                output_path,
                grid[0],
                grid[1],
                count=1,
                dtype="float32",
                crs=grid[2],
                transform=grid[3],
                nodata=float("nan"),
                band_descriptions=["anomaly score"],
                like_input=scene,
                tags=source_tags(input_path),
            ) as writer:
                start = 0.0 if options.enhancer == "none" else 0.1  # the normalisation pass came first
                sink: Any = writer if view is None else _SceneScores(info.height, info.width)
                if options.detector == "rx":
                    _run_global_rx(
                        source,
                        block_rows,
                        sink,
                        rep.stage(start, 0.97),
                        None if device == "cpu" else device,
                        plan,
                        Path(output_path),
                    )
                elif options.detector == "lrx":
                    _run_local_rx(
                        source,
                        block_rows,
                        options.inner,
                        options.outer,
                        covariance,
                        sink,
                        rep.stage(start, 0.97),
                        plan,
                        Path(output_path),
                        workers,
                    )
                else:
                    _run_crd(
                        source,
                        block_rows,
                        options,
                        sink,
                        rep.stage(start, 0.97),
                        None if device == "cpu" else device,
                        plan,
                        Path(output_path),
                        workers,
                    )
                if view is not None:
                    view.write(sink.scores, writer, block_rows)
        finally:
            source.close()  # stops the read-ahead before the scene closes
    threshold = None
    if mask_output is not None:
        threshold = threshold_raster(
            output_path, mask_output, threshold_method, threshold_value, rep.stage(0.97, 1.0)
        )
    rep.report(1.0)  # the outputs are committed: a stop that comes now does not undo them
    seconds = time.perf_counter() - t0
    rep.info(f"done in {seconds:.2f} s")
    height, width = (info.height, info.width) if view is None else (view.height, view.width)
    return DetectResult(
        Path(output_path),
        None if mask_output is None else Path(mask_output),
        device,
        threshold,
        seconds,
        height,
        width,
        source.count,
        messages,
    )


def guard_detect_outputs(scene, output_path, mask_output, options: DetectOptions, rep: Reporter) -> None:
    """The output guard of a detect run (``io.guard``), before any work: the score raster and the
    mask against the open scene's files, the model's, and each other. ``detect`` and the
    cluster's ``detect_split`` both run exactly this."""
    guard_outputs(
        [
            Output.raster("score raster", output_path),
            None if mask_output is None else Output.raster("mask", mask_output),
        ],
        inputs=[scene, *model_files(options)],
        reporter=rep,
    )


def model_files(options: DetectOptions) -> List[Path]:
    """The model file the run will read (and its card beside it), so no output may replace them;
    a model path that does not resolve is refused here, before any work."""
    if options.enhancer == "none":
        return []
    from .nets.bundled import resolve_model_path

    try:
        path = resolve_model_path(options.model)
    except ModelError:
        if options.model and Path(options.model).expanduser().is_dir():
            raise ModelError(
                f"the model path {options.model} is a folder, not a model file (.safetensors)"
            ) from None
        raise
    return [path, path.with_suffix(".json")]


def scene_bands(
    scene, input_path, options: DetectOptions, rep: Reporter, probe_bytes: int = PROBE_BYTES
) -> np.ndarray:
    """The bands ``options`` select in an open scene, after the checks every detect run makes
    (``io.checks``): the scene's type, the selection's size, and bands with no valid value
    dropped and named (their probe reads at most ``probe_bytes`` per chunk)."""
    info, view = scene.info, scene.map_view
    check_scene(info)
    if (info.crs if view is None else view.crs) is None:
        rep.warning(f"{Path(input_path).name} has no CRS: the anomaly map will not be georeferenced")
    bands = select_bands(
        info,
        indices=options.bands,
        wavelength_ranges=options.wavelength_ranges,
        drop_bad_bands=options.drop_bad_bands,
    )
    check_band_count(info, bands)
    if info.product:
        rep.info(
            f"product: {info.product}"
            + "".join(f"; {n}" for n in info.notes)
            + (f"; {view.note}" if view is not None else "")
        )
    bands = drop_empty_bands(scene, bands, rep, drop=options.drop_empty_bands, probe_bytes=probe_bytes)
    rep.info(f"input {info.width} x {info.height} px, {info.count} bands; using {len(bands)} bands")
    return bands


def _collecting(reporter: Reporter, messages: List[str]) -> Reporter:
    """A reporter that also keeps every message, so results can carry the run's log."""

    def info(msg: str) -> None:
        messages.append(msg)
        reporter.info(msg)

    def warning(msg: str) -> None:
        messages.append("WARNING: " + msg)
        reporter.warning(msg)

    return reporter.replace(on_info=info, on_warning=warning)


def _build_source(
    scene, bands: BandIndices, options: DetectOptions, rep: Reporter, loaded=None
) -> Tuple[BlockSource, str]:
    """The raw band-selected source, or the enhanced one (model loaded, scene normalised).

    Reads go through ``ReadAhead`` only when a GPU computes: there the read is what waits. On
    the CPU the read-ahead thread competes with BLAS and torch for the cores; measured on 2
    cores it made RX 10 % slower and the full method 50 % slower, and it adds a block of memory.
    """
    if options.enhancer == "none":
        device = choose_device(options.device, rep)
        plain: BlockSource = SceneSource(scene, bands)
        return (plain if device == "cpu" else ReadAhead(plain)), device
    if loaded is None:
        from .nets.enhancer import load_enhancer  # numpy on the CPU; torch only for a GPU

        enhancer = load_enhancer(options.model, device=options.device, reporter=rep, backend=options.backend)
    else:
        enhancer = copy.copy(loaded)  # the same weights; this run's log
        enhancer.reporter = rep
    sub_info = _subset_info(scene.info, bands)
    plain = SceneSource(scene, bands)
    fitted = _fit_input(plain, enhancer, sub_info, options, rep.stage(0.0, 0.1))
    info = scene.info
    plan = MemoryPlan.for_run(
        options.memory_mb, _feature_bytes(options, info.height, info.width, fitted.matrix.shape[0])
    )
    raw: BlockSource = SceneSource(scene, bands, fitted.matrix, chunk_bytes=plan.raw_chunk)
    if enhancer.device != "cpu":
        raw = ReadAhead(raw)
    return EnhancedSource(
        raw,
        enhancer,
        fitted.normaliser,
        options.enhancer,
        options.fusion,
        cache_bytes=plan.feature_cache,
        batch_bytes=plan.enhancer_batch,
    ), enhancer.device


def _fit_input(plain: BlockSource, enhancer, info, options: DetectOptions, rep: Reporter):
    """One pass over a fixed pixel sample (every k-th pixel by its position in the scene, so the
    same whatever the block size): dead bands, the band matrix and the scene-wide normalisation."""
    from .nets.inputs import fit_input, scene_sample

    # The fit pass holds a raw block, its float32 copy and the validity tests (about 2 float32 values
    # per band), beside the sample it gathers (up to the normaliser's cap, 16 MiB of model bands,
    # more in input bands) and the dead-band and quantile work on it: a quarter of the working set
    # per block keeps the whole pass inside the budget (the fit alone on 1024 x 1024 x 200 int16 at
    # 256 MiB, with dead_bands in band chunks: peak RSS +172 MiB instead of +359 MiB).
    rows = options.block_rows or MemoryPlan.for_run(options.memory_mb).block_rows(
        plain.width, 4 * 8 * plain.count
    )
    sample = scene_sample(
        enhancer.grid,
        lambda r0, r1: _plain_read(plain, r0, r1),
        plain.height,
        plain.width,
        plain.count,
        rows,
        rep.step,
    )
    return fit_input(enhancer.grid, info.count, info.wavelengths, sample, options.band_mode, rep)


def _plain_read(source: BlockSource, row0: int, row1: int):
    data, valid = source.read(row0, row1)
    return data["x"], valid


def _feature_bytes(options: DetectOptions, height: int, width: int, bands: int) -> int:
    """Bytes of the whole scene's enhanced features: one map per fusion variant."""
    variants = 2 if options.enhancer == "full" and options.fusion == "hadamard" else 1
    return height * width * bands * 4 * variants


def _plan(options: DetectOptions, source: BlockSource, scene: Optional[Scene] = None) -> MemoryPlan:
    """The run's memory plan, once the source (and so the feature size) is known; with the
    ``scene`` and no enhancers, room in GDAL's cache for one row of the file's tiles
    (``memory.py``). Not with the enhancers: their run is the networks' far more than the read,
    and the cache pushed the full method at 256 MiB over the budget rule (477 MiB against a
    limit of 469 in bench/speed.py's memory rows)."""
    if isinstance(source, EnhancedSource):
        return MemoryPlan.for_run(
            options.memory_mb, _feature_bytes(options, source.height, source.width, source.count)
        )
    if scene is None:
        return MemoryPlan.for_run(options.memory_mb)
    info = scene.info
    unit_rows = min(scene.read_unit_rows(), info.height)
    unit_bytes = unit_rows * info.width * info.count * np.dtype(info.dtype).itemsize
    return MemoryPlan.for_run(options.memory_mb, 0, unit_bytes, unit_rows)


def _block_rows(source: BlockSource, input_bands: int, plan: MemoryPlan) -> int:
    """Rows per block from the memory plan's working set.

    An enhanced block holds, per pixel and model band, the resampled and the normalised input,
    one padded column strip, the fused output (one or two variants, which gather the features
    strip by strip), the RX temporaries and the validity tests' byte masks: counted as 6 +
    variants float32 values, a margin kept for allocator slack; and the networks' activations
    for one strip (``EnhancedSource.strip_cols`` sizes it to the batch budget; on a GPU one
    tile, tile + 2 halo columns wide, block + 2 halo rows high). It is at
    least twice the enhancers' halo, so the context rows read around each block do not dominate
    the work. A plain block holds the raw read, its float32 copy and the detectors' temporaries:
    6 values per pixel and band, and starts on a row of the file's tiles when the cache holds one.
    """
    if isinstance(source, EnhancedSource):
        return max(_enhanced_rows(source, plan, ENHANCER_TILE), 2 * source.halo, 1)
    return plan.aligned_rows(plan.block_rows(source.width, max(source.count, input_bands) * 4 * 6))


def _enhanced_rows(source: EnhancedSource, plan: MemoryPlan, tile: int) -> int:
    """Rows of an enhanced block that fill the working set when the networks run on ``tile``-wide tiles."""
    tile_cols = min(source.width, tile) + 2 * source.halo
    activations = tile_cols * activation_bytes_per_pixel(source.count, len(source.parts))
    per_row = source.width * source.count * 4 * (6 + len(source.variants)) + activations
    return max(0, (plan.working - 2 * source.halo * activations) // per_row)


def _enhancer_tile(source: EnhancedSource, block_rows: int, plan: MemoryPlan) -> int:
    """The widest tile (256, 128 or 64 columns) whose activations still fit beside ``block_rows``
    rows: a small budget gets narrower tiles rather than an overrun (at some cost in halo columns)."""
    for tile in (ENHANCER_TILE, ENHANCER_TILE // 2, ENHANCER_TILE // 4):
        if _enhanced_rows(source, plan, tile) >= block_rows:
            return tile
    return ENHANCER_TILE // 4


def _subset_info(info, bands: BandIndices):
    """The scene's spectral description restricted to the selected bands."""
    from dataclasses import replace

    wl = None if info.wavelengths is None else np.asarray(info.wavelengths)[list(bands)]
    return replace(info, count=len(bands), wavelengths=wl)


class _SceneScores:
    """Scores in the scene's own geometry, kept as one 2-D map (small next to the cube) until they
    are moved onto the product's map grid; takes ``write(row0, block)`` like the writer."""

    def __init__(self, height: int, width: int):
        self.scores = np.full((height, width), np.nan, dtype=np.float32)

    def write(self, row0: int, block: np.ndarray) -> None:
        block = np.asarray(block)
        block = block[0] if block.ndim == 3 else block
        self.scores[row0 : row0 + block.shape[0]] = block


class _ScoreSink:
    """Where per-block scores go: straight to the writer for one variant; for the Hadamard
    fusion, into whole-scene score maps combined once all are known. The maps stay in memory
    when they fit in ``max_bytes``; larger ones go to temporary files beside ``output`` (the run's
    output path), named like the writer's partial files so that a killed run's are swept by the
    next one. ``writer`` is anything with ``write(row0, block)``."""

    def __init__(self, source: Any, writer, block_rows: int, max_bytes: int, output: Path):
        self.writer, self.block_rows, self.output = writer, block_rows, Path(output)
        self._files: List[str] = []
        self.maps = None
        if len(source.variants) > 1:
            shape = (source.height, source.width)
            spill = len(source.variants) * shape[0] * shape[1] * 4 > max_bytes
            self.maps = {
                v: self._on_disk(shape) if spill else np.empty(shape, np.float32) for v in source.variants
            }

    def _on_disk(self, shape) -> np.ndarray:
        import tempfile

        fd, name = tempfile.mkstemp(
            prefix=partial_prefix(self.output), suffix=".scores", dir=str(self.output.parent)
        )
        os.close(fd)
        self._files.append(name)
        return np.memmap(name, np.float32, "w+", shape=shape)

    def put(self, variant: str, row0: int, scores: np.ndarray) -> None:
        if self.maps is None:
            self.writer.write(row0, scores)
        else:
            self.maps[variant][row0 : row0 + scores.shape[0]] = scores

    def close(self) -> None:
        """Write the fused map block by block, each map normalised by its whole-scene range."""
        if self.maps is not None:
            maps = list(self.maps.values())
            bounds = [finite_range(m, self.block_rows) for m in maps]
            for r0 in range(0, maps[0].shape[0], self.block_rows):
                self.writer.write(r0, hadamard([m[r0 : r0 + self.block_rows] for m in maps], bounds))

    def __enter__(self) -> _ScoreSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        self.maps = None
        for name in self._files:
            try:
                os.unlink(name)
            except OSError:
                pass


def hadamard(maps: List[np.ndarray], bounds: Optional[List] = None) -> np.ndarray:
    """float32 product of the min-max normalised maps (method.md section 4, the 'ham' rule);
    NaN where any map is NaN. ``bounds`` (one ``metrics.finite_range`` per map) fuses row blocks
    of larger maps exactly as the whole maps would be fused."""
    out = np.ones(maps[0].shape)
    for i, m in enumerate(maps):
        out *= normalise(m) if bounds is None else normalise(m, bounds[i])
    return out.astype(np.float32)


def _run_global_rx(
    source: BlockSource,
    block_rows: int,
    writer,
    rep: Reporter,
    device: Optional[str],
    plan: MemoryPlan,
    output: Path,
) -> None:
    """The product's one two-pass global RX (``detectors.rx.stream_rx``) over the source."""
    with _ScoreSink(source, writer, block_rows, plan.working // 4, output) as sink:
        stream_rx(
            source.read,
            source.height,
            source.count,
            source.variants,
            block_rows,
            sink.put,
            rep,
            device,
            score_chunk=plan.score_chunk(source.count),
        )


def _windowed_engine(name: str, workers: int) -> str:
    """One log line saying which kernel path runs, so a slow run explains itself."""
    from .detectors import compiled

    if compiled.available():
        threads = f"{workers} thread" + ("s" if workers != 1 else "")
        return (
            f"{name}: compiled kernel (numba) on {threads}; its first run on a machine compiles it "
            "(a few seconds, cached after)"
        )
    return f"{name}: numpy path ({hints.NUMBA})"


def _run_windowed(
    source: BlockSource,
    block_rows: int,
    outer: int,
    writer,
    rep: Reporter,
    plan: MemoryPlan,
    output: Path,
    score_block,
    centred: bool = False,
) -> None:
    """A streamed pass in which each row block is read with the rows its windows reach (shifted
    inside the image, or ``centred``: ``windows.halo_rows``).

    ``score_block(variant, block, valid, block_row0, core_row0, core_row1, reporter)`` scores
    the core rows; its reporter covers this block's share of the progress, and the kernels check
    it for cancel a few times a second.
    """
    blocks = list(iter_row_blocks(source.height, block_rows))
    share = 1.0 / (len(blocks) * len(source.variants))
    with _ScoreSink(source, writer, block_rows, plan.working // 4, output) as sink:
        for i, (r0, r1, _, _) in enumerate(blocks):
            h0, h1 = halo_rows(r0, r1, source.height, outer, centred)
            data, valid = source.read(h0, h1)
            for j, v in enumerate(source.variants):
                start = (i * len(source.variants) + j) * share
                sink.put(v, r0, score_block(v, data[v], valid, h0, r0, r1, rep.stage(start, start + share)))
            rep.step((i + 1) / len(blocks))


def _run_local_rx(
    source: BlockSource,
    block_rows: int,
    inner: int,
    outer: int,
    covariance: str,
    writer,
    rep: Reporter,
    plan: MemoryPlan,
    output: Path,
    workers: int,
) -> None:
    """Local RX streamed by ``_run_windowed``; the scene covariance, when asked for, comes from a
    first pass."""
    covs: Dict[str, Optional[np.ndarray]] = {v: None for v in source.variants}
    if covariance == "scene":
        stats = stream_statistics(
            source.read, source.height, source.count, source.variants, block_rows, rep.stage(0.0, 0.3)
        )
        covs = {v: stats[v].covariance() for v in source.variants}
        rep = rep.stage(0.3, 1.0)
    _run_windowed(
        source,
        block_rows,
        outer,
        writer,
        rep,
        plan,
        output,
        lambda v, blk, ok, h0, r0, r1, part: local_rx_block(
            blk,
            ok,
            h0,
            r0,
            r1,
            source.height,
            inner=inner,
            outer=outer,
            cov=covs[v],
            reporter=part,
            workers=workers,
        ),
    )


def _run_crd(
    source: BlockSource,
    block_rows: int,
    options: DetectOptions,
    writer,
    rep: Reporter,
    device: Optional[str],
    plan: MemoryPlan,
    output: Path,
    workers: int,
) -> None:
    """CRD streamed by ``_run_windowed`` with its centred windows; for CRD+RX a first pass gathers
    the scene's statistics (on the enhancers' device) and each block's CRD scores are fused with
    its global RX scores (``detectors.crd_rx``)."""
    scorers = None
    if options.detector == Detector.CRD_RX:
        stats = stream_statistics(
            source.read, source.height, source.count, source.variants, block_rows, rep.stage(0.0, 0.2), device
        )
        scorers, _ = rx_scorers(stats, rep, device, score_chunk=plan.score_chunk(source.count))
        rep = rep.stage(0.2, 1.0)
    windows = {"inner": options.inner, "outer": options.outer, "lam": options.crd_lambda, "workers": workers}

    def score(v, blk, ok, h0, r0, r1, part):
        rows = (blk, ok, h0, r0, r1, source.height)
        if scorers is None:
            return crd_block(*rows, reporter=part, **windows)
        return crd_rx_block(*rows, scorers[v], reporter=part, **windows)

    _run_windowed(source, block_rows, options.outer, writer, rep, plan, output, score, centred=True)


def _read_single_band(path) -> Tuple[np.ndarray, Any]:
    """A whole one-band raster (score or mask: small next to the cube) and its scene info."""
    with open_scene(path) as scene:
        if np.dtype(scene.info.dtype).kind == "c":
            check_scene(scene.info)  # refuses complex samples with the scene's own message
        if scene.info.count != 1:
            raise InputError(
                f"{Path(path).name} has {scene.info.count} bands; expected a one-band score raster"
            )
        block, valid = scene.read_all()
    scores = block[0].astype(np.float32, copy=True)
    scores[~valid] = np.nan
    return scores, scene.info


#: Dataset metadata item of a score raster, and of a mask made from it, naming the scene it came
#: from (the input's file name): a mask thresholded from a score file (the next step of a graphical
#: model) can then be named after the scene rather than after the score file.
SOURCE_TAG = "FERS_SOURCE"


def source_tags(input_path) -> Dict[str, str]:
    """The dataset metadata a score raster of ``input_path`` carries (``SOURCE_TAG``)."""
    name = Path(str(input_path)).name
    return {SOURCE_TAG: name} if name else {}


def scores_source(path) -> str:
    """The scene file name a FERS score or mask raster records (``SOURCE_TAG``), '' when none."""
    from osgeo import gdal

    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        ds = gdal.Open(str(path))
        value = ds.GetMetadataItem(SOURCE_TAG) if ds is not None else None
    finally:
        ds = None
        gdal.PopErrorHandler()
    return value or ""


def threshold_raster(
    score_path,
    output_path,
    method: str = "percentile",
    value: Optional[float] = None,
    reporter: Reporter = SILENT,
) -> float:
    """Turn a score raster into a uint8 mask (1 anomaly, 0 background, 255 nodata).

    ``value`` None takes the method's own default (``choices.THRESHOLD_DEFAULTS``). The request
    and the output are checked before the scores are read.

    Args:
        score_path: a one-band score raster (``detect``'s output, or any float raster).
        output_path: the uint8 GeoTIFF mask to write.
        method: the rule (``choices.ThresholdMethod``).
        value: the rule's value (percentile, false-alarm rate or score); None = its default.
        reporter: progress, messages and cancel.

    Returns:
        The score threshold applied: pixels scoring strictly above it are anomalies.
    """
    value = check_threshold(method, value)
    guard_outputs([Output.raster("mask", output_path)], inputs=[score_path], reporter=reporter)
    scores, info = _read_single_band(score_path)
    if not np.isfinite(scores).any():
        raise InputError(f"{Path(score_path).name} has no valid score to threshold")
    threshold = float(_threshold_value(scores, method, value))
    reporter.info(f"threshold ({method if value is None else f'{method} {value:g}'}) = {threshold:.6g}")
    mask = threshold_mask(scores, threshold)
    reporter.info(f"{int((mask == 1).sum())} anomaly pixels of {int(np.isfinite(scores).sum())}")
    source = scores_source(score_path)
    reporter.check()  # the last moment a cancel stops the mask from being written
    with RasterWriter(
        output_path,
        info.height,
        info.width,
        count=1,
        dtype="uint8",
        crs=info.crs,
        transform=info.transform,
        nodata=MASK_NODATA,
        band_descriptions=["anomaly mask"],
        like_input=score_path,
        tags=source_tags(source) if source else None,
    ) as writer:
        writer.write(0, mask)
    reporter.report(1.0)  # the mask is committed
    return threshold


def evaluate_rasters(score_path, truth_path, reporter: Reporter = SILENT, report_path=None) -> Dict:
    """AUC and the 3-D ROC measures of a score raster against a ground-truth raster or .mat;
    with ``report_path``, also the HTML report (its path checked before anything is read).

    Args:
        score_path: a one-band score raster.
        truth_path: the anomaly truth (a mask raster, a ``.mat``, or a scene whose truth is found
            beside it), the same size as the scores.
        reporter: progress, messages and cancel.
        report_path: where to write the HTML report, or None.

    Returns:
        A dict: ``auc`` (and the other measures of ``metrics.evaluate``), ``roc`` (false-alarm
        and detection rates), ``anomaly_pixels`` and ``valid_pixels``.
    """
    if report_path is not None:
        guard_outputs(
            [Output.file("report", report_path)], inputs=[score_path, truth_path], reporter=reporter
        )
    scores, _ = _read_single_band(score_path)
    truth = read_ground_truth(truth_path)
    if truth.shape != scores.shape:
        raise InputError(
            f"ground truth is {truth.shape[1]} x {truth.shape[0]} px but the score raster is "
            f"{scores.shape[1]} x {scores.shape[0]} px"
        )
    valid = np.isfinite(scores)
    measures = evaluate(scores, truth, valid=valid)
    result: Dict[str, Any] = {"auc": measures["auc_pd_pf"], **measures}
    pf, pd, _ = roc_curve(scores[valid], truth[valid])
    result["roc"] = (pf, pd)
    result["anomaly_pixels"] = int(truth[valid].sum())
    result["valid_pixels"] = int(valid.sum())
    reporter.info(
        f"AUC {result['auc']:.4f} over {result['valid_pixels']} px ({result['anomaly_pixels']} anomalous)"
    )
    if report_path is not None:
        reporter.check()  # the last moment a cancel stops the report from being written
        from .report import write_report

        write_report(
            report_path,
            result,
            score_path=score_path,
            truth_path=truth_path,
            title=f"FERS evaluation of {Path(score_path).name}",
        )
        reporter.info(f"report written: {report_path}")
    reporter.report(1.0)
    return result
