"""Raw Processing parameter values as QGIS hands them over (dialog, batch panel, qgis_process)."""

from __future__ import annotations

from qgis.PyQt.QtCore import QVariant


def given(value) -> bool:
    """Whether a raw parameter value was set: QGIS passes unset values as None, '' or NULL (a null
    QVariant, what the dialog sends for an empty widget)."""
    if value is None or (isinstance(value, QVariant) and value.isNull()):
        return False
    return not (isinstance(value, str) and not value.strip())
