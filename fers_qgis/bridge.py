"""QgsProcessingFeedback -> fers_engine.progress.Reporter.

The engine never sees QGIS objects; it gets four plain callables:
on_progress (fraction 0..1 -> setProgress(0..100)), on_info (pushInfo), on_warning (pushWarning,
a non-fatal message shown in orange in the dialog and on stderr in qgis_process) and
should_stop (isCanceled). The engine calls ``reporter.step()`` once per block, which raises
``Cancelled`` as soon as the user pressed Cancel.
"""

from __future__ import annotations


def _warn_fn(feedback):
    if feedback is None:
        return None
    if hasattr(feedback, "pushWarning"):  # QGIS >= 3.16
        return lambda msg: feedback.pushWarning("Warning: " + str(msg))
    return lambda msg: feedback.reportError("Warning: " + str(msg), False)


def reporter_for(feedback, start: float = 0.0, end: float = 1.0):
    """A ``Reporter`` that drives ``feedback``; ``start``/``end`` map 0..1 onto a sub-range."""
    from fers_engine.progress import Reporter

    if feedback is None:
        rep = Reporter()
    else:
        rep = Reporter(
            on_progress=lambda f: feedback.setProgress(100.0 * float(f)),
            on_info=lambda msg: feedback.pushInfo(str(msg)),
            on_warning=_warn_fn(feedback),
            should_stop=feedback.isCanceled,
        )
    if (start, end) != (0.0, 1.0):
        rep = rep.stage(start, end)
    return rep
