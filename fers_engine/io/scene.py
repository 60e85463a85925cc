"""What every reader exposes: ``SceneInfo`` plus the ``Scene`` read interface.

Detectors, enhancers and the writer only ever see this interface, so a scene from a GeoTIFF, an
ENVI cube or a MATLAB benchmark file is handled by exactly the same streamed code path.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import BandIndexError, FersError, InputError

if TYPE_CHECKING:
    from .glt import MapView

#: 0-based band indices: a list or an integer array (what band selection returns).
BandIndices = Union[Sequence[int], np.ndarray]


@dataclass
class SceneInfo:
    """Size, georeference and spectral description of a scene, independent of its format.

    ``transform`` is the GDAL geotransform ``(x0, dx, rx, y0, ry, dy)``; ``crs`` is WKT. Both are
    None when the source is not georeferenced (``.mat`` files, plain arrays), which is allowed.
    ``wavelengths`` and ``fwhm`` are always nanometres once here; ``wavelength_units`` keeps what
    the file said so a message can quote it. ``bad_bands`` follows ENVI ``bbl``: True = good.
    ``notes`` collects things worth telling the user (guessed units, transposed ground truth).
    ``product`` names a recognised sensor product (``"EMIT L2A RFL"``), None for plain rasters.
    ``scale``/``offset`` (one value per band, or None) turn stored values into reflectance:
    ``reflectance = stored * scale + offset``; ``Scene.read`` applies them, after nodata is
    compared in stored units, so every block a detector sees is reflectance.
    """

    path: str
    height: int
    width: int
    count: int
    dtype: str
    crs: Optional[str] = None
    transform: Optional[Tuple[float, ...]] = None
    nodata: Optional[float] = None
    wavelengths: Optional[np.ndarray] = None
    wavelength_units: Optional[str] = None
    fwhm: Optional[np.ndarray] = None
    bad_bands: Optional[np.ndarray] = None
    band_names: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    product: Optional[str] = None
    scale: Optional[np.ndarray] = None
    offset: Optional[np.ndarray] = None

    @property
    def shape(self) -> Tuple[int, int, int]:
        """``(count, height, width)``: the bands-first shape of the whole cube."""
        return (self.count, self.height, self.width)

    @property
    def georeferenced(self) -> bool:
        return self.transform is not None


def band_index_array(bands: Optional[BandIndices], count: int, name: str = "the scene") -> np.ndarray:
    """Validate 0-based band indices up front so a typo fails with a message, not an IndexError."""
    if bands is None:
        return np.arange(count, dtype=np.int64)
    idx = np.asarray(list(bands) if not isinstance(bands, np.ndarray) else bands)
    if idx.ndim != 1 or idx.size == 0:
        raise InputError(f"band selection is empty: no band indices given for {name}")
    if idx.dtype.kind == "b" or idx.dtype.kind not in "iu":
        raise InputError(f"band indices must be integers, got {idx.dtype} for {name}")
    bad = idx[(idx < 0) | (idx >= count)]
    if bad.size:
        worst = int(bad.max()) if (bad >= count).any() else int(bad.min())
        raise BandIndexError(
            f"band index {worst} out of range: {name} has {count} bands (0-based indices 0..{count - 1})",
            worst,
            count,
            name,
        )
    return idx.astype(np.int64)


class Scene(abc.ABC):
    """A readable cube: ``read(row0, row1, bands)`` returns a float32 bands-first block + mask.

    Subclasses implement ``_read_raw`` (source dtype, bands-first) and optionally
    ``_extra_valid`` (a validity mask stored with the data). The base class turns the raw block
    into float32, builds the mask from nodata and non-finite values (in any of the bands read),
    and zero-fills invalid pixels so that vectorised maths downstream (integral images, matrix
    products) stays finite; callers must still honour the mask.
    """

    info: SceneInfo
    # The map grid the scores go on when it differs from the scene's own geometry (EMIT's GLT,
    # a north-up AVIRIS line): a ``glt.MapView``; None = scores keep the scene's geometry.
    map_view: Optional[MapView] = None

    # -- to implement -------------------------------------------------------------------------
    @abc.abstractmethod
    def _read_raw(self, row0: int, row1: int, bands: np.ndarray) -> np.ndarray:
        """Rows ``row0:row1`` of the given bands, shape (B, rows, width), source dtype."""

    def _extra_valid(self, row0: int, row1: int) -> Optional[np.ndarray]:
        """A stored validity mask for the rows (True = usable), or None when there is none."""
        return None

    def _nodata_for(self, bands: np.ndarray) -> list:
        """Nodata value per requested band (None = no nodata); per band for GDAL sources."""
        return [self.info.nodata] * len(bands)

    def close(self) -> None:  # noqa: B027 (optional: a scene that holds no handle keeps this)
        """Release the file handle; reading after close is an error."""

    def read_unit_rows(self) -> int:
        """Rows of the file's storage unit, a tile or strip holding every band: reading any of
        its rows decodes all of it. 1 for scanline layouts and sources that do not say."""
        return 1

    # -- shared behaviour ---------------------------------------------------------------------
    def read(
        self, row0: int, row1: int, bands: Optional[BandIndices] = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Rows ``row0:row1`` as ``(float32 (B, rows, W), bool (rows, W))``; bands are 0-based."""
        idx = band_index_array(bands, self.info.count)
        raw = self._read_checked(row0, row1, idx)
        valid = np.ones(raw.shape[1:], dtype=bool)
        for k, nd in enumerate(self._nodata_for(idx)):
            if nd is not None and not np.isnan(nd):
                valid &= raw[k] != _cast_like(nd, raw.dtype)
        with np.errstate(over="ignore"):  # float64 beyond float32's range: inf, then invalid
            block = raw.astype(np.float32, copy=False)
        block = self._to_reflectance(block, raw, idx)
        if raw.dtype.kind in "fc":  # integers are always finite; float64 may overflow float32
            valid &= np.isfinite(block).all(axis=0)
        extra = self._extra_valid(int(row0), int(row1))
        if extra is not None:
            valid &= extra
        if not valid.all():
            if block is raw:
                block = block.copy()
            block[:, ~valid] = 0.0
        return block, valid

    def read_band_validity(self, row0: int, row1: int, bands: Optional[BandIndices] = None) -> np.ndarray:
        """bool ``(B, rows, W)``: where each band *on its own* holds a usable value (not nodata,
        finite in float32, inside the stored validity mask). ``read`` combines the bands, so one
        band of NaN makes every pixel invalid; this tells which band it is."""
        idx = band_index_array(bands, self.info.count)
        raw = self._read_checked(row0, row1, idx)
        ok = np.ones(raw.shape, dtype=bool)
        for k, nd in enumerate(self._nodata_for(idx)):
            if nd is not None and not np.isnan(nd):
                ok[k] &= raw[k] != _cast_like(nd, raw.dtype)
            if raw.dtype.kind in "fc":
                with np.errstate(over="ignore"):
                    ok[k] &= np.isfinite(raw[k].astype(np.float32, copy=False))
        extra = self._extra_valid(int(row0), int(row1))
        if extra is not None:
            ok &= extra[None]
        return ok

    def _read_checked(self, row0: int, row1: int, idx: np.ndarray) -> np.ndarray:
        """``_read_raw`` after a range check; a failed read (a truncated or damaged file, a file
        cut short while a run reads it) becomes one ``InputError`` line naming the file."""
        h = self.info.height
        if not (0 <= int(row0) < int(row1) <= h):
            raise InputError(f"row range {row0}:{row1} outside the scene (0:{h})")
        try:
            return self._read_raw(int(row0), int(row1), idx)
        except (FersError, MemoryError):
            raise
        except Exception as exc:  # reader libraries raise their own types (RasterioIOError, RuntimeError...)
            raise InputError(
                f"cannot read rows {row0}-{row1} of {Path(self.info.path).name} "
                f"({_deepest_message(exc)}): the file may be truncated or damaged"
            ) from None

    def _to_reflectance(self, block: np.ndarray, raw: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``block * scale + offset`` per band when the product declares them (never in place on
        the raw array, which a reader may share)."""
        scale, offset = self.info.scale, self.info.offset
        if scale is None and offset is None:
            return block
        out = block.copy() if block is raw else block
        if scale is not None:
            out *= np.asarray(scale, dtype=np.float32)[idx][:, None, None]
        if offset is not None:
            out += np.asarray(offset, dtype=np.float32)[idx][:, None, None]
        return out

    def read_all(self, bands: Optional[BandIndices] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The whole scene in one block: only for small scenes (benchmarks, tests)."""
        return self.read(0, self.info.height, bands)

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return f"{type(self).__name__}({i.path!r}, {i.height}x{i.width}x{i.count} {i.dtype})"


def _cast_like(value: float, dtype: np.dtype):
    """Nodata in the source dtype, so -9999 compares exactly against int16 or float32 data."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not float(value).is_integer() or not (info.min <= value <= info.max):
            return np.array(np.nan)  # cannot occur in this dtype: compares unequal everywhere
        return dtype.type(int(value))
    return dtype.type(value)


def _deepest_message(exc: Optional[BaseException]) -> str:
    """First line of the innermost cause: GDAL's own words ("TIFFFillTile: Read error ..."),
    which the outer wrappers ("Read failed. See previous exception") only point to."""
    text = ""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = line or text
        exc = exc.__cause__
    return text or "read error"
