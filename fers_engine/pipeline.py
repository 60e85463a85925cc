"""The engine's front door: detect, threshold and evaluate rasters, streamed block by block.

Every entry point takes paths and a ``Reporter`` and returns a small result object, so the CLI,
the QGIS algorithms and plain Python callers share one implementation. Scores are written through
the one atomic writer, so an error or a cancel never leaves a partial output.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import hints
from .choices import (BAND_MODES, DEFAULT_CRD_LAMBDA, DETECTORS, DEVICES, ENHANCERS, FUSIONS,
                      LOCAL_COVARIANCES, THRESHOLD_METHODS)
from .detectors import BackgroundStats, RxScorer
from .detectors.crd import check_lambda, crd_block
from .detectors.device import choose_device
from .detectors.lrx import choose_covariance, local_rx_block
from .detectors.parallel import resolve_workers
from .detectors.windows import halo_rows
from .detectors.threshold import threshold_value as _threshold_value
from .errors import InputError
from .io.gdal_runtime import limit_gdal_cache
from .io import (RasterWriter, ReaderOptions, default_block_rows, iter_row_blocks, open_scene,
                 read_ground_truth, select_bands)
from .metrics import evaluate, normalise, roc_curve
from .progress import SILENT, Reporter
from .sources import BlockSource, EnhancedSource, ReadAhead, SceneSource

DEFAULT_MEMORY_MB = 1024


@dataclass
class DetectOptions:
    """What to run. The defaults are the full method of the paper: enhancers, sum fusion, RX."""

    detector: str = "rx"
    inner: int = 3  # windowed detectors (lrx, crd): guard window
    outer: int = 15  # and outer window; the ring between them is each pixel's background
    local_covariance: str = "auto"  # local RX: "ring", "scene", or chosen by the ring's size
    crd_lambda: float = DEFAULT_CRD_LAMBDA  # CRD's distance-weighted regularisation
    bands: Optional[Sequence[int]] = None  # 0-based band indices
    wavelength_ranges: Optional[Sequence[Tuple[float, float]]] = None  # nm
    drop_bad_bands: bool = True
    enhancer: str = "full"
    model: Optional[str] = None  # a bundled model name or a path; None = the default model
    band_mode: str = "resample"
    fusion: str = "sum"
    device: str = "auto"
    backend: Optional[str] = None  # enhancers: None = the device policy (numpy on the CPU); "torch" forces torch
    block_rows: Optional[int] = None
    memory_mb: int = DEFAULT_MEMORY_MB
    reader: ReaderOptions = field(default_factory=ReaderOptions)  # EMIT swath / AVIRIS north-up
    #: Threads for the windowed detectors' kernels; None = every core in this process's CPU
    #: affinity mask. Front ends with their own thread setting (QGIS) pass it here.
    workers: Optional[int] = None

    def validate(self) -> None:
        for name, value, allowed in (("detector", self.detector, DETECTORS),
                                     ("enhancer", self.enhancer, ENHANCERS),
                                     ("fusion", self.fusion, FUSIONS),
                                     ("device", self.device, DEVICES),
                                     ("band mode", self.band_mode, BAND_MODES),
                                     ("local RX covariance", self.local_covariance, LOCAL_COVARIANCES)):
            if value not in allowed:
                raise InputError(f"unknown {name} {value!r}: choose one of {', '.join(allowed)}")
        if self.detector in ("lrx", "crd"):
            if self.inner < 1 or self.outer <= self.inner or self.inner % 2 == 0 or self.outer % 2 == 0:
                raise InputError(f"{self.detector} windows must be odd with inner < outer, got "
                                 f"inner={self.inner}, outer={self.outer}")
        if self.detector == "crd":
            check_lambda(self.crd_lambda)
        resolve_workers(self.workers)
        if self.backend not in (None, "numpy", "torch"):
            raise InputError(f"unknown enhancer backend {self.backend!r}: choose numpy or torch")
        if self.block_rows is not None and self.block_rows < 1:
            raise InputError(f"block size must be at least 1 row, got {self.block_rows}")


@dataclass
class DetectResult:
    output: Path
    mask_output: Optional[Path]
    device: str
    threshold: Optional[float]
    seconds: float
    height: int
    width: int
    bands_used: int
    messages: List[str] = field(default_factory=list)


def detect(input_path, output_path, options: Optional[DetectOptions] = None,
           reporter: Reporter = SILENT, mask_output=None, threshold_method: Optional[str] = None,
           threshold_value: Optional[float] = None, enhancer=None) -> DetectResult:
    """Score every pixel of ``input_path`` and write a float32 anomaly map to ``output_path``.

    ``enhancer``: the model ``options.model`` already loaded on ``options.device`` (a cluster
    worker loads it once for all its scenes); None loads it here when the options need it.
    """
    options = options or DetectOptions()
    options.validate()
    t0 = time.perf_counter()
    messages: List[str] = []
    rep = _collecting(reporter, messages)
    with limit_gdal_cache(options.memory_mb * 2**20 // 2), open_scene(input_path, options.reader) as scene:
        info = scene.info
        view = scene.map_view  # EMIT ortho grid, north-up AVIRIS: scores are moved onto it at the end
        bands = scene_bands(scene, input_path, options, rep)
        source, device = _build_source(scene, bands, options, rep, enhancer)
        try:
            if options.detector in ("lrx", "crd") and device != "cpu":
                rep.info(f"{options.detector} runs on the CPU; the GPU serves the enhancers")
            workers = resolve_workers(options.workers)
            covariance = None
            if options.detector == "lrx":
                choice = choose_covariance(options.local_covariance, options.inner, options.outer,
                                           source.count)
                covariance = choice.mode
                say = rep.warning if choice.singular else rep.info
                say(f"local RX covariance: {covariance} ({choice.reason})")
                if covariance == "ring":
                    rep.info(_windowed_engine("local RX", workers))
            elif options.detector == "crd":
                rep.info(f"CRD: windows {options.inner}/{options.outer}, lambda {options.crd_lambda:g}")
                rep.info(_windowed_engine("CRD", workers))
            block_rows = options.block_rows or _block_rows(source, len(bands), options.memory_mb)
            rep.info(f"detector {options.detector}, enhancer {options.enhancer}, device {device}, "
                     f"block {block_rows} rows")
            grid = (info.height, info.width, info.crs, info.transform) if view is None else (
                view.height, view.width, view.crs, view.transform)
            with RasterWriter(output_path, grid[0], grid[1], count=1, dtype="float32",
                              crs=grid[2], transform=grid[3], nodata=float("nan"),
                              band_descriptions=["anomaly score"], like_input=scene) as writer:
                start = 0.0 if options.enhancer == "none" else 0.1  # the normalisation pass came first
                sink = writer if view is None else _SceneScores(info.height, info.width)
                if options.detector == "rx":
                    _run_global_rx(source, block_rows, sink, rep.stage(start, 0.97),
                                   None if device == "cpu" else device)
                elif options.detector == "lrx":
                    _run_local_rx(source, block_rows, options.inner, options.outer, covariance,
                                  sink, rep.stage(start, 0.97), workers)
                else:
                    _run_windowed(source, block_rows, options.outer, sink, rep.stage(start, 0.97),
                                  lambda v, blk, ok, h0, r0, r1, part: crd_block(
                                      blk, ok, h0, r0, r1, source.height, options.inner, options.outer,
                                      lam=options.crd_lambda, reporter=part, workers=workers))
                if view is not None:
                    view.write(sink.scores, writer, block_rows)
        finally:
            source.close()  # stops the read-ahead before the scene closes
    threshold = None
    if mask_output is not None:
        threshold = threshold_raster(output_path, mask_output, threshold_method or "percentile",
                                     99.0 if threshold_value is None else threshold_value,
                                     rep.stage(0.97, 1.0))
    rep.step(1.0)
    seconds = time.perf_counter() - t0
    rep.info(f"done in {seconds:.2f} s")
    height, width = (info.height, info.width) if view is None else (view.height, view.width)
    return DetectResult(Path(output_path), None if mask_output is None else Path(mask_output), device,
                        threshold, seconds, height, width, source.count, messages)


def scene_bands(scene, input_path, options: DetectOptions, rep: Reporter) -> List[int]:
    """The bands ``options`` select in an open scene, after the checks every detect run makes."""
    info, view = scene.info, scene.map_view
    if info.count < 2:
        raise InputError(f"{Path(input_path).name} has {info.count} band; anomaly detection needs a "
                         "multi-band (hyperspectral) raster")
    if (info.crs if view is None else view.crs) is None:
        rep.warning(f"{Path(input_path).name} has no CRS: the anomaly map will not be georeferenced")
    bands = select_bands(info, indices=options.bands, wavelength_ranges=options.wavelength_ranges,
                         drop_bad_bands=options.drop_bad_bands)
    if info.product:
        rep.info(f"product: {info.product}" + "".join(f"; {n}" for n in info.notes)
                 + (f"; {view.note}" if view is not None else ""))
    rep.info(f"input {info.width} x {info.height} px, {info.count} bands; using {len(bands)} bands")
    return bands


def _collecting(reporter: Reporter, messages: List[str]) -> Reporter:
    """A reporter that also keeps every message, so results can carry the run's log."""

    def log(msg: str) -> None:
        messages.append(msg)
        if reporter.log is not None:
            reporter.log(msg)

    def warn(msg: str) -> None:
        messages.append("WARNING: " + msg)
        if reporter.warn is not None:
            reporter.warn(msg)
        elif reporter.log is not None:
            reporter.log("WARNING: " + msg)

    return Reporter(progress=reporter.progress, log=log, should_stop=reporter.should_stop, warn=warn,
                    _start=reporter._start, _span=reporter._span)


def _build_source(scene, bands: Sequence[int], options: DetectOptions,
                  rep: Reporter, loaded=None) -> Tuple[BlockSource, str]:
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
    matrix, _ = enhancer.input_matrix(sub_info, band_mode=options.band_mode)  # it logs what it did
    raw: BlockSource = SceneSource(scene, bands, matrix)
    if enhancer.device != "cpu":
        raw = ReadAhead(raw)
    normaliser = enhancer.new_normaliser()
    try:
        _fit_normaliser(raw, normaliser, options.block_rows or default_block_rows(raw.width, len(bands)),
                        rep.stage(0.0, 0.1))
    except BaseException:
        raw.close()
        raise
    cache = options.memory_mb * 2**20 // 2
    return EnhancedSource(raw, enhancer, normaliser, options.enhancer, options.fusion,
                          cache_bytes=cache), enhancer.device


def _fit_normaliser(raw: BlockSource, normaliser, block_rows: int, rep: Reporter) -> None:
    """Scene-wide normalisation from a fixed subsample (``normaliser_sample``), block by block."""
    stride = normaliser_stride(raw, normaliser)
    blocks = list(iter_row_blocks(raw.height, block_rows))
    for i, (r0, r1, _, _) in enumerate(blocks):
        normaliser.update(*normaliser_sample(raw, r0, r1, stride))
        rep.step((i + 1) / len(blocks))


def normaliser_stride(raw: BlockSource, normaliser) -> int:
    """Every how many pixels the normalisation sample takes one: as many values as the
    normaliser keeps without thinning, so its quantiles do not depend on the block order."""
    cap = int(getattr(normaliser, "cap", 262144))
    return max(1, -(-raw.height * raw.width * raw.count // max(1, cap - raw.count)))


def normaliser_sample(raw: BlockSource, row0: int, row1: int, stride: int) -> Tuple[np.ndarray, np.ndarray]:
    """The sample rows [row0, row1) give to ``Normaliser.update``: every ``stride``-th pixel by its
    position in the scene, so the sample (and the transform) is the same whatever the blocks."""
    data, valid = raw.read(row0, row1)
    index = np.arange(row0 * raw.width, row1 * raw.width)
    pick = index % stride == 0
    x = data["x"].reshape(raw.count, -1)[:, pick]
    return x[:, None, :], valid.ravel()[pick][None, :]


def _block_rows(source: BlockSource, input_bands: int, memory_mb: int) -> int:
    """Rows per block from the memory budget; for the enhancers, at least twice their halo so that
    the context rows read around each block do not dominate the work."""
    budget = memory_mb * 2**20
    if isinstance(source, EnhancedSource):
        rows = default_block_rows(source.width, source.count, budget_bytes=budget // 8, copies=1)
        return max(rows, 2 * source.halo, 1)
    return default_block_rows(source.width, max(source.count, input_bands), budget_bytes=budget // 4)


def _subset_info(info, bands: Sequence[int]):
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
        self.scores[row0:row0 + block.shape[0]] = block


class _ScoreSink:
    """Where per-block scores go: straight to the writer for one variant; for the Hadamard
    fusion, into whole-scene maps (2-D, small next to the cube) combined once all are known."""

    def __init__(self, source: BlockSource, writer: RasterWriter, block_rows: int):
        self.writer, self.block_rows = writer, block_rows
        self.maps = None if len(source.variants) == 1 else {
            v: np.empty((source.height, source.width), np.float32) for v in source.variants}

    def put(self, variant: str, row0: int, scores: np.ndarray) -> None:
        if self.maps is None:
            self.writer.write(row0, scores)
        else:
            self.maps[variant][row0:row0 + scores.shape[0]] = scores

    def close(self) -> None:
        if self.maps is not None:
            fused = hadamard(list(self.maps.values()))
            for r0 in range(0, fused.shape[0], self.block_rows):
                self.writer.write(r0, fused[r0:r0 + self.block_rows])


def hadamard(maps: List[np.ndarray]) -> np.ndarray:
    """float32 product of the min-max normalised maps (method.md section 4, the 'ham' rule);
    NaN where any map is NaN."""
    out = np.ones(maps[0].shape)
    for m in maps:
        out *= normalise(m)
    return out.astype(np.float32)


def _scene_stats(source: BlockSource, blocks, rep: Reporter,
                 device: Optional[str] = None) -> Dict[str, BackgroundStats]:
    """One streamed pass: each variant's scene mean and covariance (float64 accumulations)."""
    stats = {v: BackgroundStats(source.count, device=device) for v in source.variants}
    for i, (r0, r1, _, _) in enumerate(blocks):
        data, valid = source.read(r0, r1)
        for v in source.variants:
            stats[v].update(data[v], valid)
        rep.step((i + 1) / len(blocks))
    for v in source.variants:
        if stats[v].count < 2:
            raise InputError("the raster has no valid pixel (all nodata or NaN)" if stats[v].count == 0
                             else "the raster has only one valid pixel: no background to compare with")
    return stats


def _run_global_rx(source: BlockSource, block_rows: int, writer: RasterWriter, rep: Reporter,
                   device: Optional[str] = None) -> None:
    """Two streamed passes: background statistics, then Mahalanobis scores per block."""
    blocks = list(iter_row_blocks(source.height, block_rows))
    stats = _scene_stats(source, blocks, rep.stage(0.0, 0.5), device)
    scorers = {}
    for v in source.variants:
        scorers[v], info = RxScorer.from_cov(stats[v].mean, stats[v].covariance(), device=device)
        rep.info(info.describe())
    second = rep.stage(0.5, 1.0)
    sink = _ScoreSink(source, writer, block_rows)
    for i, (r0, r1, _, _) in enumerate(blocks):
        data, valid = source.read(r0, r1)
        for v in source.variants:
            sink.put(v, r0, scorers[v](data[v], valid))
        second.step((i + 1) / len(blocks))
    sink.close()


def _windowed_engine(name: str, workers: int) -> str:
    """One log line saying which kernel path runs, so a slow run explains itself."""
    from .detectors import compiled

    if compiled.available():
        threads = f"{workers} thread" + ("s" if workers != 1 else "")
        return (f"{name}: compiled kernel (numba) on {threads}; its first run on a machine compiles it "
                "(a few seconds, cached after)")
    return f"{name}: numpy path ({hints.NUMBA})"


def _run_windowed(source: BlockSource, block_rows: int, outer: int, writer: RasterWriter, rep: Reporter,
                  score_block) -> None:
    """A streamed pass in which each row block is read with the rows its shifted windows reach.

    ``score_block(variant, block, valid, block_row0, core_row0, core_row1, reporter)`` scores
    the core rows; its reporter covers this block's share of the progress, and the kernels check
    it for cancel a few times a second.
    """
    blocks = list(iter_row_blocks(source.height, block_rows))
    sink = _ScoreSink(source, writer, block_rows)
    share = 1.0 / (len(blocks) * len(source.variants))
    for i, (r0, r1, _, _) in enumerate(blocks):
        h0, h1 = halo_rows(r0, r1, source.height, outer)
        data, valid = source.read(h0, h1)
        for j, v in enumerate(source.variants):
            start = (i * len(source.variants) + j) * share
            sink.put(v, r0, score_block(v, data[v], valid, h0, r0, r1, rep.stage(start, start + share)))
        rep.step((i + 1) / len(blocks))
    sink.close()


def _run_local_rx(source: BlockSource, block_rows: int, inner: int, outer: int, covariance: str,
                  writer: RasterWriter, rep: Reporter, workers: int) -> None:
    """Local RX streamed by ``_run_windowed``; the scene covariance, when asked for, comes from a
    first pass."""
    covs = {v: None for v in source.variants}
    if covariance == "scene":
        stats = _scene_stats(source, list(iter_row_blocks(source.height, block_rows)), rep.stage(0.0, 0.3))
        covs = {v: stats[v].covariance() for v in source.variants}
        rep = rep.stage(0.3, 1.0)
    _run_windowed(source, block_rows, outer, writer, rep,
                  lambda v, blk, ok, h0, r0, r1, part: local_rx_block(
                      blk, ok, h0, r0, r1, source.height, inner=inner, outer=outer, cov=covs[v],
                      reporter=part, workers=workers))


def _read_single_band(path) -> Tuple[np.ndarray, object]:
    """A whole one-band raster (score or mask: small next to the cube) and its scene info."""
    with open_scene(path) as scene:
        if scene.info.count != 1:
            raise InputError(f"{Path(path).name} has {scene.info.count} bands; expected a one-band score raster")
        block, valid = scene.read_all()
    scores = block[0].astype(np.float32, copy=True)
    scores[~valid] = np.nan
    return scores, scene.info


def threshold_raster(score_path, output_path, method: str = "percentile", value: float = 99.0,
                     reporter: Reporter = SILENT) -> float:
    """Turn a score raster into a uint8 mask (1 anomaly, 0 background, 255 nodata)."""
    if method not in THRESHOLD_METHODS:
        raise InputError(f"unknown threshold method {method!r}: choose one of {', '.join(THRESHOLD_METHODS)}")
    scores, info = _read_single_band(score_path)
    if not np.isfinite(scores).any():
        raise InputError(f"{Path(score_path).name} has no valid score to threshold")
    threshold = float(_threshold_value(scores, method, value))
    reporter.info(f"threshold ({method} {value:g}) = {threshold:.6g}")
    mask = np.full(scores.shape, 255, np.uint8)
    finite = np.isfinite(scores)
    mask[finite] = (scores[finite] > threshold).astype(np.uint8)
    reporter.info(f"{int((mask == 1).sum())} anomaly pixels of {int(finite.sum())}")
    with RasterWriter(output_path, info.height, info.width, count=1, dtype="uint8", crs=info.crs,
                      transform=info.transform, nodata=255, band_descriptions=["anomaly mask"],
                      like_input=score_path) as writer:
        writer.write(0, mask)
    reporter.step(1.0)
    return threshold


def evaluate_rasters(score_path, truth_path, reporter: Reporter = SILENT) -> Dict:
    """AUC and the 3-D ROC measures of a score raster against a ground-truth raster or .mat."""
    scores, _ = _read_single_band(score_path)
    truth = read_ground_truth(truth_path)
    if truth.shape != scores.shape:
        raise InputError(f"ground truth is {truth.shape[1]} x {truth.shape[0]} px but the score raster is "
                         f"{scores.shape[1]} x {scores.shape[0]} px")
    valid = np.isfinite(scores)
    measures = evaluate(scores, truth, valid=valid)
    result = {"auc": measures["auc_pd_pf"], **measures}
    pf, pd, _ = roc_curve(scores[valid], truth[valid])
    result["roc"] = (pf, pd)
    result["anomaly_pixels"] = int(truth[valid].sum())
    result["valid_pixels"] = int(valid.sum())
    reporter.info(f"AUC {result['auc']:.4f} over {result['valid_pixels']} px "
                  f"({result['anomaly_pixels']} anomalous)")
    reporter.step(1.0)
    return result
