"""Progress, logging and cancellation passed into the engine as plain callables.

The engine never sees QGIS objects: the plugin adapts ``QgsProcessingFeedback`` to these three
callables, the CLI adapts a tqdm bar, and plain Python callers may pass nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import Cancelled

ProgressFn = Callable[[float], None]  # fraction done, 0..1
LogFn = Callable[[str], None]
StopFn = Callable[[], bool]  # True when the caller wants the work to stop


@dataclass
class Reporter:
    """Bundles the three callables; stages report into sub-ranges of the overall progress."""

    progress: Optional[ProgressFn] = None
    log: Optional[LogFn] = None
    should_stop: Optional[StopFn] = None
    warn: Optional[LogFn] = None
    _start: float = field(default=0.0, repr=False)
    _span: float = field(default=1.0, repr=False)

    def check(self) -> None:
        """Raise ``Cancelled`` if the caller asked to stop; call this once per block."""
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("cancelled by the user")

    def step(self, fraction: float) -> None:
        """Report progress within the current stage (0..1) and check for cancellation."""
        if self.progress is not None:
            f = min(max(fraction, 0.0), 1.0)
            self.progress(self._start + self._span * f)
        self.check()

    def info(self, message: str) -> None:
        if self.log is not None:
            self.log(message)

    def warning(self, message: str) -> None:
        if self.warn is not None:
            self.warn(message)
        elif self.log is not None:
            self.log("WARNING: " + message)

    def stage(self, start: float, end: float) -> "Reporter":
        """A reporter whose 0..1 maps onto [start, end] of this one's range."""
        return Reporter(
            progress=self.progress,
            log=self.log,
            should_stop=self.should_stop,
            warn=self.warn,
            _start=self._start + self._span * start,
            _span=self._span * (end - start),
        )


SILENT = Reporter()
