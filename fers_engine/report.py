"""HTML evaluation report: a metrics table and the ROC curve as an inline SVG figure.

Pure Python plus numpy (no matplotlib): the figure is drawn from the curve points as an SVG
polyline, so the report is one self-contained file that any browser (and the QGIS Results
viewer) shows.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from .io.atomic import write_text

METRIC_ROWS = (
    ("auc", "AUC (Pd, Pf)", "area under the ROC curve; 1 is perfect, 0.5 is chance"),
    ("auc_pd_pf", "AUC (Pd, Pf), 3-D ROC", "same curve, from the 3-D ROC analysis"),
    ("auc_pd_tau", "AUC (Pd, tau)", "detection probability over the threshold; higher is better"),
    ("auc_pf_tau", "AUC (Pf, tau)", "false-alarm probability over the threshold; lower is better"),
    ("auc_td", "AUC TD", "AUC (Pd, Pf) + AUC (Pd, tau)"),
    ("auc_bs", "AUC BS", "AUC (Pd, Pf) - AUC (Pf, tau): background suppression"),
    ("auc_snpr", "AUC SNPR", "AUC (Pd, tau) / AUC (Pf, tau)"),
    ("auc_odp", "AUC ODP", "AUC (Pd, Pf) + AUC (Pd, tau) - AUC (Pf, tau)"),
    ("auc_tdbs", "AUC TDBS", "AUC (Pd, tau) - AUC (Pf, tau)"),
)

# figure geometry (px)
_W, _H = 420, 360
_L, _R, _T, _B = 56, 16, 20, 48


def _simplify(x: np.ndarray, y: np.ndarray, max_points: int = 1500) -> Tuple[np.ndarray, np.ndarray]:
    """Keep the curve's shape with at most ``max_points`` vertices (steps stay steps)."""
    n = len(x)
    if n <= max_points:
        return x, y
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return x[idx], y[idx]


def _log_x(pf: np.ndarray, floor: float) -> np.ndarray:
    return (np.log10(np.maximum(pf, floor)) - math.log10(floor)) / -math.log10(floor)


def roc_svg(
    pf: Sequence[float],
    pd: Sequence[float],
    auc: Optional[float] = None,
    log_pf: bool = False,
    title: str = "ROC curve",
) -> str:
    """The ROC curve (Pd over Pf) as a standalone ``<svg>`` element."""
    pf_all = np.asarray(pf, dtype=float).ravel()
    pd_all = np.asarray(pd, dtype=float).ravel()
    if pf_all.shape != pd_all.shape or pf_all.size == 0:
        raise ValueError("the ROC curve needs two arrays of the same, non-zero length")
    ok = np.isfinite(pf_all) & np.isfinite(pd_all)
    false_alarm, detection = np.clip(pf_all[ok], 0, 1), np.clip(pd_all[ok], 0, 1)
    pw, ph = _W - _L - _R, _H - _T - _B
    floor = 1e-4
    if log_pf:
        positive = false_alarm[false_alarm > 0]
        if positive.size:
            floor = max(min(1e-4, float(positive.min())), 1e-8)
        xs = _log_x(false_alarm, floor)
    else:
        xs = false_alarm
    xs, ys = _simplify(xs, detection)
    pts = " ".join(f"{_L + pw * a:.2f},{_T + ph * (1 - b):.2f}" for a, b in zip(xs, ys))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{html.escape(title)}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{html.escape(title)}</title>",
        f'<rect x="{_L}" y="{_T}" width="{pw}" height="{ph}" fill="#ffffff" stroke="#333333"/>',
    ]
    # grid and ticks
    if log_pf:
        decades = int(round(-math.log10(floor)))
        xticks = [(i / decades, f"1e-{decades - i}" if i < decades else "1") for i in range(decades + 1)]
    else:
        xticks = [(v, f"{v:g}") for v in np.linspace(0, 1, 6)]
    for v, label in xticks:
        x = _L + pw * v
        out.append(f'<line x1="{x:.2f}" y1="{_T}" x2="{x:.2f}" y2="{_T + ph}" stroke="#dddddd"/>')
        out.append(f'<text x="{x:.2f}" y="{_T + ph + 15}" text-anchor="middle">{label}</text>')
    for v in np.linspace(0, 1, 6):
        y = _T + ph * (1 - v)
        out.append(f'<line x1="{_L}" y1="{y:.2f}" x2="{_L + pw}" y2="{y:.2f}" stroke="#dddddd"/>')
        out.append(f'<text x="{_L - 6}" y="{y + 4:.2f}" text-anchor="end">{v:g}</text>')
    if not log_pf:  # chance line
        out.append(
            f'<line x1="{_L}" y1="{_T + ph}" x2="{_L + pw}" y2="{_T}" stroke="#999999" '
            'stroke-dasharray="4 3"/>'
        )
    out.append(f'<polyline class="roc" fill="none" stroke="#c0392b" stroke-width="2" points="{pts}"/>')
    xlabel = "false-alarm probability Pf" + (" (log scale)" if log_pf else "")
    out.append(f'<text x="{_L + pw / 2:.1f}" y="{_H - 10}" text-anchor="middle">{xlabel}</text>')
    out.append(
        f'<text x="14" y="{_T + ph / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_T + ph / 2:.1f})">detection probability Pd</text>'
    )
    if auc is not None and math.isfinite(auc):
        out.append(
            f'<text x="{_L + pw - 8}" y="{_T + ph - 10}" text-anchor="end" font-size="13">'
            f"AUC = {auc:.4f}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    return f"{v:.6f}" if math.isfinite(v) else "n/a"


def render_report(
    metrics: Mapping,
    score_path=None,
    truth_path=None,
    title: str = "FERS evaluation",
    extra: Optional[Mapping[str, object]] = None,
) -> str:
    """The report as an HTML string; ``metrics`` is ``evaluate_rasters``' dict (with 'roc')."""
    rows = []
    for key, label, meaning in METRIC_ROWS:
        if key in metrics:
            rows.append(
                f'<tr><td>{html.escape(label)}</td><td class="num" id="{key}">'
                f"{_fmt(metrics[key])}</td><td>{html.escape(meaning)}</td></tr>"
            )
    known = {k for k, _, _ in METRIC_ROWS} | {"roc"}
    for key in sorted(k for k in metrics if k not in known):
        value = metrics[key]
        if isinstance(value, (int, float, np.integer, np.floating)):
            rows.append(f'<tr><td>{html.escape(key)}</td><td class="num">{_fmt(value)}</td><td></td></tr>')
    figures = ""
    roc = metrics.get("roc")
    if roc is not None:
        pf, pd = roc[0], roc[1]
        auc = metrics.get("auc", metrics.get("auc_pd_pf"))
        figures = (
            '<div class="figs"><figure>'
            + roc_svg(pf, pd, auc, title="ROC curve")
            + "<figcaption>Figure 1. ROC curve (linear Pf).</figcaption></figure><figure>"
            + roc_svg(pf, pd, auc, log_pf=True, title="ROC curve, log Pf")
            + "<figcaption>Figure 2. The same curve with Pf on a log scale.</figcaption></figure></div>"
        )
    inputs = []
    for label, value in (("Score raster", score_path), ("Ground truth", truth_path)):
        if value:
            inputs.append(f"<tr><td>{label}</td><td>{html.escape(str(value))}</td></tr>")
    for label, value in (extra or {}).items():
        inputs.append(f"<tr><td>{html.escape(str(label))}</td><td>{html.escape(str(value))}</td></tr>")
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
td.num {{ text-align: right; font-family: monospace; }}
.figs {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figcaption {{ font-size: 0.9em; color: #555; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Generated {stamp} by FERS.</p>
<table>{"".join(inputs)}</table>
<h2>Metrics</h2>
<table><tr><th>measure</th><th>value</th><th>meaning</th></tr>
{chr(10).join(rows)}
</table>
<h2>ROC curve</h2>
{figures or "<p>No ROC curve points were given.</p>"}
</body></html>
"""


def write_report(
    path,
    metrics: Mapping,
    score_path=None,
    truth_path=None,
    title: str = "FERS evaluation",
    extra: Optional[Mapping[str, object]] = None,
) -> Path:
    """Write the report atomically (``io.atomic``) and return its path. A path that
    is one of the report's inputs (``score_path``, ``truth_path``), or not a writable file path,
    is refused first (``io.guard``): a report must never replace the raster it describes."""
    from .io.guard import Output, guard_outputs

    guard_outputs([Output.file("report", path)], inputs=[score_path, truth_path])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, render_report(metrics, score_path, truth_path, title, extra))
