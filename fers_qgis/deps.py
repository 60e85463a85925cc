"""The plugin's private package folder: where "Install PyTorch for FERS" puts torch.

It lives in the QGIS profile, outside the plugin folder, so that updating or reinstalling the
plugin keeps it: ``<profile>/python/fers-deps/<major.minor>``. One folder per Python version,
because compiled packages only load in the Python they were built for (a QGIS upgrade that
brings a new Python starts with an empty folder instead of a broken one).

The folder goes in front of the other site folders so that torch finds the dependency versions
pip resolved for it (typing-extensions, sympy, filelock, ...). It never holds numpy: the
installer keeps numpy out (see ``torch_installer``), so QGIS's own numpy, the one GDAL is built
against, is the only one.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

FOLDER_NAME = "fers-deps"
ENV_OVERRIDE = "FERS_DEPS_DIR"


def python_tag(version_info: Sequence[int] = sys.version_info) -> str:
    return f"{version_info[0]}.{version_info[1]}"


def deps_dir(settings_dir: Optional[str] = None, version_info: Sequence[int] = sys.version_info) -> str:
    """``<QGIS profile>/python/fers-deps/<major.minor>`` (the profile from QGIS unless given).

    ``FERS_DEPS_DIR`` names another folder (a shared install prepared by an administrator).
    """
    if os.environ.get(ENV_OVERRIDE):
        return os.environ[ENV_OVERRIDE]
    if settings_dir is None:
        from qgis.core import QgsApplication

        settings_dir = QgsApplication.qgisSettingsDirPath()
    return os.path.join(settings_dir, "python", FOLDER_NAME, python_tag(version_info))


def activate(folder: Optional[str] = None) -> bool:
    """Put the private folder at the front of ``sys.path`` when it exists; True when it is there."""
    try:
        folder = folder or deps_dir()
    except Exception:  # no QGIS application (plain Python): nothing to add
        return False
    if not os.path.isdir(folder):
        return False
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    return True
