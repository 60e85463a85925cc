"""Progress, messages and cancellation passed into the engine as plain callables.

The engine never sees QGIS objects: the plugin adapts ``QgsProcessingFeedback`` to these
callables (``fers_qgis/bridge.py``), the CLI adapts a tqdm bar and stderr, and plain Python
callers may pass nothing (``SILENT``).

A ``Reporter`` is immutable: one name per callback (``on_progress``, ``on_info``,
``on_warning``, ``should_stop``), one method per thing the engine does with them (``step``,
``report``, ``info``, ``warning``, ``check``), and new reporters are derived, never edited: ``stage`` maps
0..1 onto a sub-range of this one's progress, ``replace`` swaps callbacks (a front end that also
keeps the warnings, a batch that silences a scene's messages) and keeps the progress range.
So a reporter handed to a worker thread or a stage can never be changed under it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .errors import Cancelled

__all__ = ["MessageFn", "ProgressFn", "Reporter", "SILENT", "StopFn"]

ProgressFn = Callable[[float], None]  # overall fraction done, 0..1
MessageFn = Callable[[str], None]  # one line of text
StopFn = Callable[[], bool]  # True when the caller wants the work to stop


@dataclass(frozen=True)
class Reporter:
    """The caller's callbacks, each optional, and the progress range this reporter covers.

    Args:
        on_progress: receives the overall fraction done (0..1) from ``step``.
        on_info: receives informational messages (``info``).
        on_warning: receives warnings (``warning``); without it they go to ``on_info`` with a
            ``WARNING:`` prefix, so a caller that only logs still sees them.
        should_stop: returns True once the caller wants the work to stop; ``check`` and ``step``
            then raise ``Cancelled``.
    """

    on_progress: Optional[ProgressFn] = None
    on_info: Optional[MessageFn] = None
    on_warning: Optional[MessageFn] = None
    should_stop: Optional[StopFn] = None
    _start: float = field(default=0.0, repr=False)
    _span: float = field(default=1.0, repr=False)

    def check(self) -> None:
        """Raise ``Cancelled`` if the caller asked to stop; loops call this once per block.

        Raises:
            Cancelled: ``should_stop()`` returned True.
        """
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("cancelled by the user")

    def step(self, fraction: float) -> None:
        """Report progress within this reporter's range (0..1, clipped), then ``check``.

        Args:
            fraction: how much of this reporter's own work is done.
        """
        self.report(fraction)
        self.check()

    def report(self, fraction: float) -> None:
        """Report progress without ``check``: for the step after an output was committed, where
        a stop that comes too late must not turn a finished run into a "cancelled" one.

        Args:
            fraction: how much of this reporter's own work is done.
        """
        if self.on_progress is not None:
            f = min(max(fraction, 0.0), 1.0)
            self.on_progress(self._start + self._span * f)

    def info(self, message: str) -> None:
        """Pass an informational message to ``on_info``, if any."""
        if self.on_info is not None:
            self.on_info(message)

    def warning(self, message: str) -> None:
        """Pass a warning to ``on_warning``, or to ``on_info`` prefixed ``WARNING:``."""
        if self.on_warning is not None:
            self.on_warning(message)
        elif self.on_info is not None:
            self.on_info("WARNING: " + message)

    def stage(self, start: float, end: float) -> Reporter:
        """A reporter for one stage of the work: its 0..1 maps onto ``[start, end]`` of this one.

        Args:
            start: where the stage begins, as a fraction of this reporter's range.
            end: where it ends.

        Returns:
            The derived reporter, with the same callbacks.
        """
        return dataclasses.replace(
            self, _start=self._start + self._span * start, _span=self._span * (end - start)
        )

    def replace(self, **callbacks: Any) -> Reporter:
        """This reporter with some callbacks swapped (``on_info=None`` silences messages); the
        progress range is kept.

        Args:
            **callbacks: any of ``on_progress``, ``on_info``, ``on_warning``, ``should_stop``.

        Returns:
            The derived reporter.
        """
        unknown = set(callbacks) - {"on_progress", "on_info", "on_warning", "should_stop"}
        if unknown:
            raise TypeError(f"Reporter has no callback {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **callbacks)


SILENT = Reporter()
