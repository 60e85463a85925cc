#!/usr/bin/env python3
"""QGIS desktop for real, as a user meets it: the plugin zip in a fresh profile, on a virtual screen.

    python3 scripts/desktop_smoke.py [--out DIR] [--scene FILE] [--docs]

Builds the zip (``make package``), unpacks it into the empty ``python/plugins`` folder of a new QGIS
profile, enables it in that profile's QGIS3.ini, starts Xvfb and Debian's ``qgis`` with that
profile, from an environment with nothing of this checkout (no venv, no PYTHONPATH, no plugin
path, a new HOME), and lets ``scripts/desktop_smoke_steps.py`` click through the Processing
Toolbox, the Detect anomalies dialog on a real scene (default: ../shared/data's San Diego ENVI
scene, the full method), the loaded layers, the shipped graphical model, a batch run, and a .mat
cube through the scene-file parameter. Screenshots,
``report.json`` and QGIS's own output land in DIR (default ``desktop-smoke/``); the script prints
the problems found and exits 1 when there are any. ``--docs`` also writes the README's small
screenshots to ``docs/img/``.

Needs Xvfb (``apt-get install -y -qq xvfb``), Debian's QGIS, and for ``--docs`` ImageMagick.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ROOT / "scripts" / "desktop_smoke_steps.py"
DEFAULT_SCENE = ROOT.parent / "shared" / "data" / "san-diego-envi-90x90" / "SDData"
DEFAULT_MAT = ROOT.parent / "shared" / "data" / "abu-beach-1" / "abu-beach-1.mat"
SCREEN = "1366x768x24"
# screenshot -> (README image, crop WxH+X+Y of the screen or None, width it is scaled to)
DOC_IMAGES = {
    "detect_dialog": ("detect-dialog.png", "690x520+328+88", 690),
    "result": ("score-layer.png", "752x668+0+100", 752),
    "modeler": ("graphical-model.png", "740x700+270+60", 640),
}
DOC_IMAGE_LIMIT = 200 * 1024


def free_display() -> int:
    for number in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise SystemExit("no free X display number between :90 and :199")


def start_xvfb(number: int) -> subprocess.Popen:
    if shutil.which("Xvfb") is None:
        raise SystemExit("Xvfb is not installed: apt-get install -y -qq xvfb")
    xvfb = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", SCREEN, "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if Path(f"/tmp/.X11-unix/X{number}").exists():
            return xvfb
        if xvfb.poll() is not None:
            raise SystemExit(f"Xvfb :{number} exited with {xvfb.returncode}")
        time.sleep(0.1)
    xvfb.terminate()
    raise SystemExit(f"Xvfb :{number} did not start")


def install_zip(work: Path) -> Path:
    """``make package``, then what Install from ZIP does: unpack into a fresh profile, enable it."""
    dist = work / "dist"
    built = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "package", f"DIST={dist}"], capture_output=True, text=True
    )
    if built.returncode != 0:
        raise SystemExit(f"make package failed: {built.stdout}{built.stderr}")
    (package,) = dist.glob("fers_qgis-*.zip")
    profile = work / "profiles" / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(package) as zf:
        zf.extractall(plugins)
    (profile / "QGIS").mkdir(parents=True)
    (profile / "QGIS" / "QGIS3.ini").write_text("[PythonPlugins]\nfers_qgis=true\n")
    return work / "profiles"


def run_qgis(
    profiles: Path, home: Path, display: int, out: Path, scene: Path, mat: Path, timeout: float
) -> int:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "DISPLAY": f":{display}",
        "XDG_RUNTIME_DIR": str(home / "run"),
        "FERS_SMOKE_OUT": str(out),
        "FERS_SMOKE_SCENE": str(scene),
        "FERS_SMOKE_MAT": str(mat) if mat.exists() else "",
        "FERS_SMOKE_TIMEOUT": str(int(timeout)),
    }
    (home / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
    cmd = [
        "/usr/bin/qgis",
        "--profiles-path",
        str(profiles),
        "--nologo",
        "--noversioncheck",
        "--code",
        str(STEPS),
    ]
    with open(out / "qgis-output.txt", "w") as log:
        try:
            return subprocess.run(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout + 240
            ).returncode
        except subprocess.TimeoutExpired:
            return -1


def doc_images(out: Path) -> None:
    """The README's screenshots: scaled down and reduced to 256 colours, each under 200 KB."""
    target = ROOT / "docs" / "img"
    target.mkdir(parents=True, exist_ok=True)
    for shot, (name, crop, width) in DOC_IMAGES.items():
        args = ["convert", str(out / f"{shot}.png")]
        if crop:
            args += ["-crop", crop, "+repage"]
        args += ["-resize", f"{width}x", "-colors", "256", "-strip", f"PNG8:{target / name}"]
        subprocess.run(args, check=True)
        size = (target / name).stat().st_size
        print(f"wrote {target / name} ({size / 1024:.0f} KiB)")
        if size > DOC_IMAGE_LIMIT:
            raise SystemExit(f"{name} is {size / 1024:.0f} KiB, over the 200 KiB the docs allow")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "desktop-smoke", help="screenshots and report")
    parser.add_argument("--scene", type=Path, default=DEFAULT_SCENE, help="the scene to run detect on")
    parser.add_argument(
        "--mat",
        type=Path,
        default=DEFAULT_MAT,
        help="a .mat cube to run through the scene-file parameter (skipped when absent)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds the detect run may take")
    parser.add_argument("--docs", action="store_true", help="also write the README's screenshots to docs/img")
    args = parser.parse_args(argv)
    if not args.scene.exists():
        raise SystemExit(f"scene not found: {args.scene}")
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="fers-desktop-") as tmp:
        work = Path(tmp)
        profiles = install_zip(work)
        display = free_display()
        xvfb = start_xvfb(display)
        try:
            started = time.time()
            code = run_qgis(
                profiles, work / "home", display, out, args.scene.resolve(), args.mat.resolve(), args.timeout
            )
            print(f"qgis exited with {code} after {time.time() - started:.0f} s")
        finally:
            xvfb.terminate()
            xvfb.wait()
    report_path = out / "report.json"
    if not report_path.exists():
        print(f"no report: QGIS did not reach the end of the steps (see {out / 'qgis-output.txt'})")
        return 1
    report = json.loads(report_path.read_text())
    print(f"steps: {', '.join(report['steps'])}")
    print(f"layers: {report.get('layer_order')}; detect run: {report.get('run_seconds')} s")
    for problem in report["problems"]:
        print(f"PROBLEM: {problem}")
    if args.docs:
        doc_images(out)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
