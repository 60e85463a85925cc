"""Errors the engine raises on purpose.

Every problem a user can cause (a bad file, a wrong band count, a corrupt model) surfaces as a
``FersError`` whose message names the problem in one line, so the CLI and the QGIS plugin can
show it as is instead of a traceback from deep inside numpy or GDAL.
"""

__all__ = [
    "BandIndexError",
    "Cancelled",
    "ClusterError",
    "DependencyError",
    "FersError",
    "InputError",
    "ModelError",
    "OutputError",
]


class FersError(Exception):
    """Base class: a problem with clear, user-facing wording."""


class InputError(FersError):
    """The input raster (or ground truth) cannot be used: unreadable, empty, too few bands, NaN-only..."""


class BandIndexError(InputError):
    """A band index beyond the scene; carries the index and the band count so that a front end
    which numbers bands from 1 can word the message its own way."""

    def __init__(self, message: str, index: int, count: int, name: str):
        super().__init__(message)
        self.index, self.count, self.name = index, count, name

    def __reduce__(self):  # travels between processes (Dask workers) with its fields
        return type(self), (str(self), self.index, self.count, self.name)

    def one_based(self) -> InputError:
        """The same problem worded for front ends that number bands from 1 (CLI, QGIS)."""
        return InputError(
            f"band {self.index + 1} does not exist: {self.name} has {self.count} bands "
            f"(numbered 1 to {self.count})"
        )


class OutputError(FersError):
    """The output cannot be written where asked (same path as the input, unwritable folder...)."""


class ModelError(FersError):
    """A model file is missing, corrupt, or does not fit the input."""


class DependencyError(FersError):
    """An optional dependency (torch, numba, osgeo.gdal outside QGIS) is missing; the message says
    what to install (``hints``)."""


class Cancelled(FersError):
    """The caller asked to stop (QGIS cancel button, Ctrl-C); no partial output is left behind."""


class ClusterError(FersError):
    """A Dask cluster cannot be reached or used (wrong scheduler address, workers without FERS)."""
