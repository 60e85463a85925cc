"""One entry point for every input format, and for the ground truth that goes with a scene.

Callers (pipeline, CLI, plugin, benchmarks) never pick a reader themselves: ``open_scene``
checks the obvious user mistakes first (missing, empty, a folder, a text file) so each gets a
one-line ``InputError`` instead of a GDAL or scipy traceback, then recognises sensor products
(EMIT, EnMAP, PRISMA, AVIRIS, DESIS, Tanager: see ``detect_product``) by name and content
before falling back to the plain GDAL and ``.mat`` readers.
"""

from __future__ import annotations

import os
import stat
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Tuple, Union

import numpy as np

from ..errors import InputError
from .gdal_scene import GdalScene, envi_data_file, is_gdal_name
from .mat_scene import MatScene, mat_ground_truth
from .scene import Scene

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "PRODUCT_FILE_FILTERS",
    "ReaderOptions",
    "detect_product",
    "find_ground_truth",
    "open_scene",
    "read_ground_truth",
]

# Files that can hold a mask beside a scene; "" is an ENVI data file (its .hdr must exist).
GT_SUFFIXES = (".bmp", ".tif", ".tiff", ".png", ".mat", ".img", ".dat", ".gif", ".pgm", ".pbm", "")
GT_TAGS = ("gt", "groundtruth", "ground_truth", "ground-truth")
GT_SEPARATORS = ("", "_", "-", ".", " ")


# What a file dialog should offer for sensor products (the QGIS file parameter, a GUI): name
# patterns per product, in the form Qt's file filters take.
PRODUCT_FILE_FILTERS = (
    ("EMIT L2A RFL", "EMIT_L2A_RFL_*.nc"),
    (
        "EnMAP L2A",
        "ENMAP*L2A*-METADATA.XML ENMAP*L2A*-METADATA.xml ENMAP*L2A*.ZIP ENMAP*L2A*.zip "
        "ENMAP*L2A*-SPECTRAL_IMAGE*.TIF ENMAP*L2A*-SPECTRAL_IMAGE*.tif",
    ),
    ("PRISMA L2D", "PRS_L2D_*.he5"),
    ("AVIRIS-NG / AVIRIS-classic ENVI", "ang* f*t*p*r* *.hdr"),
    ("AVIRIS-3/5 RFL_ORT", "*_RFL_ORT.nc"),
    (
        "DESIS L2A",
        "DESIS-HSI-L2A*-METADATA.xml DESIS-HSI-L2A*-METADATA.XML DESIS-HSI-L2A*-SPECTRAL_IMAGE.tif "
        "DESIS-HSI-L2A*-SPECTRAL_IMAGE.TIF",
    ),
    ("Planet Tanager", "*.h5 *.he5"),
)


@dataclass(frozen=True)
class ReaderOptions:
    """Which grid a product's scores are written on. ``ortho=False`` keeps EMIT's swath geometry
    (no map georeference) instead of its GLT's north-up grid; ``north_up=True`` writes the scores
    of a rotated AVIRIS flight line on an axis-aligned grid (the input pixel under each map pixel
    centre) instead of keeping its rotated geotransform. Detection always runs in the product's
    own geometry."""

    ortho: bool = True
    north_up: bool = False


def open_scene(path: PathLike, options: Optional[ReaderOptions] = None) -> Scene:
    """Open a scene for block reading: a recognised sensor product gets its reader (see
    ``detect_product``), ``.mat`` -> ``MatScene``, anything else -> ``GdalScene``.

    An ENVI scene may be given by its data file or its ``.hdr``. The result is a context manager.

    Args:
        path: a file, an ENVI ``.hdr``, a product folder's file, or a GDAL subdataset name.
        options: the grid scores go on for products with a map view; None = ``ReaderOptions()``.

    Returns:
        A ``Scene``: ``info`` (a ``SceneInfo``) and ``read(row0, row1, bands)`` -> ``(block, valid)``.

    Raises:
        InputError: the file is missing, unreadable, or not a scene.
    """
    if is_gdal_name(path):  # a subdataset, e.g. GPKG:file.gpkg:table
        return GdalScene(str(path))
    p = _check_input(path)
    if _is_mat(p):
        return MatScene(p)
    try:
        opener = detect_product(p)
        if opener is not None:
            return opener(p, options or ReaderOptions())
    except InputError as exc:
        # The readers' frames hold GDAL objects; free them now rather than whenever the
        # traceback goes (after QGIS has shut GDAL down, freeing them crashes the process).
        traceback.clear_frames(exc.__traceback__)
        raise
    return GdalScene(p)


def detect_product(p: Path) -> Optional[Callable[[Path, ReaderOptions], Scene]]:
    """The reader for a sensor product, or None for a plain raster.

    By name: EnMAP (``ENMAP*L2A*-METADATA.XML``, its ZIP or ``-SPECTRAL_IMAGE``), DESIS
    (``DESIS-HSI-L2A*``), AVIRIS ENVI lines (``ang*``, ``AV3*``, ``f*t*p*r*`` or a rotated
    ``map info``); by content: NetCDF (EMIT's ``reflectance`` + ``sensor_band_parameters``,
    AVIRIS-3's ``reflectance`` group), HDF5-EOS (PRISMA's ``PRS_L2D_HCO`` swath, Tanager's
    ``HYP`` swath or grid), and rasters EnMAP-Box exported from EnMAP L2A.
    """
    from . import aviris, desis, enmap
    from .gdal_access import is_hdf5

    suffix = p.suffix.lower()
    if enmap.is_enmap_name(p):
        return lambda q, o: enmap.EnmapScene(q)
    if desis.is_desis_name(p):
        return lambda q, o: desis.DesisScene(q)
    if suffix in (".nc", ".nc4", ".he5", ".h5", ".hdf5") and is_hdf5(p):
        return _multidim_product(p)
    header = p if suffix == ".hdr" else _envi_header(p)
    if header is not None and (aviris.is_aviris_name(p) or aviris.has_rotated_map_info(header)):
        data = envi_data_file(header) if suffix == ".hdr" else p
        if data is None:
            raise InputError(f"ENVI header {header.name} has no data file beside it")
        return lambda q, o: aviris.open_aviris_envi(data, north_up=o.north_up)
    if suffix in (".tif", ".tiff", ".vrt") and _is_enmap_box_export(p):
        return lambda q, o: enmap.EnmapScene(q)
    return None


def _multidim_product(p: Path) -> Optional[Callable[[Path, ReaderOptions], Scene]]:
    from . import aviris, emit, prisma, tanager
    from .gdal_access import open_multidim

    name = p.name.upper()
    if name.startswith("EMIT_L2A_RFL"):  # by name first, so a broken file says what it lacks
        return lambda q, o: emit.open_emit(q, ortho=o.ortho)
    if name.startswith("PRS_L2D"):
        return lambda q, o: prisma.PrismaScene(q)
    if name.endswith("_RFL_ORT.NC"):
        return lambda q, o: aviris.Aviris3Scene(q)
    _, root = open_multidim(str(p), p.name, "NetCDF/HDF5")
    if emit.looks_like_emit(root):
        return lambda q, o: emit.open_emit(q, ortho=o.ortho)
    if aviris.looks_like_aviris_nc(root):
        return lambda q, o: aviris.Aviris3Scene(q)
    if prisma.looks_like_prisma(root):
        return lambda q, o: prisma.PrismaScene(q)
    if tanager.looks_like_tanager(root):
        return lambda q, o: tanager.TanagerScene(q)
    if p.suffix.lower() == ".he5":
        raise InputError(
            f"{p.name}: not a PRISMA L2D or Tanager product (neither HDFEOS/SWATHS/"
            "PRS_L2D_HCO nor HDFEOS/*/HYP is in the file)"
        )
    return None


def _envi_header(p: Path) -> Optional[Path]:
    for cand in (Path(str(p) + ".hdr"), p.with_suffix(".hdr")):
        if cand != p and cand.is_file():
            return cand
    return None


def _is_enmap_box_export(p: Path) -> bool:
    from .enmap import is_enmap_box_export
    from .gdal_access import gdal_call
    from .gdal_runtime import import_gdal

    gdal = import_gdal()
    ds, _ = gdal_call(gdal.OpenEx, str(p), gdal.OF_RASTER | gdal.OF_READONLY)
    return ds is not None and is_enmap_box_export(ds)


def find_ground_truth(scene_path: PathLike) -> Optional[Path]:
    """Where the anomaly mask for a scene lives, or None.

    A ``.mat`` scene that stores its own mask answers with itself. Otherwise the folder is
    searched (case-insensitively) for ``<stem>Gt.*``, ``<stem>_gt.*``, ``<stem>-groundtruth.*``
    and similar, e.g. ``SDDataGt.bmp`` beside the ENVI scene ``SDData``.
    """
    p = Path(scene_path)
    if not p.is_file():
        return None
    if _is_mat(p):
        try:
            if MatScene(p).ground_truth is not None:
                return p
        except InputError:
            pass
    return _sibling_ground_truth(p)


def read_ground_truth(path: PathLike, expected_shape: Optional[Tuple[int, ...]] = None) -> np.ndarray:
    """Anomaly mask ``bool (rows, cols)`` (True = anomaly) for a scene or a mask file.

    ``path`` may be the mask itself (a 1-bit BMP, any single-band raster: nonzero = anomaly; a
    ``.mat`` with a mask) or a scene whose mask is found by ``find_ground_truth``. With
    ``expected_shape`` a mask of another size is refused rather than silently misaligned.

    Args:
        path: a mask file or a scene with its truth beside it.
        expected_shape: ``(rows, cols)`` the mask must have, or None.

    Returns:
        ``bool (rows, cols)``, True where there is an anomaly.

    Raises:
        InputError: no mask found, unreadable, or of another size.
    """
    p = _check_input(path)
    gt = _read_gt(p)
    if expected_shape is not None and gt.shape != tuple(expected_shape):
        raise InputError(
            f"ground truth is {gt.shape[0]}x{gt.shape[1]} but the scene is "
            f"{expected_shape[0]}x{expected_shape[1]} ({p.name})"
        )
    return gt


# -- helpers ----------------------------------------------------------------------------------
def _read_gt(p: Path) -> np.ndarray:
    if _is_mat(p):
        gt = mat_ground_truth(p)
        if gt is not None:
            return gt
        sibling = _sibling_ground_truth(p)
        if sibling is None:
            raise InputError(f"no ground-truth mask found in {p.name} or beside it")
        return _read_mask_file(sibling)
    sibling = _sibling_ground_truth(p)
    if sibling is not None:
        return _read_mask_file(sibling)
    with open_scene(p) as scene:
        if scene.info.count != 1:
            raise InputError(
                f"{p.name} has {scene.info.count} bands, so it is not a mask, and no ground truth "
                f"(e.g. {_stem(p)}Gt.bmp or {_stem(p)}_gt.tif) was found beside it"
            )
    return _read_mask_file(p)


def _read_mask_file(p: Path) -> np.ndarray:
    """A mask file: any band nonzero = anomaly (so RGB masks work too); nodata = background."""
    if _is_mat(p):
        gt = mat_ground_truth(p)
        if gt is None:
            raise InputError(f"no ground-truth mask found in {p.name}")
        return gt
    with open_scene(p) as scene:
        block, valid = scene.read_all()
    return (block != 0).any(axis=0) & valid


def _sibling_ground_truth(p: Path) -> Optional[Path]:
    stem = _stem(p).lower()
    folder = p.parent
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    own = {p.name.lower(), (_stem(p) + ".hdr").lower()}
    by_lower = {n.lower(): n for n in names}
    for tag in GT_TAGS:
        for sep in GT_SEPARATORS:
            base = stem + sep + tag
            for suffix in GT_SUFFIXES:
                name = by_lower.get(base + suffix)
                if name is None or name.lower() in own:
                    continue
                cand = folder / name
                if not cand.is_file() or cand.stat().st_size == 0:
                    continue
                if suffix == "" and not (folder / (name + ".hdr")).is_file():
                    continue  # a suffix-less file is only a mask when it is ENVI data
                return cand
    return None


def _stem(p: Path) -> str:
    """Scene stem: ``SDData`` for ``SDData``, ``SDData.hdr`` and ``SDData.img``."""
    if p.suffix.lower() == ".hdr":
        p = p.with_suffix("")
    return p.stem if p.suffix else p.name


def _check_input(path: PathLike) -> Path:
    if path is None or str(path) == "":
        raise InputError("no input file given")
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"input not found: {p}")
    if p.is_dir():
        raise InputError(f"input is a folder, not a raster file: {p}")
    mode = p.stat().st_mode
    if not stat.S_ISREG(mode):  # a device reads forever (/dev/zero) or blocks (a named pipe)
        kind = (
            "a character device"
            if stat.S_ISCHR(mode)
            else "a block device"
            if stat.S_ISBLK(mode)
            else "a named pipe"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a file"
        )
        raise InputError(f"input {p} is {kind}, not a raster file")
    if p.stat().st_size == 0:
        raise InputError(f"input file is empty (0 bytes): {p}")
    return p


def _is_mat(p: Path) -> bool:
    if p.suffix.lower() == ".mat":
        return True
    try:
        with open(p, "rb") as f:
            return f.read(10).startswith(b"MATLAB")
    except OSError:
        return False
