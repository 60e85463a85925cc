"""The HTML evaluation report: metrics table and an inline SVG ROC figure, no matplotlib."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
from qgis_helpers import REPO


def test_report_has_table_and_svg_roc(tmp_path):
    from fers_engine.report import render_report, roc_svg, write_report

    pf = np.linspace(0, 1, 5000) ** 3
    pd = np.sqrt(np.linspace(0, 1, 5000))
    metrics = {"auc": 0.91234, "auc_pd_pf": 0.91234, "auc_pd_tau": 0.4, "auc_pf_tau": 0.05, "roc": (pf, pd)}
    out = write_report(tmp_path / "r.html", metrics, score_path="s.tif", truth_path="t<1>.tif")
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "0.912340" in text and 'id="auc_pf_tau"' in text
    assert text.count("<svg") == 2 and "<polyline" in text
    assert "t&lt;1&gt;.tif" in text  # paths are escaped
    points = re.search(r'class="roc"[^>]*points="([^"]+)"', text).group(1).split()
    assert 10 < len(points) <= 1500  # decimated but still a curve
    xs = [float(p.split(",")[0]) for p in points]
    assert xs == sorted(xs)
    svg = roc_svg([0, 0, 1], [0, 1, 1], auc=1.0)
    assert "AUC = 1.0000" in svg
    assert "No ROC curve" in render_report({"auc": 0.5})


def test_report_is_written_where_matplotlib_cannot_import(tmp_path):
    """QGIS's Python may lack matplotlib: the report is written with it unimportable, and never imports it."""
    script = textwrap.dedent(f"""
        import sys
        sys.modules["matplotlib"] = None  # import matplotlib -> ImportError, as when it is absent
        sys.path.insert(0, {str(REPO)!r})
        from fers_engine.report import write_report
        write_report({str(tmp_path / "r.html")!r}, {{"auc": 0.75, "roc": ([0.0, 0.5, 1.0], [0.0, 0.9, 1.0])}})
        print("IMPORTED", sorted(m for m in sys.modules if m.startswith("matplotlib")))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "IMPORTED ['matplotlib']" in proc.stdout  # only the blocked entry: nothing was imported
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<polyline" in text and "0.750000" in text
