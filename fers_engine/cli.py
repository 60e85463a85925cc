"""The `fers` console script: detect, evaluate, threshold, info, train.

Bad input ends with one line on stderr naming the problem (exit status 2), never a traceback;
Ctrl-C ends with no partial output (exit status 130), and so do SIGTERM (``timeout``, ``kill``,
schedulers) and SIGHUP (a closed terminal), with the shell's status 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

from . import __version__
from .choices import (
    BAND_MODES,
    CHECKPOINT_SELECTIONS,
    DEFAULT_CRD_LAMBDA,
    DEFAULT_DETECTOR,
    DEFAULT_ENHANCER,
    DETECTORS,
    DEVICES,
    ENHANCERS,
    FUSIONS,
    LOCAL_COVARIANCES,
    THRESHOLD_METHODS,
    TRAINING_RECIPES,
    TRUTH_POLICIES,
)
from .errors import BandIndexError, Cancelled, FersError, InputError
from .progress import Reporter


def parse_ranges(text: str, integers: bool) -> List[Tuple[float, float]]:
    """'1-50,60,70-100' -> [(1, 50), (60, 60), (70, 100)]."""
    ranges = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-") if not part.startswith("-") else (part, "", "")
        try:
            a = float(lo)
            b = float(hi) if sep else a
        except ValueError:
            raise InputError(f"cannot read range {part!r}: use forms like 1-50,60") from None
        if integers and (a != int(a) or b != int(b)):
            raise InputError(f"band numbers must be whole numbers, got {part!r}")
        if b < a:
            raise InputError(f"range {part!r} runs backwards")
        ranges.append((a, b))
    if not ranges:
        raise InputError(f"empty range list {text!r}")
    return ranges


def parse_bands(text: str) -> List[int]:
    """1-based band list as users write it ('1-50,60') -> 0-based indices."""
    out: List[int] = []
    for a, b in parse_ranges(text, integers=True):
        if a < 1:
            raise InputError(f"band numbers start at 1, got {int(a)}")
        out.extend(range(int(a) - 1, int(b)))
    return out


class _Bar:
    """A tqdm bar driven by the engine's fraction-done callback."""

    def __init__(self, label: str, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=1000,
                desc=label,
                unit="‰",
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
            )

    def __call__(self, fraction: float) -> None:
        if self.bar is not None:
            self.bar.n = int(fraction * 1000)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _reporter(args, label: str) -> Tuple[Reporter, _Bar]:
    bar = _Bar(label, enabled=not args.quiet and sys.stderr.isatty())

    def info(msg: str) -> None:
        if args.verbose:
            (bar.bar.write if bar.bar is not None else print)(msg, file=sys.stderr)

    def warning(msg: str) -> None:
        (bar.bar.write if bar.bar is not None else print)("warning: " + msg, file=sys.stderr)

    return Reporter(on_progress=bar, on_info=info, on_warning=warning), bar


def _reader_options(args):
    from .io import ReaderOptions

    return ReaderOptions(ortho=not args.no_ortho, north_up=args.north_up)


def detect_options(args):
    """The DetectOptions the shared detect flags ask for."""
    from .pipeline import DetectOptions

    bands = parse_bands(args.bands) if args.bands else None
    return DetectOptions(
        detector=args.detector,
        inner=args.inner,
        outer=args.outer,
        local_covariance=args.lrx_covariance,
        crd_lambda=args.crd_lambda,
        bands=bands,
        wavelength_ranges=parse_ranges(args.wavelengths, integers=False) if args.wavelengths else None,
        drop_bad_bands=not args.keep_bad_bands,
        enhancer=args.enhancer,
        model=args.model,
        band_mode=args.band_mode,
        fusion=args.fusion,
        device=args.device,
        block_rows=args.block_rows,
        memory_mb=args.memory_mb,
        workers=args.threads,
        reader=_reader_options(args),
    )


def cmd_detect(args) -> int:
    from .pipeline import detect

    options = detect_options(args)
    if options.enhancer != "none":
        from .memory import map_large_arrays

        map_large_arrays()  # this process is the CLI's: keep --memory-mb a limit (memory.py)
    rep, bar = _reporter(args, "detect")
    try:
        result = detect(
            args.input,
            args.output,
            options,
            rep,
            mask_output=args.mask,
            threshold_method=args.threshold_method,
            threshold_value=args.threshold_value,
        )
    except BandIndexError as e:  # --bands counts from 1: name the band as the user typed it
        raise e.one_based() from None
    finally:
        bar.close()
    print(
        f"wrote {result.output} ({result.width} x {result.height} px, device {result.device}, "
        f"{result.seconds:.2f} s)"
    )
    if result.mask_output is not None:
        print(f"wrote {result.mask_output} (threshold {result.threshold:.6g})")
    return 0


def cmd_batch(args) -> int:
    """Exit 0 when every scene is done (or was already complete), 1 when any failed."""
    from .cluster import read_input_list, run_batch

    inputs = list(args.inputs) + (read_input_list(args.input_list) if args.input_list else [])
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    rep, bar = _reporter(args, "batch")
    try:
        result = run_batch(
            inputs,
            args.out_dir,
            detect_options(args),
            scheduler=args.scheduler,
            workers=args.workers,
            overwrite=args.overwrite,
            mask=args.mask,
            threshold_method=args.threshold_method,
            threshold_value=args.threshold_value,
            split=args.split,
            reporter=rep,
        )
    except (KeyboardInterrupt, Cancelled):
        print(
            "fers: interrupted; scenes that finished are kept, the others left no file "
            f"(see {Path(args.out_dir) / 'fers-batch-summary.csv'})",
            file=sys.stderr,
        )
        return 130
    finally:
        bar.close()
    counts = ", ".join(f"{result.count(s)} {s}" for s in ("ok", "skipped", "failed") if result.count(s))
    print(f"{len(result.outcomes)} scenes on {result.workers} workers in {result.seconds:.1f} s: {counts}")
    print(f"summary: {result.summary_csv} and {result.summary_json.name}")
    return 1 if result.failed else 0


def cmd_evaluate(args) -> int:
    from .pipeline import evaluate_rasters

    result = evaluate_rasters(args.score, args.truth, report_path=args.html or None)
    result.pop("roc")
    if args.html:
        print(f"wrote {args.html}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>14}: {value:.6f}" if isinstance(value, float) else f"{key:>14}: {value}")
    return 0


def cmd_threshold(args) -> int:
    from .pipeline import threshold_raster

    rep, bar = _reporter(args, "threshold")
    try:
        value = threshold_raster(args.score, args.output, args.method, args.value, rep)
    finally:
        bar.close()
    print(f"wrote {args.output} (threshold {value:.6g})")
    return 0


def crs_label(wkt: Optional[str]) -> str:
    """'NAD27 / UTM zone 11N (EPSG:26711)' rather than a page of WKT; the EPSG code is GDAL's
    best match when it is at least 70 % sure (the WKT of an ENVI header names no authority)."""
    if not wkt:
        return "none (not georeferenced)"
    from osgeo import osr

    try:
        srs = osr.SpatialReference(wkt=wkt)
        epsg = srs.GetAuthorityCode(None) if srs.GetAuthorityName(None) == "EPSG" else None
        if epsg is None:
            epsg = next(
                (
                    m.GetAuthorityCode(None)
                    for m, confidence in srs.FindMatches()
                    if confidence >= 70 and m.GetAuthorityName(None) == "EPSG"
                ),
                None,
            )
        name = srs.GetName() or wkt.split('"')[1]
        return f"{name} (EPSG:{epsg})" if epsg else name
    except Exception:
        return wkt


def _band_runs(mask) -> str:
    """1-based runs of the True entries: '130-135, 180'."""
    import numpy as np

    idx = np.flatnonzero(mask) + 1
    if idx.size == 0:
        return "none"
    runs, start = [], idx[0]
    for prev, cur in zip(idx[:-1], idx[1:]):
        if cur != prev + 1:
            runs.append((start, prev))
            start = cur
    runs.append((start, idx[-1]))
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def _scale_label(values) -> str:
    import numpy as np

    if values is None:
        return "none"
    values = np.asarray(values)
    if np.all(values == values[0]):
        return f"{values[0]:.6g} (all bands)"
    return f"{values.min():.6g}..{values.max():.6g} (per band)"


def cmd_info(args) -> int:
    from .io import open_scene

    with open_scene(args.input, _reader_options(args)) as scene:
        info, view = scene.info, scene.map_view
    wl = info.wavelengths
    height, width, crs, transform = (
        (info.height, info.width, info.crs, info.transform)
        if view is None
        else (view.height, view.width, view.crs, view.transform)
    )
    facts = {
        "path": str(info.path),
        "product": info.product or "plain raster",
        "size": f"{width} x {height} px"
        + ("" if view is None else f" (map grid; read as {info.width} x {info.height} px)"),
        "bands": info.count,
        "dtype": str(info.dtype),
        "band grid": (
            f"{len(wl)} bands, {float(wl.min()):.1f}-{float(wl.max()):.1f} nm"
            if wl is not None
            else "no wavelengths"
        ),
        "good bands": (
            "all (no bad-band list)"
            if info.bad_bands is None
            else f"{int(info.bad_bands.sum())} of {info.count}; bad: {_band_runs(~info.bad_bands)}"
        ),
        "scale": _scale_label(info.scale),
        "offset": _scale_label(info.offset),
        "nodata": info.nodata,
        "crs": crs_label(crs),
        "geotransform": list(transform) if transform is not None else None,
        "notes": "; ".join(info.notes + ([view.note] if view is not None else [])) or "none",
    }
    if args.json:
        out = dict(facts, crs=crs, size=[width, height])
        out["wavelengths_nm"] = None if wl is None else [float(w) for w in wl]
        out["good_bands"] = None if info.bad_bands is None else [bool(b) for b in info.bad_bands]
        out["scale"] = None if info.scale is None else [float(v) for v in info.scale]
        out["offset"] = None if info.offset is None else [float(v) for v in info.offset]
        print(json.dumps(out, indent=2))
    else:
        for key, value in facts.items():
            print(f"{key:>12}: {value}")
    return 0


def cmd_train(args) -> int:
    from .nets.trainer import train

    rep, bar = _reporter(args, "train")
    try:
        res = train(
            args.inputs,
            args.output,
            recipe=args.recipe,
            exclude=args.exclude or None,
            truth=args.truth,
            stages=None if args.stages is None else tuple(args.stages.split(",")),
            epochs=args.epochs,
            steps_per_epoch=args.steps,
            seed=args.seed,
            device=args.device,
            resume=args.resume,
            keep_checkpoints=args.keep_checkpoints,
            reporter=rep,
            config={"select": args.select},
        )
    finally:
        bar.close()
    auc = "" if res.validation_auc is None else f", validation AUC {res.validation_auc:.4f}"
    print(
        f"wrote {res.model} (recipe {res.recipe}, kept candidate {res.chosen}{auc}, {res.seconds:.0f} s on "
        f"{res.device})"
    )
    return 0


THRESHOLD_VALUE_HELP = (
    "percentile: 0-100 (default 99); false_alarm_rate: the share of valid pixels "
    "flagged, 0-1 (default 0.01); value: the score itself (required); otsu: not used"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fers", description="Hyperspectral anomaly detection (FERS / FERD + RX)."
    )
    p.add_argument("--version", action="version", version=f"fers {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common.add_argument("-v", "--verbose", action="store_true", help="print the engine's log")
    sub = p.add_subparsers(dest="command", required=True)

    # The options of `detect`, shared by `batch`: a batch runs exactly what `fers detect` runs.
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument(
        "--detector",
        choices=DETECTORS,
        default=DEFAULT_DETECTOR,
        help=f"default {DEFAULT_DETECTOR}. crd+rx: the geometric mean of CRD and global RX (the "
        "detector chosen on training labels, bench/results/detector_choice.md); crd: "
        "collaborative representation on a dual window; rx: global RX (several times faster); "
        "lrx: local (dual-window) RX",
    )
    flags.add_argument("--inner", type=int, default=3, help="lrx/crd/crd+rx guard window, odd (default 3)")
    flags.add_argument("--outer", type=int, default=15, help="lrx/crd/crd+rx outer window, odd (default 15)")
    flags.add_argument(
        "--lrx-covariance",
        choices=LOCAL_COVARIANCES,
        default="auto",
        help="local RX background covariance: each ring's own, the scene's (with the ring's "
        "mean), or auto (default): the ring's when it holds at least 2 pixels per band",
    )
    flags.add_argument(
        "--crd-lambda",
        type=float,
        default=DEFAULT_CRD_LAMBDA,
        help="CRD's (and CRD+RX's) distance-weighted regularisation, > 0 (default "
        f"{DEFAULT_CRD_LAMBDA:g}, one value for every scene: it does not depend on the data's scale)",
    )
    flags.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for the lrx/crd/crd+rx kernels of one scene (default: every core this process "
        "may use, from its CPU affinity mask; in batch, each worker's share of the cores)",
    )
    flags.add_argument("--bands", help="1-based band list, e.g. 1-100,120-180")
    flags.add_argument("--wavelengths", help="wavelength ranges in nm, e.g. 400-1340,1450-1800")
    flags.add_argument("--keep-bad-bands", action="store_true", help="keep bands the ENVI bbl marks bad")
    flags.add_argument(
        "--enhancer",
        choices=ENHANCERS,
        default=DEFAULT_ENHANCER,
        help=f"spectral = the spectral enhancer (FEN), full = spectral + spatial enhancers "
        f"(the paper's full method), none = plain detector (default {DEFAULT_ENHANCER})",
    )
    flags.add_argument("--model", help="bundled model name or a .safetensors model file")
    flags.add_argument(
        "--band-mode",
        choices=BAND_MODES,
        default="resample",
        help="fit the input to the model's bands by resampling (default) or by the first N bands",
    )
    flags.add_argument("--fusion", choices=FUSIONS, default="sum", help="how the two branches combine")
    flags.add_argument("--device", choices=DEVICES, default="auto")
    flags.add_argument("--block-rows", type=int, help="rows per block (default: from --memory-mb)")
    flags.add_argument("--memory-mb", type=int, default=1024, help="memory budget in MiB (default 1024)")
    flags.add_argument("--threshold-method", choices=THRESHOLD_METHODS, default="percentile")
    flags.add_argument("--threshold-value", type=float, default=None, help=THRESHOLD_VALUE_HELP)
    _add_reader_flags(flags)

    d = sub.add_parser("detect", parents=[common, flags], help="write an anomaly score raster")
    d.add_argument("input", help="hyperspectral raster: GeoTIFF, ENVI, any GDAL format, or a .mat cube")
    d.add_argument("output", help="score GeoTIFF to write (float32, NaN where the input is invalid)")
    d.add_argument("--mask", help="also write a binary anomaly mask here")
    d.set_defaults(func=cmd_detect)

    b = sub.add_parser(
        "batch",
        parents=[common, flags],
        help="detect on many scenes at once on a Dask cluster (local or remote)",
        description="One task per scene on a Dask cluster, each exactly `fers detect` with "
        "these options; writes <scene>_score.tif in --out-dir and a summary "
        "table (fers-batch-summary.csv/.json). A rerun skips scenes whose output "
        "is complete. Exit status 1 when any scene failed.",
    )
    b.add_argument("inputs", nargs="*", help="scenes (any input `fers detect` reads)")
    b.add_argument("--input-list", help="a text file of scene paths, one per line")
    b.add_argument(
        "--out-dir", required=True, help="folder for the outputs and the summary (created if missing)"
    )
    b.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    b.add_argument("--workers", type=int, help="local cluster: worker processes (default: one per core)")
    b.add_argument("--overwrite", action="store_true", help="redo scenes whose output is already complete")
    b.add_argument("--mask", action="store_true", help="also write <scene>_mask.tif (see --threshold-method)")
    b.add_argument(
        "--split",
        action="store_true",
        help="scenes one after another, each split in row blocks over all workers (for scenes "
        "too large for one worker)",
    )
    b.set_defaults(func=cmd_batch)

    e = sub.add_parser("evaluate", parents=[common], help="AUC and 3-D ROC measures against ground truth")
    e.add_argument("score")
    e.add_argument("truth", help="ground truth raster, BMP mask or .mat file")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.add_argument("--html", help="also write an HTML report with the ROC curve")
    e.set_defaults(func=cmd_evaluate)

    t = sub.add_parser("threshold", parents=[common], help="score raster -> binary mask")
    t.add_argument("score")
    t.add_argument("output")
    t.add_argument("--method", choices=THRESHOLD_METHODS, default="percentile")
    t.add_argument("--value", type=float, default=None, help=THRESHOLD_VALUE_HELP)
    t.set_defaults(func=cmd_threshold)

    i = sub.add_parser(
        "info",
        parents=[common],
        help="product, size, band grid, good bands, scale, nodata, CRS, geotransform",
    )
    i.add_argument("input")
    i.add_argument("--json", action="store_true")
    _add_reader_flags(i)
    i.set_defaults(func=cmd_info)

    tr = sub.add_parser(
        "train",
        parents=[common],
        help="train the enhancers on background rasters",
        description="Train the enhancers. Without options this runs the recipe of the shipped "
        "default model (every candidate, the best kept by the inputs' own ground truth), "
        "so `fers train <the files in its card>` reproduces it.",
    )
    tr.add_argument("inputs", nargs="+", help="background rasters or .mat files")
    tr.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    tr.add_argument(
        "--recipe",
        choices=TRAINING_RECIPES,
        default="default",
        help="default (the shipped model's), separation, separation-spectral, or published "
        "(the paper's FERD / FERS objectives)",
    )
    tr.add_argument("--exclude", nargs="*", help="exclusion masks, one per input (nonzero = do not train on)")
    tr.add_argument(
        "--truth",
        choices=TRUTH_POLICIES,
        default="found",
        help="found (default): use the anomaly truth stored in a .mat input or found beside an "
        "input (e.g. SDDataGt.bmp) to leave its anomalies out and to choose epochs; every use is "
        "logged. none: use no label",
    )
    tr.add_argument("--stages", default=None, help="a subset of the recipe's stages, e.g. 1,2 (default: all)")
    tr.add_argument("--epochs", type=int, default=None, help="epochs of every stage (default: the recipe's)")
    tr.add_argument("--steps", type=int, default=None, help="steps per epoch (default: the recipe's)")
    tr.add_argument("--device", choices=DEVICES, default="auto")
    tr.add_argument(
        "--seed", type=int, default=None, help="train this seed only instead of the recipe's candidates"
    )
    tr.add_argument("--resume", action="store_true", help="continue from the checkpoint beside --output")
    tr.add_argument("--keep-checkpoints", action="store_true", help="keep the checkpoint and candidate files")
    tr.add_argument(
        "--select",
        choices=CHECKPOINT_SELECTIONS,
        default="detection",
        help="which epoch each stage keeps: the best mean RX AUC on the inputs' own ground truth "
        "(inputs without any fall back to 'loss'), or the lowest validation loss",
    )
    tr.set_defaults(func=cmd_train)
    return p


def _add_reader_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-ortho",
        action="store_true",
        help="EMIT: keep the swath geometry (no map georeference) instead of the ortho grid",
    )
    parser.add_argument(
        "--north-up",
        action="store_true",
        help="rotated AVIRIS lines: write a north-up grid instead of the rotated one",
    )


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's ``KeyboardInterrupt``: every
    writer's ``with`` block aborts and removes its partial file on the way out."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise_terminated(signum, frame) -> None:
    for sig in _TERMINATING:  # a second signal during the clean-up ends the process at once
        signal.signal(sig, signal.SIG_DFL)
    raise Terminated(signum)


@contextmanager
def _terminate_like_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP handled like Ctrl-C while a command runs (main thread only: Python
    delivers signals there), previous handlers restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in _TERMINATING}
    for sig in _TERMINATING:
        signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _terminate_like_ctrl_c():
            return args.func(args)
    except Terminated as exc:
        print(
            f"fers: terminated by {signal.Signals(exc.signum).name}; no partial output left", file=sys.stderr
        )
        return 128 + exc.signum
    except Cancelled:
        print("fers: cancelled; no output written", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("fers: interrupted; no output written", file=sys.stderr)
        return 130
    except FersError as exc:
        print(f"fers: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `fers info ... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
