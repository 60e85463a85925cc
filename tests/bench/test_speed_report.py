"""bench/speed.py's report: every verdict in the Markdown follows from the measured rows."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
speed = pytest.importorskip("speed")


def _report(one: float, all_cores: float) -> dict:
    row = {"size": "128x128x100", "window": "3/15", "ours_s": 1.0, "ours_all_cores_s": 0.5, "cores": 2,
           "spy_s": 40.0, "speedup": one, "speedup_all_cores": all_cores, "max_rel_diff": 0.0}
    return {"date": "d", "seconds": 1.0, "machine": {"cpu": "x", "gpu": "none"}, "global_rx": [],
            "local_rx": [row], "detect": []}


def test_the_local_rx_verdict_comes_from_the_rows():
    assert "target is not reached at any of these windows (best 30x)" in speed.to_markdown(_report(20, 30))
    assert "target is reached at window(s) 3/15" in speed.to_markdown(_report(20, 55))
    assert "No GPU was available" in speed.to_markdown(_report(20, 30))
