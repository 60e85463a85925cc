"""How many threads a FERS run may use inside QGIS: the user's own QGIS setting, not ours.

QGIS users set one limit for the whole of Processing (Settings > Options > Processing > General >
Max Threads); a plugin that ignored it would load every core of a machine its user asked to
share. Processing itself falls back to QGIS's rendering limit ("Max cores to use") when that
setting was never saved, and both say -1 for "no limit". No limit means every core this process
may run on (its CPU affinity mask), which the engine works out itself: ``workers=None``.
"""

from __future__ import annotations

from typing import Optional

#: Where Processing stores its Max Threads setting (processing/core/ProcessingConfig.py: Setting.qname)
PROCESSING_MAX_THREADS_KEY = "Processing/Configuration/MAX_THREADS"


def _whole(value) -> Optional[int]:
    """``value`` as a thread count, None for unset, -1, 0, or anything that is not a whole number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if number != int(number) or number < 1:
        return None
    return int(number)


def qgis_max_threads(settings=None) -> Optional[int]:
    """QGIS's thread limit for Processing, or None for "every core this process may use".

    ``settings`` is a ``QgsSettings`` (a new one when not given; tests pass their own).
    """
    from qgis.core import QgsApplication, QgsSettings

    settings = settings if settings is not None else QgsSettings()
    stored = settings.value(PROCESSING_MAX_THREADS_KEY, None)
    if stored not in (None, ""):
        return _whole(stored)
    return _whole(QgsApplication.maxThreads())


def workers_for(requested: int, settings=None) -> Optional[int]:
    """The engine's ``workers`` for a THREADS parameter: the number asked for, or with 0 QGIS's limit."""
    if requested and requested > 0:
        return int(requested)
    return qgis_max_threads(settings)
