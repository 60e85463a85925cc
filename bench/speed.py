"""Speed and memory benchmark: writes bench/results/speed.md (and speed.json).

Every target is a ratio against a baseline measured in the same run on the same machine:
  1. global RX: ours vs Spectral Python's `spectral.rx` (512x512x200, 1024x1024x200 float32),
  2. local RX: ours vs SPy's windowed RX (128x128x100), results compared pixel by pixel, and CRD
     against local RX on the same cube (one worker and all cores),
  3. `fers detect` (full method) throughput on 1024x1024x200, and its time over the time of
     merely reading the same file with GDAL; the full method on the CPU through the enhancers'
     numpy forward pass (the product's CPU path) against the torch CPU path, runs alternated,
  4. peak resident memory of `fers detect` on a generated 4096x4096x224 int16 GeoTIFF (~7.5 GB),
  5. the same runs on CUDA when a GPU is present,
  6. the memory budget as a limit: peak RSS of `fers detect --memory-mb M` (RX and the full
     method, several M) against 1.2 x M plus the fixed overhead of the interpreter and libraries,
     which is the peak RSS of the same command on a tiny scene, measured in the same run.
The report of record (bench/results/speed.md and .json) is always one whole run of this script:
``--quick`` and ``--only-memory`` print their tables and leave it alone.
Run: .venv/bin/python bench/speed.py [--quick] [--skip-big] [--only-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fers_engine.detectors import global_rx  # noqa: E402
from fers_engine.detectors.lrx import local_rx  # noqa: E402

RESULTS = REPO / "bench" / "results"


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def correlated_cube(rows: int, cols: int, bands: int, seed: int = 0) -> np.ndarray:
    """A cube with realistic band correlation: low-rank smooth spectra plus noise (B, H, W)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(8, rows * cols)).astype(np.float32)
    basis = np.cumsum(rng.normal(size=(bands, 8)), axis=0).astype(np.float32)
    cube = basis @ latent + 0.3 * rng.normal(size=(bands, rows * cols)).astype(np.float32) + 100.0
    return cube.reshape(bands, rows, cols)


def machine() -> Dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_gib:.0f} GiB",
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except Exception:
        info["torch"] = "not installed"
        info["gpu"] = "none"
    import spectral

    info["spectral (SPy)"] = spectral.__version__
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = "not installed"
    return info


def bench_global_rx(sizes, repeats: int) -> List[Dict]:
    import spectral

    rows_out = []
    for rows, cols, bands in sizes:
        cube = correlated_cube(rows, cols, bands)
        hwb = np.ascontiguousarray(cube.transpose(1, 2, 0))
        ours = global_rx(cube)
        # SPy accumulates float32 input in float32 (its own error reaches ~1e-3 on offset data),
        # so equality is checked against SPy fed float64; speed is timed on the float32 cube.
        theirs = spectral.rx(hwb.astype(np.float64))
        rel = float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-12)))
        del theirs
        t_ours = median_time(partial(global_rx, cube), repeats)
        t_spy = median_time(partial(spectral.rx, hwb), repeats)
        rows_out.append(
            {
                "size": f"{rows}x{cols}x{bands}",
                "ours_s": t_ours,
                "spy_s": t_spy,
                "speedup": t_spy / t_ours,
                "max_rel_diff": rel,
            }
        )
        print(
            f"global RX {rows}x{cols}x{bands}: ours {t_ours:.3f} s, SPy {t_spy:.3f} s, "
            f"x{t_spy / t_ours:.2f}, max rel diff {rel:.2e}",
            flush=True,
        )
        del cube, hwb, ours
    return rows_out


def bench_local_rx(size, window, repeats: int) -> Dict:
    """Ours (the compiled kernel when numba is there, with 1 worker and all cores, plus the numpy
    fallback with 1 worker) against SPy, all on one cube."""
    import spectral

    from fers_engine.detectors import compiled as kernels
    from fers_engine.detectors.parallel import available_cores

    rows, cols, bands = size
    cube = correlated_cube(rows, cols, bands, seed=1)
    hwb = np.ascontiguousarray(cube.transpose(1, 2, 0)).astype(np.float64)
    t0 = time.perf_counter()
    theirs = spectral.rx(hwb, window=window)
    t_spy = time.perf_counter() - t0
    cores = available_cores()
    compiled = kernels.available()
    t0 = time.perf_counter()
    ours = local_rx(cube, inner=window[0], outer=window[1], workers=cores)
    t_first = time.perf_counter() - t0  # includes compiling the kernel when numba's cache is cold
    rel = float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-12)))
    t_one = median_time(lambda: local_rx(cube, inner=window[0], outer=window[1]), repeats)
    t_all = median_time(lambda: local_rx(cube, inner=window[0], outer=window[1], workers=cores), repeats)
    t_numpy = None
    if compiled:
        available = kernels.available
        kernels.available = lambda: False
        try:
            t_numpy = median_time(lambda: local_rx(cube, inner=window[0], outer=window[1]), repeats)
        finally:
            kernels.available = available
    out = {
        "size": f"{rows}x{cols}x{bands}",
        "window": f"{window[0]}/{window[1]}",
        "ours_s": t_one,
        "ours_all_cores_s": t_all,
        "cores": cores,
        "spy_s": t_spy,
        "speedup": t_spy / t_one,
        "speedup_all_cores": t_spy / t_all,
        "max_rel_diff": rel,
        "engine": "numba" if compiled else "numpy",
        "first_call_s": t_first,
        "numpy_path_s": t_numpy,
    }
    print(
        f"local RX {out['size']} window {out['window']} ({out['engine']}): ours {t_one:.3f} s (1 worker), "
        f"{t_all:.3f} s ({cores} workers), numpy path {t_numpy if t_numpy is None else round(t_numpy, 3)} s, "
        f"SPy {t_spy:.1f} s, x{t_spy / t_one:.0f} / x{t_spy / t_all:.0f}, max rel diff {rel:.2e}",
        flush=True,
    )
    return out


def bench_crd(size, window, repeats: int) -> Dict:
    """CRD against local RX on one cube and window (compiled kernels when numba is there, with one
    worker and with every core), the numpy CRD path with one worker, and the largest relative
    difference between CRD's two paths."""
    from fers_engine.detectors import compiled as kernels
    from fers_engine.detectors.crd import crd
    from fers_engine.detectors.parallel import available_cores

    rows, cols, bands = size
    inner, outer = window
    cube = correlated_cube(rows, cols, bands, seed=1)
    cores = available_cores()
    crd(cube[:, : outer + 2, : outer + 2], inner=inner, outer=outer)  # compiles on a cold numba cache
    local_rx(cube[:, : outer + 2, : outer + 2], inner=inner, outer=outer)
    ours = crd(cube, inner=inner, outer=outer)
    t_crd = median_time(lambda: crd(cube, inner=inner, outer=outer), repeats)
    t_crd_all = median_time(lambda: crd(cube, inner=inner, outer=outer, workers=cores), repeats)
    t_lrx = median_time(lambda: local_rx(cube, inner=inner, outer=outer), repeats)
    t_lrx_all = median_time(lambda: local_rx(cube, inner=inner, outer=outer, workers=cores), repeats)
    t_numpy, rel = None, None
    if kernels.available():
        available = kernels.available
        kernels.available = lambda: False
        try:
            numpy_scores = crd(cube, inner=inner, outer=outer)
            t_numpy = median_time(lambda: crd(cube, inner=inner, outer=outer), repeats)
        finally:
            kernels.available = available
        rel = float(np.max(np.abs(numpy_scores - ours) / np.maximum(np.abs(ours), 1e-12)))
    out = {
        "size": f"{rows}x{cols}x{bands}",
        "window": f"{inner}/{outer}",
        "cores": cores,
        "engine": "numba" if kernels.available() else "numpy",
        "crd_s": t_crd,
        "crd_all_cores_s": t_crd_all,
        "lrx_s": t_lrx,
        "lrx_all_cores_s": t_lrx_all,
        "crd_over_lrx": t_crd / t_lrx,
        "crd_all_over_one": t_crd / t_crd_all,
        "lrx_all_over_one": t_lrx / t_lrx_all,
        "crd_numpy_s": t_numpy,
        "numpy_vs_compiled_rel_diff": rel,
    }
    print(
        f"CRD {out['size']} window {out['window']} ({out['engine']}): {t_crd:.3f} s (1 worker), "
        f"{t_crd_all:.3f} s ({cores}); local RX {t_lrx:.3f} s / {t_lrx_all:.3f} s; CRD / local RX "
        f"x{t_crd / t_lrx:.2f}; numpy path {t_numpy if t_numpy is None else round(t_numpy, 3)} s",
        flush=True,
    )
    return out


def write_scene_file(path: Path, rows: int, cols: int, bands: int, compress: bool) -> None:
    """An int16 GeoTIFF filled block by block from a correlated cube, never whole in memory
    (written with osgeo.gdal directly, pixel-interleaved like many sensor products)."""
    from osgeo import gdal, osr

    base = (correlated_cube(256, 256, bands, seed=2) * 20).astype(np.int16)
    options = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "INTERLEAVE=PIXEL", "BIGTIFF=YES"]
    if compress:
        options += ["COMPRESS=DEFLATE", "PREDICTOR=2"]
    dst = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, bands, gdal.GDT_Int16, options)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32611)
    dst.SetSpatialRef(srs)
    dst.SetGeoTransform((480000.0, 3.5, 0.0, 3620000.0, 0.0, -3.5))
    rng = np.random.default_rng(3)
    for r0 in range(0, rows, 256):
        h = min(256, rows - r0)
        block = np.tile(base[:, :h], (1, 1, -(-cols // 256)))[:, :, :cols]
        block = block + rng.integers(-3, 4, size=block.shape, dtype=np.int16)
        if dst.WriteArray(block, 0, r0) != 0:
            raise RuntimeError(f"cannot write {path}: {gdal.GetLastErrorMsg()}")
    dst = None  # closes the file


def gdal_read_time(path: Path) -> float:
    """Seconds to read every pixel of every band with osgeo.gdal, in row blocks of 256."""
    from osgeo import gdal

    t0 = time.perf_counter()
    ds = gdal.Open(str(path))
    for r0 in range(0, ds.RasterYSize, 256):
        ds.ReadAsArray(0, r0, ds.RasterXSize, min(256, ds.RasterYSize - r0))
    ds = None
    return time.perf_counter() - t0


def run_fers(args: List[str]) -> Dict:
    """Run the `fers` CLI in a child process; wall time and the child's peak RSS."""
    wrapper = (
        "import resource, subprocess, sys, time; t=time.perf_counter(); "
        "r=subprocess.run(sys.argv[1:]); dt=time.perf_counter()-t; "
        "print(r.returncode, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    cmd = [sys.executable, "-c", wrapper, sys.executable, "-m", "fers_engine.cli", *args, "-q"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    rc, seconds, rss_kb = out.stdout.strip().splitlines()[-1].split()
    if rc != "0":
        raise RuntimeError(f"fers {' '.join(args)} failed: {out.stdout}{out.stderr}")
    return {"seconds": float(seconds), "peak_rss_mib": int(rss_kb) / 1024}


def run_rx_detect(scene: Path, out: Path, enhancer: str, device: str, *extra: str) -> Dict:
    """``run_fers`` of ``fers detect`` with global RX (the detector every timed row of this bench
    measures; the product's default is CRD+RX) and the given enhancer and device."""
    return run_detect(scene, out, enhancer, device, "rx", *extra)


def run_detect(scene: Path, out: Path, enhancer: str, device: str, detector: str, *extra: str) -> Dict:
    """``run_fers`` of ``fers detect`` with the given enhancer, device and detector."""
    return run_fers(
        [
            "detect",
            str(scene),
            str(out),
            "--enhancer",
            enhancer,
            "--detector",
            detector,
            "--device",
            device,
            *extra,
        ]
    )


def drop_cache_hint(path: Path) -> None:
    """Read once so that every timed run sees the file in the page cache (fair to both sides)."""
    gdal_read_time(path)


def bench_detect(work: Path, size, devices: List[str], repeats: int) -> List[Dict]:
    rows, cols, bands = size
    scene = work / f"scene_{rows}x{cols}x{bands}.tif"
    write_scene_file(scene, rows, cols, bands, compress=True)
    drop_cache_hint(scene)
    t_read = median_time(lambda: gdal_read_time(scene), repeats)
    results = []
    for device in devices:
        for enhancer in ("full", "none"):
            runs = [run_rx_detect(scene, work / "out.tif", enhancer, device) for _ in range(repeats)]
            t = statistics.median(r["seconds"] for r in runs)
            mpx = rows * cols / 1e6
            results.append(
                {
                    "size": f"{rows}x{cols}x{bands}",
                    "device": device,
                    "enhancer": enhancer,
                    "seconds": t,
                    "mpx_per_s": mpx / t,
                    "gdal_read_s": t_read,
                    "ratio_to_read": t / t_read,
                    "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
                }
            )
            print(
                f"fers detect {size} {device} enhancer={enhancer}: {t:.2f} s, {mpx / t:.3f} Mpx/s, "
                f"{t / t_read:.1f}x the GDAL read ({t_read:.2f} s)",
                flush=True,
            )
    scene.unlink()
    return results


def bench_enhancer_backends(work: Path, size, repeats: int) -> List[Dict]:
    """The full method on the CPU through each enhancer backend: numpy (``nets.numpy_forward``,
    what the product runs on the CPU) and torch. Runs alternate numpy, torch, numpy, ... in this
    process, so a change in the machine's load hits both alike; the scores are compared too.
    Besides the whole detect, the time spent inside ``Enhancer.features`` (the only stage whose
    code differs between the backends) is summed per run."""
    from osgeo import gdal

    from fers_engine.nets.enhancer import Enhancer
    from fers_engine.pipeline import DetectOptions, detect

    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed: no numpy-against-torch rows", flush=True)
        return []
    rows, cols, bands = size
    scene = work / f"backends_{rows}x{cols}x{bands}.tif"
    write_scene_file(scene, rows, cols, bands, compress=True)
    drop_cache_hint(scene)
    features = Enhancer.features
    spent = [0.0]

    def timed_features(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return features(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    times: Dict[str, List[float]] = {"numpy": [], "torch": []}
    enhancer_times: Dict[str, List[float]] = {"numpy": [], "torch": []}
    scores: Dict[str, np.ndarray] = {}
    Enhancer.features = timed_features
    try:
        for _ in range(repeats):
            for backend in times:
                out = work / f"backend_{backend}.tif"
                spent[0] = 0.0
                t0 = time.perf_counter()
                detect(scene, out, DetectOptions(enhancer="full", device="cpu", backend=backend))
                times[backend].append(time.perf_counter() - t0)
                enhancer_times[backend].append(spent[0])
                ds = gdal.Open(str(out))
                scores[backend] = ds.ReadAsArray().astype(np.float64)
                ds = None
    finally:
        Enhancer.features = features
    scene.unlink()
    a, b = scores["numpy"], scores["torch"]
    rel = float(np.nanmax(np.abs(a - b) / np.abs(b)))
    t_numpy, t_torch = statistics.median(times["numpy"]), statistics.median(times["torch"])
    e_numpy, e_torch = statistics.median(enhancer_times["numpy"]), statistics.median(enhancer_times["torch"])
    row = {
        "size": f"{rows}x{cols}x{bands}",
        "numpy_s": t_numpy,
        "torch_s": t_torch,
        "torch_over_numpy": t_torch / t_numpy,
        "enhancer_numpy_s": e_numpy,
        "enhancer_torch_s": e_torch,
        "enhancer_torch_over_numpy": e_torch / e_numpy,
        "runs": repeats,
        "max_rel_diff": rel,
    }
    print(
        f"full method on the CPU {row['size']}: numpy {t_numpy:.2f} s, torch {t_torch:.2f} s, "
        f"torch / numpy {t_torch / t_numpy:.2f}; enhancers alone numpy {e_numpy:.2f} s, torch {e_torch:.2f} "
        "s, "
        f"torch / numpy {e_torch / e_numpy:.2f}; max rel diff {rel:.1e}",
        flush=True,
    )
    return [row]


def bench_big(work: Path, size, memory_mb: int, devices: List[str], enhancers: List[str]) -> List[Dict]:
    rows, cols, bands = size
    scene = work / f"big_{rows}x{cols}x{bands}.tif"
    t0 = time.perf_counter()
    write_scene_file(scene, rows, cols, bands, compress=False)
    gb = scene.stat().st_size / 1e9
    print(f"wrote {scene.name}: {gb:.2f} GB in {time.perf_counter() - t0:.0f} s", flush=True)
    t_read = gdal_read_time(scene)
    out = []
    for device in devices:
        for enhancer in enhancers:
            r = run_rx_detect(scene, work / "big_out.tif", enhancer, device, "--memory-mb", str(memory_mb))
            out.append(
                {
                    "size": f"{rows}x{cols}x{bands}",
                    "file_gb": gb,
                    "device": device,
                    "enhancer": enhancer,
                    "memory_budget_mib": memory_mb,
                    **r,
                    "gdal_read_s": t_read,
                    "ratio_to_read": r["seconds"] / t_read,
                    "mpx_per_s": rows * cols / 1e6 / r["seconds"],
                }
            )
            print(
                f"big scene {device} enhancer={enhancer}: {r['seconds']:.0f} s, "
                f"peak RSS {r['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    scene.unlink()
    return out


#: The budget rule: peak RSS <= BUDGET_FACTOR x --memory-mb + the fixed overhead.
BUDGET_FACTOR = 1.2


def bench_memory(
    work: Path, size, budgets: List[int], enhancers: List[str], device: str = "cpu", detector: str = "rx"
) -> List[Dict]:
    """Peak RSS of `fers detect --memory-mb M` per enhancer and budget, each judged against the
    rule ``peak <= 1.2 M + overhead``; the overhead is the peak RSS of the same command on a
    16 x 16 scene with the same bands (interpreter, numpy, GDAL, the model and its forward pass when
    the enhancers run)."""
    rows, cols, bands = size
    scene = work / f"memory_{rows}x{cols}x{bands}.tif"
    tiny = work / f"memory_tiny_{bands}.tif"
    write_scene_file(scene, rows, cols, bands, compress=True)
    write_scene_file(tiny, 16, 16, bands, compress=True)
    out = []
    for enhancer in enhancers:
        overhead = run_detect(tiny, work / "tiny_out.tif", enhancer, device, detector)["peak_rss_mib"]
        for budget in budgets:
            r = run_detect(
                scene, work / "memory_out.tif", enhancer, device, detector, "--memory-mb", str(budget)
            )
            limit = BUDGET_FACTOR * budget + overhead
            out.append(
                {
                    "size": f"{rows}x{cols}x{bands}",
                    "device": device,
                    "enhancer": enhancer,
                    "detector": detector,
                    "memory_budget_mib": budget,
                    "overhead_mib": overhead,
                    "limit_mib": limit,
                    "peak_rss_mib": r["peak_rss_mib"],
                    "seconds": r["seconds"],
                    "load_average": os.getloadavg()[0],
                    "within": r["peak_rss_mib"] <= limit,
                }
            )
            print(
                f"memory {size} enhancer={enhancer} budget {budget} MiB: peak {r['peak_rss_mib']:.0f} MiB, "
                f"limit {limit:.0f} MiB (1.2 x {budget} + overhead {overhead:.0f}): "
                f"{'within' if out[-1]['within'] else 'OVER'}",
                flush=True,
            )
    scene.unlink()
    tiny.unlink()
    return out


def to_markdown(report: Dict) -> str:
    m = report["machine"]
    lines = [
        "# Speed and memory",
        "",
        f"Generated by `{report.get('command', 'bench/speed.py')}` on {report['date']} "
        f"({report['seconds']:.0f} s in all, one run"
        + (", without the big scene (`--skip-big`)" if report.get("skip_big") else "")
        + "). "
        "Every ratio compares two runs made in this same session on this machine; times are "
        "medians of repeated runs unless a row says otherwise."
        + (
            f" Load average {report['load_start']} at the start and {report['load_end']} at the end "
            "(the machine is shared: other jobs' load slows the times, not the memory figures)."
            if "load_start" in report
            else ""
        ),
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in m.items()),
        "",
    ]
    if report.get("stopped_before"):
        lines += [
            f"**This run has not finished (or was stopped): no figures yet for "
            f"{', '.join(report['stopped_before'])}.**",
            "",
        ]
    lines += [
        "## Global RX against Spectral Python (`spectral.rx`)",
        "",
        "| cube (rows x cols x bands, float32) | ours (s) | SPy (s) | SPy / ours "
        "| max relative difference to SPy (float64) |",
        "|---|---|---|---|---|",
    ]
    for r in report.get("global_rx", []):
        lines.append(
            f"| {r['size']} | {r['ours_s']:.3f} | {r['spy_s']:.3f} | {r['speedup']:.2f}x | "
            f"{r['max_rel_diff']:.1e} |"
        )
    engine = report["local_rx"][0].get("engine", "numpy") if report.get("local_rx") else "numpy"
    lines += [
        "",
        "## Local RX against SPy's windowed RX (`spectral.rx(window=(inner, outer))`)",
        "",
        "SPy runs as shipped (a Python loop over pixels, numpy's BLAS threads). Ours runs "
        + (
            "through the compiled kernel (numba, `fers-hsi[fast]`)"
            if engine == "numba"
            else "through the numpy path (numba is not installed)"
        )
        + " once with one worker and once with one worker per core (`local_rx(..., workers=N)`); "
        "the first call, which compiles the kernel when numba's cache is cold, is not in the medians"
        + (
            ", and the numpy fallback (no numba) is timed with one worker for comparison."
            if engine == "numba"
            else "."
        ),
        "",
        "| cube | windows inner/outer | ring pixels | ours, 1 worker (s) | ours, all cores (s) | "
        "first call (s) | numpy path, 1 worker (s) | SPy (s, one run) "
        "| SPy / ours (1 worker) | SPy / ours (all cores) | max relative difference |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.get("local_rx", []):
        inner, outer = (int(v) for v in r["window"].split("/"))
        all_s = r.get("ours_all_cores_s")
        first, numpy_s = r.get("first_call_s"), r.get("numpy_path_s")
        lines.append(
            f"| {r['size']} | {r['window']} | {outer * outer - inner * inner} | {r['ours_s']:.3f} | "
            + (f"{all_s:.3f} ({r['cores']})" if all_s else "-")
            + " | "
            + (f"{first:.2f}" if first is not None else "-")
            + " | "
            + (f"{numpy_s:.3f}" if numpy_s is not None else "-")
            + f" | {r['spy_s']:.1f} | "
            f"{r['speedup']:.0f}x | "
            + (f"{r['speedup_all_cores']:.0f}x" if all_s else "-")
            + f" | {r['max_rel_diff']:.1e} |"
        )
    lines += (
        [
            "",
            "Each pixel needs an exact factorisation of its own (bands + 2)-square ring covariance, "
            "so our time is bounded below by one small Cholesky per pixel whatever the window. "
            + (_local_rx_verdict(report["local_rx"]) if report.get("local_rx") else ""),
            "",
        ]
        + _crd_lines(report.get("crd", []))
        + [
            "## `fers detect --detector rx` throughput (int16 GeoTIFF, DEFLATE, in the page cache)",
            "",
            "| scene | device | enhancer | time (s) | Mpx/s | GDAL read alone (s) | time / read | peak RSS "
            "(MiB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
    )
    for r in report.get("detect", []):
        lines.append(
            f"| {r['size']} | {r['device']} | {r['enhancer']} | {r['seconds']:.2f} | {r['mpx_per_s']:.3f} | "
            f"{r['gdal_read_s']:.2f} | {r['ratio_to_read']:.1f} | {r['peak_rss_mib']:.0f} |"
        )
    if report.get("backends"):
        lines += [
            "",
            "## The full method on the CPU: the numpy forward pass against torch",
            "",
            "`fers detect` runs the enhancers on the CPU through numpy (`nets/numpy_forward.py`), "
            "so the plugin zip needs no torch; torch serves GPUs and training. Both backends run the "
            "same detect on the same scene, alternated run by run; the scores differ only by float32 "
            "rounding (the tests bound it by the torch path's own rounding).",
            "",
            "| scene (int16) | detect, numpy (s) | detect, torch (s) | torch / numpy | enhancers alone, "
            "numpy (s) "
            "| enhancers alone, torch (s) | torch / numpy | runs each | max relative difference of scores |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in report["backends"]:
            alone = (
                f"{r['enhancer_numpy_s']:.2f} | {r['enhancer_torch_s']:.2f} | "
                f"{r['enhancer_torch_over_numpy']:.2f}"
                if "enhancer_numpy_s" in r
                else "- | - | -"
            )
            lines.append(
                f"| {r['size']} | {r['numpy_s']:.2f} | {r['torch_s']:.2f} | {r['torch_over_numpy']:.2f} | "
                f"{alone} | {r['runs']} | {r['max_rel_diff']:.1e} |"
            )
        lines += ["", _backend_verdict(report["backends"])]
    if report.get("big"):
        lines += _big_lines(report["big"])
    if report.get("memory"):
        lines += _memory_lines(report)
    if report["machine"].get("gpu", "none") == "none":
        lines += [
            "",
            "No GPU was available to this run, so there are no CUDA rows; on a machine with one, "
            "the same script adds them (`--device cuda`).",
        ]
    return "\n".join(lines) + "\n"


def _memory_lines(report: Dict) -> List[str]:
    """The memory-budget section: each row against the rule."""
    lines = [
        "",
        "## The memory budget as a limit",
        "",
        f"Rule: peak RSS <= {BUDGET_FACTOR} x `--memory-mb` + the fixed overhead, the peak RSS of the "
        "same command on a 16 x 16 scene with the same bands (the interpreter, numpy, GDAL, and "
        "the model and its forward pass when the enhancers run), measured in this run. How the "
        "budget is shared out: `fers_engine/memory.py`. Detector: "
        f"`--detector {report['memory'][0].get('detector', 'rx')}`. " + _memory_verdict(report["memory"]),
        "",
        "| scene (int16, DEFLATE) | device | enhancer | budget (MiB) | overhead (MiB) | limit (MiB) "
        "| peak RSS (MiB) | verdict | time (s) | load average after the run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["memory"]:
        load = r.get("load_average")
        lines.append(
            f"| {r['size']} | {r['device']} | {r['enhancer']} | {r['memory_budget_mib']} | "
            f"{r['overhead_mib']:.0f} | {r['limit_mib']:.0f} | {r['peak_rss_mib']:.0f} | "
            f"{'within' if r['within'] else 'over'} | {r['seconds']:.1f} | "
            + ("-" if load is None else f"{load:.1f}")
            + " |"
        )
    lines += [
        "",
        "Peak RSS does not depend on the machine's load; the times do (a load average above "
        f"the {report['machine'].get('cores', '?')} cores means other jobs shared them), so they show "
        "the cost of smaller "
        "blocks at small budgets only roughly.",
    ]
    return lines


def _crd_lines(rows: List[Dict]) -> List[str]:
    """The CRD section: its speed against local RX on the same cube, and what more workers buy."""
    if not rows:
        return []
    lines = [
        "## CRD against local RX, and worker threads",
        "",
        "CRD (collaborative representation, `--detector crd`) and local RX on the same cube and "
        "windows, each with one worker and with one worker per core this process may use (its CPU "
        "affinity mask); every pixel of CRD solves its own weighted system, so it has no sliding "
        "sums to share. CRD / local RX is the ratio of their one-worker times; the numpy path is "
        "CRD without numba, and its largest relative difference to the compiled kernel is shown.",
        "",
        "| cube | windows inner/outer | engine | CRD, 1 worker (s) | CRD, all cores (s) | local RX, 1 "
        "worker (s) "
        "| local RX, all cores (s) | CRD / local RX | speed-up of all cores (CRD / local RX) "
        "| CRD numpy path, 1 worker (s) | numpy vs compiled, max rel. diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        numpy_s, rel = r.get("crd_numpy_s"), r.get("numpy_vs_compiled_rel_diff")
        lines.append(
            f"| {r['size']} | {r['window']} | {r['engine']} | {r['crd_s']:.3f} | "
            f"{r['crd_all_cores_s']:.3f} ({r['cores']}) | {r['lrx_s']:.3f} | "
            f"{r['lrx_all_cores_s']:.3f} ({r['cores']}) | {r['crd_over_lrx']:.2f}x | "
            f"{r['crd_all_over_one']:.2f}x / {r['lrx_all_over_one']:.2f}x | "
            + (f"{numpy_s:.3f}" if numpy_s is not None else "-")
            + " | "
            + (f"{rel:.1e}" if rel is not None else "-")
            + " |"
        )
    return lines + [""]


def _backend_verdict(rows: List[Dict]) -> str:
    """Whether the numpy path loses speed against torch on the CPU (the issue's rule: it must not),
    judged on the whole detect; the enhancers-alone ratio is said beside it."""
    slowest = min(r["torch_over_numpy"] for r in rows)
    alone = [r["enhancer_torch_over_numpy"] for r in rows if "enhancer_torch_over_numpy" in r]
    beside = f" The enhancers alone: torch / numpy {min(alone):.2f} at the lowest." if alone else ""
    if slowest >= 1.0:
        return (
            f"No speed loss: the numpy path is at least as fast as torch on every scene "
            f"(torch / numpy >= {slowest:.2f}).{beside}"
        )
    return (
        f"Speed loss: the numpy path is slower than torch on the CPU (torch / numpy down to {slowest:.2f})."
        f"{beside}"
    )


def _memory_verdict(rows: List[Dict]) -> str:
    """Whether every budget row keeps the rule (issue 15: the budget is a limit, not a target)."""
    over = [r for r in rows if not r["within"]]
    worst = max(r["peak_rss_mib"] / r["limit_mib"] for r in rows)
    if not over:
        return (
            f"Every row is within the rule ({len(rows)} of {len(rows)}; the highest peak is "
            f"{100 * worst:.0f} % of its limit)."
        )
    names = ", ".join(f"{r['enhancer']} at {r['memory_budget_mib']} MiB" for r in over)
    return (
        f"Over the rule: {len(over)} of {len(rows)} rows ({names}; worst {100 * worst:.0f} % of its limit)."
    )


def _local_rx_verdict(rows: List[Dict]) -> str:
    """Which windows reach the issue's 50x, with one worker and with all cores."""
    parts = []
    for key, label in (("speedup", "With one worker"), ("speedup_all_cores", "With all cores")):
        speeds = [r.get(key, 0.0) for r in rows]
        reached = [r["window"] for r, x in zip(rows, speeds) if x >= 50]
        if len(reached) == len(rows):
            parts.append(f"{label}: 50x reached at every window (lowest {min(speeds):.0f}x).")
        elif reached:
            parts.append(f"{label}: 50x reached at {', '.join(reached)} only (lowest {min(speeds):.0f}x).")
        else:
            parts.append(f"{label}: 50x not reached (best {max(speeds):.0f}x).")
    return " ".join(parts)


def run_memory_rows(
    work: Path, quick: bool, detector: str = "rx", enhancers: Sequence[str] = ("none", "full"), size=None
) -> List[Dict]:
    """The budget rows: a 1 Mpx, 200-band scene (the issue's case) at three budgets, or ``size``."""
    if quick:
        return bench_memory(work, (256, 256, 50), [64, 256], list(enhancers), detector=detector)
    return bench_memory(work, size or (1024, 1024, 200), [256, 512, 1024], list(enhancers), detector=detector)


def render(json_path: Path) -> None:
    """Rewrite the Markdown table from a saved JSON report (no measurement): the report of record,
    or a memory-<detector>.json of ``--only-memory`` (``--render --out bench/results/memory-crd+rx.md``)."""
    report = json.loads(json_path.read_text())
    only_memory = set(report) <= {"command", "date", "machine", "memory", "seconds"}
    json_path.with_suffix(".md").write_text((memory_markdown if only_memory else to_markdown)(report))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--skip-big", action="store_true", help="skip the 7.5 GB scene")
    parser.add_argument("--big-enhancers", default="none,full", help="enhancers to run on the big scene")
    parser.add_argument(
        "--only-memory",
        action="store_true",
        help="run only the memory-budget rows (printed; the saved report is left alone)",
    )
    parser.add_argument(
        "--memory-detector",
        default="rx",
        help="with --only-memory: the detector of the budget rows; other than rx, the rows are saved "
        "as bench/results/memory-<detector>.md (+ .json)",
    )
    parser.add_argument("--memory-enhancers", default="none,full", help="with --only-memory")
    parser.add_argument(
        "--memory-size", default=None, help="with --only-memory: ROWSxCOLSxBANDS (default 1024x1024x200)"
    )
    parser.add_argument(
        "--work", default=None, help="folder for the generated files (default: a temp folder)"
    )
    parser.add_argument(
        "--only-big",
        action="store_true",
        help="run only the big scene (--big-enhancers); its own report: bench/results/speed-big.md",
    )
    parser.add_argument("--out", default=str(RESULTS / "speed.md"))
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the saved .json")
    args = parser.parse_args()
    if args.render:
        render(Path(args.out).with_suffix(".json"))
        return 0

    t0 = time.perf_counter()
    if args.only_memory:  # a check of the budget rows alone: printed, never merged into the report of record
        size = tuple(int(v) for v in args.memory_size.split("x")) if args.memory_size else None
        with tempfile.TemporaryDirectory(dir=args.work) as tmp:
            rows = run_memory_rows(
                Path(tmp), args.quick, args.memory_detector, args.memory_enhancers.split(","), size
            )
        report = {
            "command": "bench/speed.py " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": machine(),
            "memory": rows,
            "seconds": time.perf_counter() - t0,
        }
        text = to_markdown(report) if args.memory_detector == "rx" else memory_markdown(report)
        print(text)
        if args.memory_detector != "rx" and not args.quick:
            out = RESULTS / f"memory-{args.memory_detector}.md"
            out.write_text(text)
            out.with_suffix(".json").write_text(json.dumps(report, indent=2))
        return 0
    report: Dict = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "load_start": f"{os.getloadavg()[0]:.1f}",
        "skip_big": args.skip_big,
    }
    try:
        import torch

        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    except Exception:
        devices = ["cpu"]
    if args.only_big:  # the big scene alone, as its own report of record
        with tempfile.TemporaryDirectory(dir=args.work) as tmp:
            size = (512, 512, 64) if args.quick else (4096, 4096, 224)
            budget = 256 if args.quick else 1024
            report["big"] = bench_big(Path(tmp), size, budget, devices, args.big_enhancers.split(","))
        report["seconds"] = time.perf_counter() - t0
        report["load_end"] = f"{os.getloadavg()[0]:.1f}"
        text = big_markdown(report)
        print(text)
        if not args.quick:
            (RESULTS / "speed-big.md").write_text(text)
            (RESULTS / "speed-big.json").write_text(json.dumps(report, indent=2))
        return 0
    print("machine:", report["machine"], flush=True)
    out = Path(args.out)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        # What the issues judge (the memory rule, the numpy path's speed) first; the report of
        # record is saved after every section, so a run stopped early says where it stopped.
        sections = [
            ("memory", lambda: run_memory_rows(work, args.quick)),
            # 512 x 512 is torch's best case (its 256-pixel tiles fit exactly); 700 x 900 is not
            (
                "backends",
                lambda: (
                    bench_enhancer_backends(work, (128, 128, 50), 2)
                    if args.quick
                    else [
                        row
                        for size in ((512, 512, 200), (700, 900, 200))
                        for row in bench_enhancer_backends(work, size, 5)
                    ]
                ),
            ),
            (
                "detect",
                lambda: bench_detect(
                    work, (128, 128, 50) if args.quick else (1024, 1024, 200), devices, 1 if args.quick else 2
                ),
            ),
            (
                "global_rx",
                lambda: (
                    bench_global_rx([(128, 128, 50)], 2)
                    if args.quick
                    else bench_global_rx([(512, 512, 200), (1024, 1024, 200)], 3)
                ),
            ),
            # SPy's cost grows with the ring's pixel count, ours barely does: report several windows,
            # the default (3, 15) first, rather than pick the one that flatters us.
            (
                "local_rx",
                lambda: (
                    [bench_local_rx((24, 24, 10), (3, 9), 2)]
                    if args.quick
                    else [bench_local_rx((128, 128, 100), w, 3) for w in ((3, 15), (5, 21), (9, 31))]
                ),
            ),
            (
                "crd",
                lambda: (
                    [bench_crd((24, 24, 10), (3, 9), 2)]
                    if args.quick
                    else [bench_crd((128, 128, 100), w, 3) for w in ((3, 15), (7, 15))]
                ),
            ),
        ]
        if not args.skip_big:
            size = (512, 512, 64) if args.quick else (4096, 4096, 224)
            sections.append(
                (
                    "big",
                    lambda: bench_big(
                        work, size, 256 if args.quick else 1024, devices, args.big_enhancers.split(",")
                    ),
                )
            )
        for i, (name, run) in enumerate(sections):
            report["stopped_before"] = [n for n, _ in sections[i:]]
            if not args.quick:
                save(report, out, t0)
            report[name] = run()
    report.pop("stopped_before")
    if args.quick:  # a smoke run: the figures of record come from full runs only
        report["seconds"] = time.perf_counter() - t0
        report["load_end"] = f"{os.getloadavg()[0]:.1f}"
        print(to_markdown(report))
        return 0
    save(report, out, t0)
    print(f"wrote {out}")
    return 0


def _big_lines(rows: List[Dict]) -> List[str]:
    """The section of the scene larger than the memory budget."""
    lines = [
        "",
        "## A scene larger than the memory budget",
        "",
        "`fers detect --detector rx` with each enhancer, on a GeoTIFF in 256 x 256 pixel-interleaved "
        "tiles (one row of tiles holds every band of 256 rows).",
        "",
        "| scene | file | device | enhancer | budget (MiB) | time (s) | Mpx/s | peak RSS (MiB) | time / "
        "GDAL read |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} int16 | {r['file_gb']:.2f} GB | {r['device']} | {r['enhancer']} | "
            f"{r['memory_budget_mib']} | {r['seconds']:.0f} | {r['mpx_per_s']:.3f} | "
            f"{r['peak_rss_mib']:.0f} | {r['ratio_to_read']:.1f} |"
        )
    return lines


def memory_markdown(report: Dict) -> str:
    """The report of ``--only-memory`` with another detector: the memory section alone."""
    header = to_markdown({k: v for k, v in report.items() if k != "memory"}).split("\n## ")[0].rstrip()
    return header + "\n" + "\n".join(_memory_lines(report)) + "\n"


def big_markdown(report: Dict) -> str:
    """The report of ``--only-big``: the big scene's section alone."""
    header = to_markdown({k: v for k, v in report.items() if k != "big"}).split("\n## ")[0].rstrip()
    return header + "\n" + "\n".join(_big_lines(report["big"])) + "\n"


def save(report: Dict, out: Path, t0: float) -> None:
    """Write the report of record as it stands (Markdown and JSON)."""
    report["seconds"] = time.perf_counter() - t0
    report["load_end"] = f"{os.getloadavg()[0]:.1f}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(report))
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
