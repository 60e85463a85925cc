"""FERS for QGIS: a Processing provider over the standalone ``fers_engine``.

QGIS imports this package and calls ``classFactory(iface)``; ``iface`` is ``None`` under
``qgis_process``. Importing must stay cheap and must not need torch: every heavy import happens
inside the algorithms' ``processAlgorithm``.
"""

import os
import site
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _bootstrap_venv():
    """Put the site-packages of FERS_VENV (or an activated VIRTUAL_ENV) in front of sys.path.

    qgis_process embeds the system Python, so a venv's packages (torch, rasterio) are only
    visible after this. ``site.addsitedir`` also runs the venv's .pth files (editable installs).
    """
    venv = os.environ.get("FERS_VENV") or os.environ.get("VIRTUAL_ENV")
    if not venv:
        return
    sp = os.path.join(venv, "lib", "python{}.{}".format(*sys.version_info[:2]), "site-packages")
    if not os.path.isdir(sp):
        return
    before = list(sys.path)
    site.addsitedir(sp)
    front = [sp] + [p for p in sys.path if p not in before and p != sp]
    sys.path[:] = front + [p for p in sys.path if p not in front]


def _ensure_engine():
    """Use an installed ``fers_engine``; fall back to the copy vendored in ``fers_qgis/ext``."""
    try:
        import fers_engine  # noqa: F401
    except ImportError:
        ext = os.path.join(_HERE, "ext")
        if os.path.isdir(os.path.join(ext, "fers_engine")) and ext not in sys.path:
            sys.path.append(ext)


def _add_private_packages():
    """The folder "Install PyTorch for FERS" fills (in the QGIS profile), in front of sys.path."""
    try:
        from . import deps

        deps.activate()
    except Exception:  # never let a broken private folder stop the plugin from loading
        pass


_add_private_packages()
_bootstrap_venv()  # after: a developer's venv wins over the private folder
_ensure_engine()


def classFactory(iface):  # noqa: N802 (QGIS API name)
    from .plugin import FersPlugin

    return FersPlugin(iface)
