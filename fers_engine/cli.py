"""The `fers` console script: detect, evaluate, threshold, info, train.

Bad input ends with one line on stderr naming the problem (exit status 2), never a traceback;
Ctrl-C ends with no partial output (exit status 130).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from . import __version__
from .choices import (BAND_MODES, CHECKPOINT_SELECTIONS, DETECTORS, DEVICES, ENHANCERS, FUSIONS,
                      LOCAL_COVARIANCES, THRESHOLD_METHODS)
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

            self.bar = tqdm(total=1000, desc=label, unit="‰", leave=False,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def __call__(self, fraction: float) -> None:
        if self.bar is not None:
            self.bar.n = int(fraction * 1000)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _reporter(args, label: str) -> Tuple[Reporter, _Bar]:
    bar = _Bar(label, enabled=not args.quiet and sys.stderr.isatty())

    def log(msg: str) -> None:
        if args.verbose:
            (bar.bar.write if bar.bar is not None else print)(msg, file=sys.stderr)

    def warn(msg: str) -> None:
        (bar.bar.write if bar.bar is not None else print)("warning: " + msg, file=sys.stderr)

    return Reporter(progress=bar, log=log, warn=warn), bar


def _reader_options(args):
    from .io import ReaderOptions

    return ReaderOptions(ortho=not args.no_ortho, north_up=args.north_up)


def cmd_detect(args) -> int:
    from .pipeline import DetectOptions, detect

    bands = parse_bands(args.bands) if args.bands else None
    options = DetectOptions(
        detector=args.detector, inner=args.inner, outer=args.outer,
        local_covariance=args.lrx_covariance, bands=bands,
        wavelength_ranges=parse_ranges(args.wavelengths, integers=False) if args.wavelengths else None,
        drop_bad_bands=not args.keep_bad_bands, enhancer=args.enhancer, model=args.model,
        band_mode=args.band_mode, fusion=args.fusion, device=args.device, block_rows=args.block_rows,
        memory_mb=args.memory_mb, reader=_reader_options(args))
    rep, bar = _reporter(args, "detect")
    try:
        result = detect(args.input, args.output, options, rep, mask_output=args.mask,
                        threshold_method=args.threshold_method, threshold_value=args.threshold_value)
    except BandIndexError as e:  # --bands counts from 1: name the band as the user typed it
        raise e.one_based() from None
    finally:
        bar.close()
    print(f"wrote {result.output} ({result.width} x {result.height} px, device {result.device}, "
          f"{result.seconds:.2f} s)")
    if result.mask_output is not None:
        print(f"wrote {result.mask_output} (threshold {result.threshold:.6g})")
    return 0


def cmd_evaluate(args) -> int:
    from .pipeline import evaluate_rasters

    result = evaluate_rasters(args.score, args.truth)
    roc = result.pop("roc")
    if args.html:
        from .report import write_html_report

        write_html_report(args.html, result, roc, title=f"FERS evaluation of {Path(args.score).name}")
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
            epsg = next((m.GetAuthorityCode(None) for m, confidence in srs.FindMatches()
                         if confidence >= 70 and m.GetAuthorityName(None) == "EPSG"), None)
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
    height, width, crs, transform = ((info.height, info.width, info.crs, info.transform) if view is None
                                     else (view.height, view.width, view.crs, view.transform))
    facts = {
        "path": str(info.path),
        "product": info.product or "plain raster",
        "size": f"{width} x {height} px" + ("" if view is None else
                                            f" (map grid; read as {info.width} x {info.height} px)"),
        "bands": info.count,
        "dtype": str(info.dtype),
        "band grid": (f"{len(wl)} bands, {float(wl.min()):.1f}-{float(wl.max()):.1f} nm"
                      if wl is not None else "no wavelengths"),
        "good bands": ("all (no bad-band list)" if info.bad_bands is None else
                       f"{int(info.bad_bands.sum())} of {info.count}; bad: {_band_runs(~info.bad_bands)}"),
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
        path = train(args.inputs, exclude=args.exclude or None, stages=tuple(args.stages.split(",")),
                     epochs=args.epochs, device=args.device, out_path=args.output, seed=args.seed,
                     resume=args.resume, reporter=rep, config={"select": args.select})
    finally:
        bar.close()
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fers", description="Hyperspectral anomaly detection (FERS / FERD + RX).")
    p.add_argument("--version", action="version", version=f"fers {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common.add_argument("-v", "--verbose", action="store_true", help="print the engine's log")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("detect", parents=[common], help="write an anomaly score raster")
    d.add_argument("input", help="hyperspectral raster: GeoTIFF, ENVI, any GDAL format, or a .mat cube")
    d.add_argument("output", help="score GeoTIFF to write (float32, NaN where the input is invalid)")
    d.add_argument("--detector", choices=DETECTORS, default="rx", help="global RX or local (windowed) RX")
    d.add_argument("--inner", type=int, default=3, help="local RX guard window, odd (default 3)")
    d.add_argument("--outer", type=int, default=15, help="local RX outer window, odd (default 15)")
    d.add_argument("--lrx-covariance", choices=LOCAL_COVARIANCES, default="auto",
                   help="local RX background covariance: each ring's own, the scene's (with the ring's "
                        "mean), or auto (default): the ring's when it holds at least 2 pixels per band")
    d.add_argument("--bands", help="1-based band list, e.g. 1-100,120-180")
    d.add_argument("--wavelengths", help="wavelength ranges in nm, e.g. 400-1340,1450-1800")
    d.add_argument("--keep-bad-bands", action="store_true", help="keep bands the ENVI bbl marks bad")
    d.add_argument("--enhancer", choices=ENHANCERS, default="full",
                   help="full = spectral + spatial enhancers (default), spectral = FEN only, none = plain detector")
    d.add_argument("--model", help="bundled model name or a .safetensors model file")
    d.add_argument("--band-mode", choices=BAND_MODES, default="resample",
                   help="fit the input to the model's bands by resampling (default) or by the first N bands")
    d.add_argument("--fusion", choices=FUSIONS, default="sum", help="how the two branches combine")
    d.add_argument("--device", choices=DEVICES, default="auto")
    d.add_argument("--block-rows", type=int, help="rows per block (default: from --memory-mb)")
    d.add_argument("--memory-mb", type=int, default=1024, help="memory budget in MiB (default 1024)")
    d.add_argument("--mask", help="also write a binary anomaly mask here")
    d.add_argument("--threshold-method", choices=THRESHOLD_METHODS,
                   default="percentile")
    d.add_argument("--threshold-value", type=float, default=99.0)
    _add_reader_flags(d)
    d.set_defaults(func=cmd_detect)

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
    t.add_argument("--value", type=float, default=99.0)
    t.set_defaults(func=cmd_threshold)

    i = sub.add_parser("info", parents=[common],
                       help="product, size, band grid, good bands, scale, nodata, CRS, geotransform")
    i.add_argument("input")
    i.add_argument("--json", action="store_true")
    _add_reader_flags(i)
    i.set_defaults(func=cmd_info)

    tr = sub.add_parser("train", parents=[common], help="train the enhancers on background rasters")
    tr.add_argument("inputs", nargs="+", help="background rasters or .mat files")
    tr.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    tr.add_argument("--exclude", nargs="*", help="exclusion masks, one per input (nonzero = do not train on)")
    tr.add_argument("--stages", default="0,1,2", help="stages to run, e.g. 0,1,2 or 2")
    tr.add_argument("--epochs", type=int, default=None)
    tr.add_argument("--device", choices=DEVICES, default="auto")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--resume", action="store_true", help="continue from the checkpoint beside --output")
    tr.add_argument("--select", choices=CHECKPOINT_SELECTIONS, default="detection",
                    help="which epoch each of stages 1-2 keeps: the best mean RX AUC on the inputs' own "
                    "ground truth (inputs without any fall back to 'loss'), or the lowest validation loss")
    tr.set_defaults(func=cmd_train)
    return p


def _add_reader_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-ortho", action="store_true",
                        help="EMIT: keep the swath geometry (no map georeference) instead of the ortho grid")
    parser.add_argument("--north-up", action="store_true",
                        help="rotated AVIRIS lines: write a north-up grid instead of the rotated one")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
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
