"""bench/speed.py's report: every verdict in the Markdown follows from the measured rows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
speed = pytest.importorskip("speed")


def _row(window: str, one: float, all_cores: float) -> dict:
    return {
        "size": "128x128x100",
        "window": window,
        "ours_s": 1.0,
        "ours_all_cores_s": 0.5,
        "cores": 2,
        "spy_s": 40.0,
        "speedup": one,
        "speedup_all_cores": all_cores,
        "max_rel_diff": 0.0,
        "engine": "numba",
        "first_call_s": 3.0,
        "numpy_path_s": 2.0,
    }


def _report(*rows: dict) -> dict:
    return {
        "date": "d",
        "seconds": 1.0,
        "machine": {"cpu": "x", "gpu": "none"},
        "global_rx": [],
        "local_rx": list(rows),
        "detect": [],
    }


def test_the_local_rx_verdict_comes_from_the_rows():
    text = speed.to_markdown(_report(_row("3/15", 20, 30), _row("5/21", 25, 40)))
    assert "With one worker: 50x not reached (best 25x)." in text
    assert "With all cores: 50x not reached (best 40x)." in text
    text = speed.to_markdown(_report(_row("3/15", 45, 60), _row("5/21", 55, 90)))
    assert "With one worker: 50x reached at 5/21 only (lowest 45x)." in text
    assert "With all cores: 50x reached at every window (lowest 60x)." in text
    assert "No GPU was available" in text


def test_the_backend_verdict_comes_from_the_rows():
    row = {
        "size": "512x512x200",
        "numpy_s": 10.0,
        "torch_s": 12.0,
        "torch_over_numpy": 1.2,
        "runs": 3,
        "enhancer_numpy_s": 2.0,
        "enhancer_torch_s": 5.0,
        "enhancer_torch_over_numpy": 2.5,
        "max_rel_diff": 2e-5,
    }
    report = dict(_report(_row("3/15", 60, 60)), backends=[row])
    text = speed.to_markdown(report)
    assert "| 512x512x200 | 10.00 | 12.00 | 1.20 | 2.00 | 5.00 | 2.50 | 3 | 2.0e-05 |" in text
    assert "No speed loss" in text and "torch / numpy >= 1.20" in text
    assert "The enhancers alone: torch / numpy 2.50 at the lowest." in text
    slower = dict(row, numpy_s=15.0, torch_over_numpy=0.8)
    assert (
        "Speed loss: the numpy path is slower than torch on the CPU (torch / numpy down to 0.80)"
        in speed.to_markdown(dict(report, backends=[row, slower]))
    )
    assert "the numpy forward pass against torch" not in speed.to_markdown(_report(_row("3/15", 60, 60)))


def test_reports_written_before_the_kernel_still_render():
    old = _row("3/15", 20, 30)
    for key in ("engine", "first_call_s", "numpy_path_s"):
        del old[key]
    assert "| 3/15 | 216 | 1.000 | 0.500 (2) | - | - | 40.0 | 20x | 30x |" in speed.to_markdown(_report(old))


def test_the_crd_rows_show_the_ratio_to_local_rx_and_what_cores_buy():
    crd = {
        "size": "128x128x100",
        "window": "3/15",
        "cores": 2,
        "engine": "numba",
        "crd_s": 6.0,
        "crd_all_cores_s": 3.2,
        "lrx_s": 1.5,
        "lrx_all_cores_s": 1.0,
        "crd_over_lrx": 4.0,
        "crd_all_over_one": 1.875,
        "lrx_all_over_one": 1.5,
        "crd_numpy_s": 20.0,
        "numpy_vs_compiled_rel_diff": 3e-7,
    }
    text = speed.to_markdown(dict(_report(_row("3/15", 20, 30)), crd=[crd]))
    assert (
        "| 128x128x100 | 3/15 | numba | 6.000 | 3.200 (2) | 1.500 | 1.000 (2) | 4.00x | 1.88x / 1.50x "
        "| 20.000 | 3.0e-07 |" in text
    )
    assert "## CRD against local RX" not in speed.to_markdown(_report(_row("3/15", 20, 30)))  # older reports


def _memory_row(peak: float, limit: float) -> dict:
    return {
        "size": "1024x1024x200",
        "device": "cpu",
        "enhancer": "spectral",
        "detector": "crd+rx",
        "memory_budget_mib": 256,
        "overhead_mib": 261.0,
        "limit_mib": limit,
        "peak_rss_mib": peak,
        "seconds": 300.0,
        "load_average": 1.5,
        "within": peak <= limit,
    }


def test_a_memory_only_report_holds_the_memory_section_alone(tmp_path):
    """`--only-memory --memory-detector crd+rx` saves its rows as their own report: no empty
    tables of the other benches, the detector named, the verdict from the rows; `--render`
    rewrites the same text from the JSON."""
    import json

    report = {
        "command": "bench/speed.py --only-memory --memory-detector crd+rx",
        "date": "d",
        "seconds": 1.0,
        "machine": {"cpu": "x", "gpu": "none"},
        "memory": [_memory_row(455.0, 569.0), _memory_row(600.0, 569.0)],
    }
    text = speed.memory_markdown(report)
    assert "## The memory budget as a limit" in text and "`--detector crd+rx`" in text
    assert "Over the rule: 1 of 2 rows" in text
    assert "## Global RX" not in text and "## Local RX" not in text and "numba is not installed" not in text
    assert text.count("\n## ") == 1
    saved = tmp_path / "memory-crd+rx.json"
    saved.write_text(json.dumps(report))
    speed.render(saved)
    assert saved.with_suffix(".md").read_text() == text
