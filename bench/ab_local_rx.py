"""A/B timing of local RX between two checkouts of this repository, on one machine, interleaved.

Each measurement runs in its own child process that imports the engine from one checkout, so two
versions can be compared on the same cube (bench/speed.py's 128x128x100, windows 3/15) under the
same machine load: the runs alternate A, B, A, B... and the minimum of each side is compared,
which is robust to load from other processes. The scores of the two sides are compared too.

    .venv/bin/python bench/ab_local_rx.py --a /path/to/main --b . [--repeats 3]

Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time
repo, mode, workers, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path[:0] = [repo, repo + "/bench"]
import numpy as np
import fers_engine.detectors.lrx as lrx
assert lrx.__file__.startswith(repo), lrx.__file__
from speed import correlated_cube
if hasattr(lrx, "_ring_kernel"):  # before the split the switch was ring_kernel.available
    from fers_engine.detectors import ring_kernel as switch
else:
    from fers_engine.detectors import compiled as switch
cube = correlated_cube(128, 128, 100, seed=1)
lrx.local_rx(cube[:, :20, :20], inner=3, outer=15)  # compiles on a cold numba cache
if mode == "numpy":
    switch.available = lambda: False
t0 = time.perf_counter()
scores = lrx.local_rx(cube, inner=3, outer=15, workers=workers)
print(json.dumps(time.perf_counter() - t0))
np.save(out, scores)
"""

CASES = (("numba", 1), ("numba", 0), ("numpy", 1))  # workers 0 = every core
if os.environ.get("AB_CASES"):  # e.g. AB_CASES=numpy:1 to time one case
    CASES = tuple((m, int(w)) for m, w in (c.split(":") for c in os.environ["AB_CASES"].split(",")))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", required=True, help="checkout A (e.g. main)")
    parser.add_argument("--b", default=".", help="checkout B (default: this one)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sides = {"A": str(Path(args.a).resolve()), "B": str(Path(args.b).resolve())}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for mode, workers in CASES:
                for side, repo in sides.items():
                    out = f"{tmp}/{side}_{mode}_{workers}.npy"
                    cmd = [sys.executable, "-c", CHILD, repo, mode, str(workers or cores), out]
                    run = subprocess.run(cmd, capture_output=True, text=True, cwd=repo)
                    if run.returncode:
                        print(run.stderr, file=sys.stderr)
                        return 1
                    seconds = json.loads(run.stdout.strip().splitlines()[-1])
                    times.setdefault((mode, workers, side), []).append(seconds)
        print(f"A = {sides['A']}\nB = {sides['B']}\n")
        print("| path | workers | A min (s) | B min (s) | B / A | max rel. diff of scores |")
        print("|---|---|---|---|---|---|")
        for mode, workers in CASES:
            a, b = min(times[(mode, workers, "A")]), min(times[(mode, workers, "B")])
            sa, sb = np.load(f"{tmp}/A_{mode}_{workers}.npy"), np.load(f"{tmp}/B_{mode}_{workers}.npy")
            rel = float(np.max(np.abs(sa - sb) / np.maximum(np.abs(sa), 1e-12)))
            print(f"| {mode} | {workers or cores} | {a:.3f} | {b:.3f} | {b / a:.3f} | {rel:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
