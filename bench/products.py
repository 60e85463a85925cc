"""Memory and time of `fers detect` on a full-size EMIT L2A granule, against the peer readers' way.

Every known EMIT reader loads the whole (downtrack, crosstrack, bands) reflectance array and then
applies the GLT (``out[valid] = swath[glt_y - 1, glt_x - 1]``). This bench writes a synthetic
granule in the product's layout at EMIT's real size (1280 x 1242 x 285 float32, 1.8 GB; a rotated
GLT), then runs, each in a child process whose peak resident memory is measured:
  1. baseline: read the whole reflectance array and GLT-lookup it to the ortho grid (what the peer
     readers do before any analysis),
  2. ours: `fers detect --enhancer none --memory-mb 256` (RX on the swath, scores written on the
     ortho grid through the GLT),
and prints peak memory and time of both and their ratios. Writes bench/results/products.md/.json.
Run: .venv/bin/python bench/products.py [--rows N]   (--rows 320 for a quick run)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from speed import run_fers  # noqa: E402  (the one child-process runner of the benches)

RESULTS = REPO / "bench" / "results"
COLS, BANDS = 1242, 285

BASELINE = """
import sys, time
import numpy as np
from osgeo import gdal
t = time.perf_counter()
root = gdal.OpenEx(sys.argv[1], gdal.OF_MULTIDIM_RASTER).GetRootGroup()
swath = root.OpenMDArray("reflectance").ReadAsArray()
gx = root.OpenMDArrayFromFullname("/location/glt_x").ReadAsArray()
gy = root.OpenMDArrayFromFullname("/location/glt_y").ReadAsArray()
valid = (gx > 0) & (gy > 0)
out = np.full(gx.shape + (swath.shape[2],), -9999, np.float32)
out[valid] = swath[gy[valid] - 1, gx[valid] - 1]
print(time.perf_counter() - t)
"""


def write_granule(path: Path, rows: int, angle_deg: float = 12.0) -> None:
    """The EMIT L2A RFL layout, written in row chunks so this process stays small."""
    from osgeo import gdal, osr

    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([[0, 0], [0, COLS], [rows, 0], [rows, COLS]], float) @ rot.T
    lo = np.floor(corners.min(axis=0))
    h, w = (int(v) + 1 for v in np.ceil(corners.max(axis=0)) - lo)
    ds = gdal.GetDriverByName("netCDF").CreateMultiDimensional(str(path))
    root = ds.GetRootGroup()
    dims = [
        root.CreateDimension(n, None, None, int(s))
        for n, s in (
            ("downtrack", rows),
            ("crosstrack", COLS),
            ("bands", BANDS),
            ("ortho_y", h),
            ("ortho_x", w),
        )
    ]
    f32 = gdal.ExtendedDataType.Create(gdal.GDT_Float32)
    i32 = gdal.ExtendedDataType.Create(gdal.GDT_Int32)
    refl = root.CreateMDArray("reflectance", dims[:3], f32)
    refl.SetNoDataValueDouble(-9999.0)
    rng = np.random.default_rng(0)
    spectrum = np.linspace(0.05, 0.4, BANDS, dtype=np.float32)
    for r0 in range(0, rows, 64):
        n = int(min(64, rows - r0))
        block = spectrum * rng.uniform(0.5, 1.5, (n, COLS, 1)).astype(np.float32)
        block += rng.normal(0, 0.01, (n, COLS, BANDS)).astype(np.float32)
        refl.Write(block, array_start_idx=[r0, 0, 0], count=[n, COLS, BANDS])
    sbp = root.CreateGroup("sensor_band_parameters")
    wl = np.linspace(381.0, 2493.0, BANDS).astype(np.float32)
    sbp.CreateMDArray("wavelengths", [dims[2]], f32).Write(wl)
    sbp.CreateMDArray("fwhm", [dims[2]], f32).Write(np.full(BANDS, 8.5, np.float32))
    good = (((wl < 1320) | (wl > 1440)) & ((wl < 1770) | (wl > 1960))).astype(np.uint8)
    sbp.CreateMDArray("good_wavelengths", [dims[2]], gdal.ExtendedDataType.Create(gdal.GDT_Byte)).Write(good)
    loc = root.CreateGroup("location")
    gx_arr = loc.CreateMDArray("glt_x", dims[3:], i32)
    gy_arr = loc.CreateMDArray("glt_y", dims[3:], i32)
    for r0 in range(0, h, 256):
        n = int(min(256, h - r0))
        oy, ox = np.meshgrid(np.arange(r0, r0 + n) + lo[0] + 0.5, np.arange(w) + lo[1] + 0.5, indexing="ij")
        src = np.stack([oy.ravel(), ox.ravel()], axis=1) @ rot
        r, c = np.floor(src[:, 0]).reshape(n, w).astype(int), np.floor(src[:, 1]).reshape(n, w).astype(int)
        inside = (r >= 0) & (r < rows) & (c >= 0) & (c < COLS)
        gx_arr.Write(np.where(inside, c + 1, 0).astype(np.int32), array_start_idx=[r0, 0], count=[n, w])
        gy_arr.Write(np.where(inside, r + 1, 0).astype(np.int32), array_start_idx=[r0, 0], count=[n, w])
    root.CreateAttribute("geotransform", [6], gdal.ExtendedDataType.Create(gdal.GDT_Float64)).Write(
        [-62.5, 0.000542, 0.0, -39.3, 0.0, -0.000542]
    )
    srs = root.CreateAttribute("spatial_ref", [], gdal.ExtendedDataType.CreateString())
    srs.Write(osr.SRS_WKT_WGS84_LAT_LONG)
    del srs, gx_arr, gy_arr, loc, sbp, refl, root, ds


def run_baseline(path: Path) -> dict:
    wrapper = (
        "import resource, subprocess, sys, time; t=time.perf_counter(); "
        "r=subprocess.run(sys.argv[1:]); dt=time.perf_counter()-t; "
        "print(r.returncode, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-c", BASELINE, str(path)],
        capture_output=True,
        text=True,
    )
    rc, seconds, rss_kb = out.stdout.strip().splitlines()[-1].split()
    if rc != "0":
        raise RuntimeError(f"baseline failed: {out.stdout}{out.stderr}")
    return {"seconds": float(seconds), "peak_rss_mib": int(rss_kb) / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1280, help="downtrack lines (EMIT: 1280)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=REPO / "bench") as tmp:
        work = Path(tmp)
        granule = work / "EMIT_L2A_RFL_001_20230316T045133_2307503_005.nc"
        t0 = time.perf_counter()
        write_granule(granule, args.rows)
        cube_mib = args.rows * COLS * BANDS * 4 / 2**20
        print(
            f"wrote {granule.name}: {args.rows} x {COLS} x {BANDS} float32 ({cube_mib:.0f} MiB) "
            f"in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        base = run_baseline(granule)
        print(
            f"baseline (whole array + GLT lookup): {base['seconds']:.1f} s, {base['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
        ours = run_fers(
            [
                "detect",
                str(granule),
                str(work / "score.tif"),
                "--enhancer",
                "none",
                "--detector",
                "rx",
                "--memory-mb",
                "256",
            ]
        )
        print(
            f"fers detect (RX, ortho map): {ours['seconds']:.1f} s, {ours['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
    result = {
        "machine": platform.platform(),
        "cube": [args.rows, COLS, BANDS],
        "cube_mib": round(cube_mib, 1),
        "baseline": base,
        "fers_detect": ours,
        "memory_ratio_fers_over_baseline": round(ours["peak_rss_mib"] / base["peak_rss_mib"], 3),
        "memory_ratio_fers_over_cube": round(ours["peak_rss_mib"] / cube_mib, 3),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "products.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "products.md").write_text(
        "# EMIT L2A granule: fers detect against the peer readers' whole-array load\n\n"
        f"Written by `bench/products.py` on {result['machine']}.\n\n"
        "| run | wall time (s) | peak resident memory (MiB) |\n|---|---|---|\n"
        "| read whole reflectance + GLT lookup (peer readers) | "
        f"{base['seconds']:.1f} | {base['peak_rss_mib']:.0f} |\n"
        f"| `fers detect --enhancer none --memory-mb 256` (RX + ortho map) | {ours['seconds']:.1f} | "
        f"{ours['peak_rss_mib']:.0f} |\n\n"
        f"Cube: {args.rows} x {COLS} x {BANDS} float32 = {cube_mib:.0f} MiB. Peak memory of `fers detect` is "
        f"{result['memory_ratio_fers_over_baseline']:.2f} x the baseline's and "
        f"{result['memory_ratio_fers_over_cube']:.2f} x the cube's size.\n"
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
