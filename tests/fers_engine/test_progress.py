"""The immutable reporter: one name per callback, derived reporters, cancel."""

from __future__ import annotations

import dataclasses

import pytest

from fers_engine.errors import Cancelled
from fers_engine.progress import SILENT, Reporter


def test_a_reporter_cannot_be_edited_only_derived():
    rep = Reporter(on_info=print)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.on_warning = print  # type: ignore[misc]
    with pytest.raises(TypeError, match="no callback log"):
        rep.replace(log=print)
    with pytest.raises(TypeError):
        Reporter(log=print)  # type: ignore[call-arg]  (the old near-synonyms are gone)


def test_stages_nest_and_replace_keeps_the_range():
    seen = []
    rep = Reporter(on_progress=seen.append)
    inner = rep.stage(0.5, 1.0).stage(0.2, 0.6)  # [0.6, 0.8] of the whole
    inner.step(0.0)
    inner.step(0.5)
    inner.replace(on_info=print).step(1.0)
    inner.step(7.0)  # clipped to the stage's end
    assert seen == pytest.approx([0.6, 0.7, 0.8, 0.8])


def test_warnings_go_to_on_warning_or_to_on_info_with_a_prefix():
    infos, warnings = [], []
    Reporter(on_info=infos.append, on_warning=warnings.append).warning("w1")
    Reporter(on_info=infos.append).warning("w2")
    Reporter(on_info=infos.append).info("i")
    SILENT.warning("nobody listens")
    SILENT.info("nobody listens")
    assert warnings == ["w1"] and infos == ["WARNING: w2", "i"]


def test_a_derived_reporter_that_keeps_messages_still_forwards_them():
    infos, warnings, kept = [], [], []
    base = Reporter(on_info=infos.append, on_warning=warnings.append).stage(0.1, 0.2)
    keeping = base.replace(
        on_info=lambda m: (kept.append(m), base.info(m)),
        on_warning=lambda m: (kept.append("W " + m), base.warning(m)),
    )
    keeping.info("a")
    keeping.warning("b")
    assert kept == ["a", "W b"] and infos == ["a"] and warnings == ["b"]
    assert base.on_info == infos.append  # the original is untouched


def test_step_and_check_raise_cancelled_once_the_caller_asks():
    stop = []
    seen = []
    rep = Reporter(on_progress=seen.append, should_stop=lambda: bool(stop)).stage(0.0, 0.5)
    rep.step(0.5)
    stop.append(True)
    with pytest.raises(Cancelled):
        rep.step(1.0)
    with pytest.raises(Cancelled):
        rep.replace(on_info=print).check()
    assert seen == [0.25, 0.5]  # the progress was reported, then the cancel raised
