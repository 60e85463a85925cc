"""Errors the engine raises on purpose.

Every problem a user can cause (a bad file, a wrong band count, a corrupt model) surfaces as a
``FersError`` whose message names the problem in one line, so the CLI and the QGIS plugin can
show it as is instead of a traceback from deep inside numpy or GDAL.
"""


class FersError(Exception):
    """Base class: a problem with clear, user-facing wording."""


class InputError(FersError):
    """The input raster (or ground truth) cannot be used: unreadable, empty, too few bands, NaN-only..."""


class OutputError(FersError):
    """The output cannot be written where asked (same path as the input, unwritable folder...)."""


class ModelError(FersError):
    """A model file is missing, corrupt, or does not fit the input."""


class DependencyError(FersError):
    """An optional dependency (torch, safetensors) is missing; the message says what to install."""


class Cancelled(FersError):
    """The caller asked to stop (QGIS cancel button, Ctrl-C); no partial output is left behind."""
