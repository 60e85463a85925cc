"""`make demo`: generate a sample scene, run `qgis_process run fers:detect` on it, show the result.

It exercises the real product path a QGIS user takes headless: the plugin, the provider, the
engine, the atomic GeoTIFF writer. The scene (``synthetic.py``) has fields, roads, roofs and
shadows with hard boundaries and small vehicle-sized targets. The demo runs `fers:detect` with its
default enhancer and detector (``choices``), prints the AUC against the targets for that method and
for plain global RX, and for both the boundary false-alarm share (how much of the top of the score
map falls on edges between materials), and writes a PNG quick-look.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from .choices import DEFAULT_DETECTOR, DEFAULT_ENHANCER, DETECTORS, ENHANCERS


def run_qgis_detect(scene: Path, output: Path, extra: List[str]) -> dict:
    """Run fers:detect through qgis_process and return its JSON answer."""
    exe = shutil.which("qgis_process") or shutil.which("qgis_process.bin")
    if exe is None:
        raise SystemExit("qgis_process not found: run `make setup` (it installs QGIS from Debian)")
    args = ["--json", "run", "fers:detect", "--", f"INPUT={scene}", f"OUTPUT={output}", *extra]
    print("$ qgis_process " + " ".join(args), flush=True)
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not proc.stdout.strip():
        errors = [ln for ln in proc.stderr.splitlines() if "setapi" not in ln and ln.strip()]
        raise SystemExit("qgis_process failed:\n" + "\n".join(errors[-15:]))
    return json.loads(proc.stdout)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fers_engine.demo", description=__doc__)
    parser.add_argument("--out", default="demo-output", help="folder for the sample, the map and the PNG")
    parser.add_argument(
        "--enhancer",
        default=None,
        choices=list(ENHANCERS),
        help=f"default: {DEFAULT_ENHANCER} when the bundled default model is there, else none",
    )
    parser.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        choices=list(DETECTORS),
        help=f"default: {DEFAULT_DETECTOR}, fers:detect's default",
    )
    args = parser.parse_args(argv)

    import numpy as np

    from .io import open_scene
    from .metrics import boundary_false_alarms
    from .pipeline import DetectOptions, detect, evaluate_rasters
    from .quicklook import scene_and_scores_png
    from .synthetic import make_scene, write_scene

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene_path, truth_path = out / "sample_scene.tif", out / "sample_truth.tif"
    score_path, png_path = out / "anomaly_score.tif", out / "quicklook.png"
    scene = make_scene()
    write_scene(scene, scene_path, truth_path)
    bands, rows, cols = scene.cube.shape
    print(
        f"sample scene: {scene_path} ({cols} x {rows} px, {bands} bands, UTM 11N, "
        f"{int(scene.truth.sum())} target pixels implanted)"
    )

    enhancer = args.enhancer or _default_enhancer()
    answer = run_qgis_detect(scene_path, score_path, [f"ENHANCER={enhancer}", f"DETECTOR={args.detector}"])
    log = answer.get("log") or {}
    lines = log.get("info", []) if isinstance(log, dict) else []
    for line in lines if isinstance(lines, list) else str(lines).splitlines():
        print("  | " + str(line).strip())
    print(f"anomaly map: {answer['results']['OUTPUT']} (device {answer['results'].get('DEVICE', '?')})")

    ours = evaluate_rasters(score_path, truth_path)
    baseline_path = out / "rx_score.tif"
    detect(scene_path, baseline_path, DetectOptions(enhancer="none", detector="rx"))
    baseline = evaluate_rasters(baseline_path, truth_path)
    label = {"none": "", "spectral": "FEN + ", "full": "FERS (full) + "}[enhancer] + {
        "rx": "RX",
        "lrx": "local RX",
        "crd": "CRD",
        "crd+rx": "CRD+RX",
    }[args.detector]
    print(f"AUC against the implanted truth: {label} {ours['auc']:.4f}   (plain RX {baseline['auc']:.4f})")
    shares = {}
    for name, path in ((label, score_path), ("plain RX", baseline_path)):
        with open_scene(path) as s:
            scores, scored = s.read_all()
        shares[name] = boundary_false_alarms(np.where(scored, scores[0], np.nan), scene.cube, scene.truth)
    print(
        "boundary false alarms (share of the top 0.5 % scores on material boundaries, lower is better): "
        + "   ".join(f"{k} {v:.3f}" for k, v in shares.items())
    )

    with open_scene(score_path) as s:
        check = s.info
    assert (check.width, check.height) == (cols, rows), "output size differs from the input"
    with open_scene(score_path) as s:
        scores = s.read_all()[0][0]
    scene_and_scores_png(png_path, scene.cube, scene.wavelengths, scores, scene.truth)
    print(f"quick-look: {png_path} (left: true colour; right: anomaly score, targets outlined in red)")
    return 0


def _default_enhancer() -> str:
    """fers:detect's default enhancer when the default model is there (it runs on numpy, no torch
    needed); no enhancer otherwise, said aloud."""
    from .nets.bundled import DEFAULT_MODEL, MODELS_DIR, bundled_models

    if DEFAULT_MODEL not in bundled_models():
        print(f"no bundled model {DEFAULT_MODEL} in {MODELS_DIR}: running without an enhancer")
        return "none"
    return DEFAULT_ENHANCER


if __name__ == "__main__":
    sys.exit(main())
