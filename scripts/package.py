#!/usr/bin/env python3
"""Build dist/fers_qgis-<version>.zip: the plugin that runs the full method in a stock QGIS.

    .venv/bin/python scripts/package.py [--dist DIR] [--root REPO]

Layout: one top folder ``fers_qgis/`` holding the plugin, its metadata.txt and LICENSE, the
pure-Python engine vendored as ``fers_qgis/ext/fers_engine`` (the plugin adds ``ext`` to
sys.path only when ``import fers_engine`` fails) and the default model beside it,
``fers_qgis/ext/models/fers-default.{safetensors,json}``: the engine looks for bundled models in
``models`` beside its package (``fers_engine/nets/bundled.py``), in a checkout and in the zip
alike. Only that model ships: fold models, training candidates and checkpoints stay out, as do
any other weights, __pycache__/*.pyc, hidden files and editor backups.
``threadpoolctl`` (one pure-Python file, BSD-3-Clause, with its licence) ships beside the engine
as ``fers_qgis/ext/threadpoolctl.py``: QGIS's Python has none, and without it the numpy paths of
the windowed detectors cannot keep BLAS on one thread per worker, so their worker threads and
OpenBLAS's own oversubscribe the cores (the default method's CRD ran 4x slower on 2 workers than
on one in Debian's Python). It is taken from this interpreter or from the checkout's ``.venv``
(``make setup``).
Uses only the standard library so it runs without QGIS.
"""

from __future__ import annotations

import argparse
import configparser
import os
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = "fers_qgis"
REQUIRED_METADATA = (
    "name",
    "qgisMinimumVersion",
    "description",
    "about",
    "version",
    "author",
    "email",
    "repository",
    "tracker",
    "homepage",
    "tags",
    "category",
    "hasProcessingProvider",
    "experimental",
    "icon",
)
EXCLUDED_DIRS = {"__pycache__", ".git", ".pytest_cache", ".mypy_cache", "ext", ".ipynb_checkpoints"}
EXCLUDED_SUFFIXES = (
    ".pyc",
    ".pyo",
    ".safetensors",
    ".pt",
    ".pth",
    ".ckpt",
    ".onnx",
    ".npy",
    ".npz",
    ".orig",
    ".rej",
    ".swp",
    "~",
)
EPOCH = (2026, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip
DEFAULT_MODEL = "fers-default"
SHIPPED_MODEL_FILES = (DEFAULT_MODEL + ".safetensors", DEFAULT_MODEL + ".json")  # weights + card


def read_metadata(path: str) -> dict:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep qgisMinimumVersion's case
    with open(path, encoding="utf-8") as fh:
        parser.read_file(fh)
    return dict(parser["general"])


def check_metadata(meta: dict) -> None:
    missing = [k for k in REQUIRED_METADATA if not meta.get(k, "").strip()]
    if missing:
        raise SystemExit(f"metadata.txt lacks {', '.join(missing)}")
    if "<" in meta["about"] and ">" in meta["about"]:
        raise SystemExit("metadata.txt 'about' must be plain text (no HTML)")
    if meta["hasProcessingProvider"].strip().lower() not in ("yes", "true"):
        raise SystemExit("metadata.txt must say hasProcessingProvider=yes")


def keep(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(EXCLUDED_SUFFIXES)


def walk(src: str):
    """Files under ``src`` to ship, as (absolute path, path relative to src), sorted."""
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if keep(name):
                full = os.path.join(dirpath, name)
                yield full, os.path.relpath(full, src)


def add_file(zf: zipfile.ZipFile, full: str, arcname: str) -> None:
    info = zipfile.ZipInfo(arcname.replace(os.sep, "/"), date_time=EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with open(full, "rb") as fh:
        zf.writestr(info, fh.read())


def threadpoolctl_files(root: str):
    """(source, name in ext/) of threadpoolctl.py and its licence: from this interpreter's
    packages, else from the checkout's .venv; a clear stop when neither has it."""
    import glob
    import importlib.util

    spec = importlib.util.find_spec("threadpoolctl")
    found = [spec.origin] if spec is not None and spec.origin else []
    found += sorted(
        glob.glob(os.path.join(root, ".venv", "lib", "python3*", "site-packages", "threadpoolctl.py"))
    )
    for module in found:
        licences = glob.glob(
            os.path.join(os.path.dirname(module), "threadpoolctl-*.dist-info", "**", "LICENSE*"),
            recursive=True,
        )
        if licences:
            return [(module, "threadpoolctl.py"), (sorted(licences)[0], "threadpoolctl-LICENSE.txt")]
    raise SystemExit("threadpoolctl is not installed here nor in .venv: run `make setup` first")


def build(dist: str, root: str = ROOT) -> str:
    plugin_dir = os.path.join(root, PLUGIN)
    meta = read_metadata(os.path.join(plugin_dir, "metadata.txt"))
    check_metadata(meta)
    version = meta["version"].strip()
    os.makedirs(dist, exist_ok=True)
    target = os.path.join(dist, f"{PLUGIN}-{version}.zip")
    tmp = target + ".tmp"
    names = set()
    with zipfile.ZipFile(tmp, "w") as zf:
        for full, rel in walk(plugin_dir):
            add_file(zf, full, f"{PLUGIN}/{rel}")
            names.add(f"{PLUGIN}/{rel}")
        license_src = os.path.join(root, "LICENSE")
        if f"{PLUGIN}/LICENSE" not in names:
            if not os.path.isfile(license_src):
                raise SystemExit("no LICENSE found (fers_qgis/LICENSE or LICENSE at the repository root)")
            add_file(zf, license_src, f"{PLUGIN}/LICENSE")
        for full, rel in walk(os.path.join(root, "fers_engine")):
            if rel.endswith((".py", ".json", ".txt", ".md", ".qml", ".csv")):
                add_file(zf, full, f"{PLUGIN}/ext/fers_engine/{rel}")
        for full, name in threadpoolctl_files(root):
            add_file(zf, full, f"{PLUGIN}/ext/{name}")
        for name in SHIPPED_MODEL_FILES:
            full = os.path.join(root, "models", name)
            if not os.path.isfile(full):
                raise SystemExit(
                    f"the default model is missing: {full} (models/README.md says how to train it)"
                )
            add_file(zf, full, f"{PLUGIN}/ext/models/{name}")
    os.replace(tmp, target)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default=os.path.join(ROOT, "dist"), help="output folder (default dist/)")
    parser.add_argument("--root", default=ROOT, help="the checkout to package (default: this one)")
    args = parser.parse_args(argv)
    target = build(args.dist, args.root)
    with zipfile.ZipFile(target) as zf:
        count = len(zf.namelist())
    print(f"wrote {target} ({count} files, {os.path.getsize(target) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
