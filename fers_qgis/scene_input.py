"""The scene an algorithm reads: a raster layer, or a file that QGIS cannot open as a layer.

MATLAB ``.mat`` cubes and sensor products as delivered (EMIT NetCDF, PRISMA/Tanager HDF5-EOS,
EnMAP ``METADATA.XML`` or its ZIP) are not GDAL layers, or not usable ones, so the algorithms take
them as a file parameter beside the layer parameter and hand the path to the engine's
``open_scene``, which reads the product and its georeference. The plugin only picks the path.
"""

from __future__ import annotations

import os

from qgis.core import QgsProviderRegistry

from .parameters import given

# What the file picker offers: first every file FERS may read, by extension (products are also
# recognised by content, so a renamed product still shows); then each sensor product by its
# delivered file names (the engine's list, ``fers_engine.io.open.PRODUCT_FILE_FILTERS``); then the
# plain formats; then "All files" (ENVI data files often have no extension, e.g. SDData beside
# SDData.hdr). Both cases are listed because EnMAP and DESIS deliver ``.TIF``/``.XML`` and GTK's
# file dialog matches case.
SCENE_EXTENSIONS = (
    "*.nc *.nc4 *.he5 *.h5 *.hdf5 *.xml *.XML *.zip *.ZIP *.tif *.tiff *.TIF *.TIFF "
    "*.hdr *.img *.dat *.bsq *.bil *.bip *.mat"
)
FORMAT_FILE_FILTERS = (
    ("ENVI (header or data file)", "*.hdr *.img *.dat *.bsq *.bil *.bip"),
    ("GeoTIFF", "*.tif *.tiff *.TIF *.TIFF"),
    ("MATLAB cube", "*.mat"),
)


def scene_file_filter() -> str:
    """The Qt file filter of a scene file parameter (built when the algorithm defines its parameters)."""
    try:
        from fers_engine.io.open import PRODUCT_FILE_FILTERS
    except ImportError:  # the engine cannot load here; the algorithm says so when it runs
        PRODUCT_FILE_FILTERS = ()
    groups = [("Scenes and sensor products", SCENE_EXTENSIONS), *PRODUCT_FILE_FILTERS, *FORMAT_FILE_FILTERS]
    return ";;".join([f"{label} ({patterns})" for label, patterns in groups] + ["All files (*)"])


# Product file suffixes that name a part of a product, not the scene (EnMAP, DESIS)
PART_SUFFIXES = ("-METADATA", "_METADATA", "-SPECTRAL_IMAGE", "_SPECTRAL_IMAGE")


def active_raster_layer_id() -> str:
    """The id of the raster layer selected in QGIS's Layers panel; '' headless or off the main thread.

    QGIS's dialogs preselect the active layer only for a mandatory layer parameter; the scene layer
    is optional (a scene file may be given instead), so the detect dialog started empty although
    the scene was loaded and selected. Algorithms are created on the dialog's (main) thread, but a
    graphical model creates its steps on a worker thread, where the GUI must not be asked.
    """
    from qgis.core import QgsRasterLayer
    from qgis.PyQt.QtCore import QCoreApplication, QThread

    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        return ""
    try:
        from qgis.utils import iface
    except ImportError:  # pragma: no cover - qgis.utils is part of QGIS's Python
        return ""
    layer = iface.activeLayer() if iface is not None else None
    return layer.id() if isinstance(layer, QgsRasterLayer) and layer.isValid() else ""


def raster_path(layer) -> str:
    """The file path behind a GDAL raster layer (without ``|option`` suffixes)."""
    if layer is None:
        return ""
    source = layer.source()
    try:
        parts = QgsProviderRegistry.instance().decodeUri(layer.providerType() or "gdal", source)
        path = parts.get("path") or source
    except Exception:  # pragma: no cover - defensive
        path = source.split("|")[0]
    return path


def scene_name(path: str) -> str:
    """A short name for a scene file, as layer names use it: ``SDData``, ``EMIT_L2A_RFL_...``.

    An ENVI ``.hdr`` is named after its data; an EnMAP or DESIS ``...-METADATA.XML`` or
    ``...-SPECTRAL_IMAGE.TIF`` after its product (a bare ``METADATA.XML`` after its folder).
    """
    path = path.rstrip("/\\")
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    stem = stem if ext else base
    for suffix in PART_SUFFIXES:
        if stem.upper().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if not stem or stem.upper() == "METADATA":
        return os.path.basename(os.path.dirname(path)) or base
    return stem


def scene_file(alg, parameters, context, file_key: str) -> str:
    """The scene file parameter's path, '' when unset."""
    if not given(parameters.get(file_key)):
        return ""
    return (alg.parameterAsFile(parameters, file_key, context) or "").strip()


def scene_input_problem(alg, parameters, context, layer_key: str, file_key: str) -> str:
    """'' when the layer or the file parameter is set, else what is missing.

    Both may be set: the dialog preselects the active raster layer, and a user who then browses to a
    scene file means that file (``scene_input`` reads it and says the layer is not used).
    """
    has_layer = given(parameters.get(layer_key))
    has_file = bool(scene_file(alg, parameters, context, file_key))
    if not has_layer and not has_file:
        return (
            f"give the scene to search: a raster layer ({layer_key}) or a scene file such as a .mat "
            f"cube or a sensor product ({file_key})"
        )
    return ""


def scene_input(alg, parameters, context, layer_key: str, file_key: str, feedback=None):
    """``(path, name)`` of the scene to read (the file when both are set); raises
    QgsProcessingException naming the problem."""
    from qgis.core import QgsProcessingException

    problem = scene_input_problem(alg, parameters, context, layer_key, file_key)
    if problem:
        raise QgsProcessingException(problem)
    path = scene_file(alg, parameters, context, file_key)
    if path:
        if given(parameters.get(layer_key)) and feedback is not None:
            feedback.pushInfo(
                f"Reading the scene file {os.path.basename(path)} ({file_key}); the raster layer "
                f"({layer_key}) is not used"
            )
        return path, scene_name(path)
    layer = alg.parameterAsRasterLayer(parameters, layer_key, context)
    if layer is None:
        raise QgsProcessingException(
            f"{alg.invalidRasterError(parameters, layer_key)}; a scene that QGIS cannot open as a layer (a "
            ".mat "
            f"cube, a sensor product) goes in {file_key}"
        )
    return raster_path(layer), layer.name()
