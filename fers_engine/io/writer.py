"""The one GeoTIFF writer every raster output goes through: tiled, compressed, checked, atomic.

Blocks are written through osgeo.gdal into a hidden temporary file beside the target
(``io.atomic``: ``.name.partial-XXXX.tif``) which is renamed onto the target only when the
``with`` block ends cleanly. Every GDAL write, the final flush and the close are checked (a full
disk shows up there, not as an exception from GDAL): a failure is an ``OutputError`` with GDAL's
first message. Any failure or exception, ``Cancelled`` and Ctrl-C included, deletes the temporary
file and keeps the previous output, so a failed or cancelled run never leaves a half-written
raster that QGIS would happily load. The writer also refuses to write over any file of the input
(the raster itself or its ENVI ``.hdr``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import OutputError
from .atomic import AtomicFile, CommitOnSuccess
from .gdal_runtime import GdalErrors, import_gdal
from .scene import Scene, SceneInfo

_DEFAULT = object()  # "nodata not given": NaN for float outputs, none for integer outputs
SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
BLOCK = 256


class RasterWriter(CommitOnSuccess):
    """Write a ``(count, height, width)`` GeoTIFF block by block; use as a context manager.

    ``crs`` is WKT / ``"EPSG:n"`` / an ``osr.SpatialReference`` or None (allowed: benchmark
    ``.mat`` scenes have none); ``transform`` a GDAL 6-tuple. ``like_input`` (a path, a
    ``Scene`` or a ``SceneInfo``) names the input so it can never be overwritten; a Scene or
    SceneInfo also supplies CRS and transform when those are not given. ``tags`` are dataset
    metadata; ``band_metadata`` one dict per band, e.g. ``{"wavelength": "550.0",
    "wavelength_units": "Nanometers"}``, which ``GdalScene`` reads back as wavelengths.
    """

    def __init__(
        self,
        path,
        height: int,
        width: int,
        count: int = 1,
        dtype: str = "float32",
        crs=None,
        transform=None,
        nodata=_DEFAULT,
        band_descriptions: Optional[Sequence[str]] = None,
        like_input: Union[None, str, os.PathLike, Scene, SceneInfo] = None,
        tags: Optional[dict] = None,
        band_metadata: Optional[Sequence[dict]] = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self.height, self.width, self.count = int(height), int(width), int(count)
        if min(self.height, self.width, self.count) < 1:
            raise OutputError(f"cannot write a {self.count}x{self.height}x{self.width} raster")
        self.dtype = np.dtype(dtype).name
        if self.dtype not in SUPPORTED_DTYPES:
            raise OutputError(f"output data type {self.dtype} is not supported")
        info = _info_of(like_input)
        if info is not None:
            crs = info.crs if crs is None else crs
            transform = info.transform if transform is None else transform
        self.crs = _to_crs(crs)
        self.transform = _to_geotransform(transform)
        is_float = np.dtype(self.dtype).kind == "f"
        if nodata is _DEFAULT:
            nodata = float("nan") if is_float else None
        if nodata is not None and not is_float and not float(nodata).is_integer():
            raise OutputError(f"nodata {nodata} does not fit the integer output type {self.dtype}")
        self.nodata = nodata
        if band_descriptions is not None and len(band_descriptions) != self.count:
            raise OutputError(f"{len(band_descriptions)} band descriptions for {self.count} bands")
        self.band_descriptions = list(band_descriptions) if band_descriptions is not None else None
        if band_metadata is not None and len(band_metadata) != self.count:
            raise OutputError(f"{len(band_metadata)} band metadata entries for {self.count} bands")
        self.tags = dict(tags or {})
        self.band_metadata = [dict(m or {}) for m in band_metadata] if band_metadata is not None else None
        _refuse_input_collision(self.path, like_input)
        self._file = AtomicFile(self.path, suffix=".tif")
        self._ds = None

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> RasterWriter:
        """Create the temporary file; ``__enter__`` calls this."""
        if self._ds is not None:
            return self
        gdal = import_gdal()
        tmp = self._file.open()
        is_float = np.dtype(self.dtype).kind == "f"
        options = [
            "TILED=YES",
            f"BLOCKXSIZE={BLOCK}",
            f"BLOCKYSIZE={BLOCK}",
            "COMPRESS=DEFLATE",
            f"PREDICTOR={3 if is_float else 2}",
            "BIGTIFF=IF_SAFER",
        ]
        if self.count > 1:
            options.append("INTERLEAVE=BAND")
        gdal_type, type_options = _gdal_type(gdal, self.dtype)
        with GdalErrors() as errors:
            driver = gdal.GetDriverByName("GTiff")
            ds = errors.call(
                driver.Create,
                str(tmp),
                self.width,
                self.height,
                self.count,
                gdal_type,
                options + type_options,
            )
            if ds is not None:
                self._ds = ds
                if self.crs is not None:
                    errors.call(ds.SetSpatialRef, self.crs)
                if self.transform is not None:
                    errors.call(ds.SetGeoTransform, self.transform)
                for k in range(1, self.count + 1):
                    band = ds.GetRasterBand(k)
                    if self.nodata is not None:
                        errors.call(band.SetNoDataValue, float(self.nodata))
                    if self.band_descriptions:
                        band.SetDescription(str(self.band_descriptions[k - 1]))
                    for key, value in ((self.band_metadata or [{}] * self.count)[k - 1]).items():
                        errors.call(band.SetMetadataItem, str(key), str(value))
                for key, value in self.tags.items():
                    errors.call(ds.SetMetadataItem, str(key), str(value))
            problem = errors.take()
            created = ds is not None
            ds = band = None  # the writer's own reference is the only one left
        if not created or problem:
            self.abort()
            raise OutputError(f"cannot create {self.path.name} ({problem or 'GDAL could not create it'})")
        return self

    def write(self, row0: int, array: np.ndarray) -> None:
        """Write rows ``row0:row0+rows``; ``array`` is ``(count, rows, W)`` or ``(rows, W)``."""
        if self._ds is None:
            raise OutputError("writer is not open: use it in a 'with' block")
        arr = np.asarray(array)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[0] != self.count or arr.shape[2] != self.width:
            raise OutputError(
                f"block of shape {tuple(np.shape(array))} does not fit a "
                f"{self.count}-band, {self.width}-column output"
            )
        rows = arr.shape[1]
        if not (0 <= row0 and row0 + rows <= self.height) or rows == 0:
            raise OutputError(f"rows {row0}:{row0 + rows} outside the output (0:{self.height})")
        target = np.dtype(self.dtype)
        if target.kind != "f" and arr.dtype.kind == "f":
            fill = 0 if self.nodata is None else self.nodata
            arr = np.where(np.isfinite(arr), arr, fill)
        arr = arr.astype(target, copy=False)
        if target == np.int8 and not hasattr(import_gdal(), "GDT_Int8"):
            arr = arr.view(np.uint8)  # a SIGNEDBYTE Byte band takes the bytes as they are
        with GdalErrors() as errors:
            for k in range(self.count):
                errors.call(self._ds.GetRasterBand(k + 1).WriteArray, arr[k], 0, int(row0))
            problem = errors.take()
        if problem:
            self.abort()
            raise OutputError(f"cannot write {self.path.name} ({problem})")

    def commit(self) -> Path:
        """Close and move the finished file onto the target (replacing an older output)."""
        if self._ds is None:
            raise OutputError("writer is not open")
        with GdalErrors() as errors:
            errors.call(self._ds.FlushCache)
            _close(errors, self)  # writes the last tiles and the TIFF directory
            problem = errors.take()
        if problem:
            self.abort()
            raise OutputError(f"cannot finish {self.path.name} ({problem})")
        self._file.commit()
        stale = Path(str(self.path) + ".aux.xml")  # statistics of the file we just replaced
        if stale.is_file():
            try:
                stale.unlink()
            except OSError:
                pass
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file; the target is left untouched."""
        if self._ds is not None:
            with GdalErrors() as errors:  # the file is deleted next: its closing errors do not matter
                _close(errors, self)
        if self._file.tmp is not None:
            try:
                Path(str(self._file.tmp) + ".aux.xml").unlink()  # GDAL's sidecar, if it wrote one
            except OSError:
                pass
        self._file.abort()

    def __enter__(self) -> RasterWriter:
        return self.open()


def _close(errors: GdalErrors, writer: RasterWriter) -> None:
    """Close the writer's dataset with its failures recorded in ``errors``: ``Close()`` where the
    bindings have it (GDAL >= 3.8), otherwise by dropping the writer's reference, the last one."""
    ds: Any = writer._ds
    writer._ds = None
    if hasattr(ds, "Close"):
        errors.call(ds.Close)
    del ds


def write_array(path, array: np.ndarray, **kw) -> Path:
    """Write a whole ``(rows, W)`` or ``(count, rows, W)`` array in one call; bool -> uint8."""
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise OutputError(f"cannot write an array of shape {arr.shape} as a raster")
    dtype = kw.pop("dtype", None) or _default_dtype(arr.dtype)
    with RasterWriter(path, arr.shape[1], arr.shape[2], count=arr.shape[0], dtype=dtype, **kw) as w:
        w.write(0, arr)
    return Path(path)


# -- helpers ----------------------------------------------------------------------------------
def _default_dtype(dtype: np.dtype) -> str:
    if dtype.kind == "b":
        return "uint8"
    if dtype.kind == "f":
        return "float32"
    return dtype.name if dtype.name in SUPPORTED_DTYPES else "float32"


def _info_of(like) -> Optional[SceneInfo]:
    if isinstance(like, Scene):
        return like.info
    if isinstance(like, SceneInfo):
        return like
    return None


def _input_files(like) -> list:
    """Every path that belongs to the input: the raster, its ENVI header/data partner, aux files."""
    if like is None:
        return []
    paths: list = []
    if isinstance(like, Scene):
        paths.append(Path(like.info.path))
        paths.extend(Path(f) for f in getattr(like, "files", []) or [])
    elif isinstance(like, SceneInfo):
        paths.append(Path(like.path))
    else:
        paths.append(Path(like))
    out = []
    for p in paths:
        out.append(p)
        if p.suffix.lower() == ".hdr":
            stem = p.with_suffix("")
            out.extend(Path(str(stem) + s) for s in ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw"))
        else:
            out.extend([Path(str(p) + ".hdr"), p.with_suffix(".hdr")])
    return out


def _same_file(a: Path, b: Path) -> bool:
    if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _refuse_input_collision(out: Path, like) -> None:
    for inp in _input_files(like):
        if _same_file(out, inp):
            which = "the input" if inp == _input_files(like)[0] else f"a file of the input ({inp.name})"
            raise OutputError(f"output {out.name} would overwrite {which}; choose another output path")


def _to_crs(crs):
    """An ``osr.SpatialReference`` (x = easting/longitude) from WKT, ``"EPSG:n"``, PROJ text, an
    ``osr.SpatialReference`` or any object with ``to_wkt()``; None for no CRS."""
    if crs is None or crs == "":
        return None
    from osgeo import osr

    if isinstance(crs, osr.SpatialReference):
        text = crs.ExportToWkt()
    else:
        text = crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs)
    srs = osr.SpatialReference()
    with GdalErrors() as errors:
        code = errors.call(srs.SetFromUserInput, text)
        problem = errors.take()
    if code != 0 or problem:
        raise OutputError(f"invalid output CRS ({problem or text[:60]})")
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _to_geotransform(transform) -> Optional[Tuple[float, ...]]:
    """A GDAL 6-tuple of floats from any 6-number sequence (or an object with ``to_gdal()``)."""
    if transform is None:
        return None
    if hasattr(transform, "to_gdal"):
        transform = transform.to_gdal()
    values = tuple(float(v) for v in transform)
    if len(values) != 6:
        raise OutputError(f"a geotransform has 6 numbers, got {len(values)}")
    return values


def _gdal_type(gdal, dtype: str):
    """GDAL data type code and the creation options it needs for a numpy dtype name."""
    if dtype == "int8":
        if hasattr(gdal, "GDT_Int8"):  # GDAL >= 3.7
            return gdal.GDT_Int8, []
        return gdal.GDT_Byte, ["PIXELTYPE=SIGNEDBYTE"]
    codes = {
        "uint8": gdal.GDT_Byte,
        "uint16": gdal.GDT_UInt16,
        "int16": gdal.GDT_Int16,
        "uint32": gdal.GDT_UInt32,
        "int32": gdal.GDT_Int32,
        "float32": gdal.GDT_Float32,
        "float64": gdal.GDT_Float64,
    }
    return codes[dtype], []
