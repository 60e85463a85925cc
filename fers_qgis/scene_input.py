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

# What the file picker offers first; "All files" stays available for products named otherwise.
SCENE_FILE_FILTER = (
    "Scenes and sensor products (*.mat *.nc *.nc4 *.he5 *.h5 *.hdf *.xml *.XML *.zip *.tif *.tiff *.img "
    "*.dat "
    "*.bsq *.bil *.bip *.hdr);;All files (*)"
)
# Product file suffixes that name a part of a product, not the scene (EnMAP, DESIS)
PART_SUFFIXES = ("-METADATA", "_METADATA", "-SPECTRAL_IMAGE", "_SPECTRAL_IMAGE")


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
    """'' when exactly one of the layer and the file parameter is set, else what is wrong."""
    has_layer = given(parameters.get(layer_key))
    has_file = bool(scene_file(alg, parameters, context, file_key))
    if has_layer and has_file:
        return f"give either a raster layer ({layer_key}) or a scene file ({file_key}), not both"
    if not has_layer and not has_file:
        return (
            f"give the scene to search: a raster layer ({layer_key}) or a scene file such as a .mat "
            f"cube or a sensor product ({file_key})"
        )
    return ""


def scene_input(alg, parameters, context, layer_key: str, file_key: str):
    """``(path, name)`` of the scene to read; raises QgsProcessingException naming the problem."""
    from qgis.core import QgsProcessingException

    problem = scene_input_problem(alg, parameters, context, layer_key, file_key)
    if problem:
        raise QgsProcessingException(problem)
    path = scene_file(alg, parameters, context, file_key)
    if path:
        return path, scene_name(path)
    layer = alg.parameterAsRasterLayer(parameters, layer_key, context)
    if layer is None:
        raise QgsProcessingException(
            f"{alg.invalidRasterError(parameters, layer_key)}; a scene that QGIS cannot open as a layer (a "
            ".mat "
            f"cube, a sensor product) goes in {file_key}"
        )
    return raster_path(layer), layer.name()
