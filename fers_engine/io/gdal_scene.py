"""Any raster GDAL reads (GeoTIFF, ENVI, ...), through osgeo.gdal, with its spectral metadata.

Wavelengths are looked up in the order EnMAP-Box uses (anchors d.4): the ``IMAGERY`` domain
(newer GDAL), band-level ``wavelength``/``wavelength_units`` (what the ENVI driver and many
GeoTIFF writers produce), then the dataset ``ENVI`` domain (``wavelength``, ``fwhm``, ``bbl``,
``data ignore value``). The file is opened once and read window by window.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, List, Optional

import numpy as np

from ..errors import InputError
from .bands import wavelengths_to_nm
from .gdal_runtime import GdalErrors, import_gdal
from .scene import Scene, SceneInfo

# Data-file suffixes an ENVI header may sit beside ("x.hdr" for "x", "x.img", "x.dat", ...).
ENVI_DATA_SUFFIXES = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw", ".bin", ".envi")


def envi_data_file(hdr: Path) -> Optional[Path]:
    """The data file an ENVI ``.hdr`` describes; GDAL opens ENVI only through the data file."""
    stem = hdr.with_suffix("")
    for suffix in ENVI_DATA_SUFFIXES:
        cand = Path(str(stem) + suffix)
        if cand.is_file() and cand != hdr:
            return cand
    for suffix in ENVI_DATA_SUFFIXES[1:]:  # upper-case variants (Windows-made data)
        cand = Path(str(stem) + suffix.upper())
        if cand.is_file():
            return cand
    return None


class GdalScene(Scene):
    """A GDAL raster opened read-only; keeps the handle for block reads until ``close()``."""

    def __init__(self, path) -> None:
        src = Path(path) if not is_gdal_name(path) else path
        if isinstance(src, Path) and src.suffix.lower() == ".hdr":
            data = envi_data_file(src)
            if data is None:
                raise InputError(f"ENVI header {src.name} has no data file beside it")
            src = data
        with GdalErrors() as errors:
            gdal = errors.gdal
            flags = gdal.OF_RASTER | gdal.OF_READONLY | gdal.OF_VERBOSE_ERROR
            self._ds = errors.call(gdal.OpenEx, str(src), flags)
            problem = errors.take()
        if self._ds is None:
            if isinstance(src, Path) and _looks_like_text(src):
                raise InputError(f"{src.name} is a text file, not a raster GDAL can read")
            raise InputError(
                f"cannot read {_name(src)} as a raster (unrecognised or corrupt format: {problem or ''})"
            )
        self._label = _name(src)
        try:
            self.info = self._build_info(src)
            self._read_types = _read_types(self._ds)
            band_nodata = [self._ds.GetRasterBand(b).GetNoDataValue() for b in range(1, self.info.count + 1)]
            self._nodatavals = [(_float_or_none(v) if v is not None else None) for v in band_nodata]
            if self.info.nodata is not None and all(v is None for v in self._nodatavals):
                self._nodatavals = [self.info.nodata] * self.info.count  # from the ENVI domain
            self._mask_band = self._dataset_mask_band()
        except BaseException:
            self.close()
            raise

    @property
    def files(self) -> List[Path]:
        """Every file of the dataset (ENVI data + header, aux files): for the writer's guard."""
        listed = self._ds.GetFileList() if self._ds is not None else None
        return [Path(f) for f in (listed or [self.info.path])]

    # -- Scene interface ----------------------------------------------------------------------
    def _read_raw(self, row0: int, row1: int, bands: np.ndarray) -> np.ndarray:
        """One dataset-level read of the distinct bands (GDAL reads interleaved files fastest
        that way), repeated bands taken from it afterwards."""
        ds = self._open_dataset()
        uniq, inverse = np.unique(bands, return_inverse=True)
        read_as, view_as = self._read_types
        out = np.empty((len(uniq), row1 - row0, self.info.width), dtype=read_as)
        numbers = [int(b) + 1 for b in uniq]
        with GdalErrors() as errors:
            try:
                got = errors.call(
                    ds.ReadAsArray, 0, row0, self.info.width, row1 - row0, buf_obj=out, band_list=numbers
                )
            except TypeError:  # bindings older than GDAL 3.5 have no band_list: band by band
                got = out
                for k, number in enumerate(numbers):
                    if (
                        errors.call(
                            ds.GetRasterBand(number).ReadAsArray,
                            0,
                            row0,
                            self.info.width,
                            row1 - row0,
                            buf_obj=out[k],
                        )
                        is None
                    ):
                        got = None
            problem = errors.take()
        if got is None or problem:
            raise InputError(
                f"cannot read rows {row0}:{row1} of {self._label} "
                f"({problem or 'GDAL read failed'}); is the file truncated or corrupt?"
            )
        data = out if view_as is None else out.view(view_as)
        return data if len(uniq) == len(bands) and (uniq == bands).all() else data[inverse]

    def _nodata_for(self, bands: np.ndarray) -> list:
        return [self._nodatavals[int(b)] for b in bands]

    def read_unit_rows(self) -> int:
        """The height of the file's blocks (GDAL's block size: tiles, strips or chunks)."""
        return max(1, int(self._open_dataset().GetRasterBand(1).GetBlockSize()[1]))

    def _extra_valid(self, row0: int, row1: int) -> Optional[np.ndarray]:
        if self._mask_band is None:
            return None
        ds = self._open_dataset()
        band = ds.GetRasterBand(self._mask_band).GetMaskBand()
        with GdalErrors() as errors:
            mask = errors.call(band.ReadAsArray, 0, row0, self.info.width, row1 - row0)
            problem = errors.take()
        if mask is None or problem:
            raise InputError(
                f"cannot read the validity mask of {self._label} rows {row0}:{row1} "
                f"({problem or 'GDAL read failed'})"
            )
        return mask > 0

    def close(self) -> None:
        self._ds = None  # the bindings close the dataset when its last reference goes

    def _open_dataset(self):
        if self._ds is None:
            raise InputError(f"{Path(self.info.path).name} is closed")
        return self._ds

    # -- metadata ------------------------------------------------------------------------------
    def _dataset_mask_band(self) -> Optional[int]:
        """The band whose mask is a stored per-dataset mask or alpha band (not nodata, which
        ``read`` handles itself), or None when the file stores no such mask."""
        gdal = import_gdal()
        for number in range(1, self.info.count + 1):
            flags = self._ds.GetRasterBand(number).GetMaskFlags()
            if flags & (gdal.GMF_PER_DATASET | gdal.GMF_ALPHA) and not flags & gdal.GMF_NODATA:
                return number
        return None

    def _build_info(self, src) -> SceneInfo:
        ds = self._ds
        label = _name(src)
        count = int(ds.RasterCount)
        if count < 1:
            subs = _subdatasets(ds)
            if subs:
                shown = ", ".join(subs[:3]) + (", ..." if len(subs) > 3 else "")
                raise InputError(
                    f"{label} has no bands: it holds {len(subs)} subdatasets ({shown}); open one of those"
                )
            raise InputError(f"{label} has no bands")
        width, height = int(ds.RasterXSize), int(ds.RasterYSize)
        if width < 1 or height < 1:
            raise InputError(f"{label} is empty ({width}x{height} pixels)")
        envi = _tags(ds, ns="ENVI")
        notes: List[str] = []
        crs = ds.GetProjection() or None
        geo = ds.GetGeoTransform(can_return_null=True)
        transform = None
        if crs is not None or (geo is not None and tuple(geo) != IDENTITY):
            transform = tuple(float(v) + 0.0 for v in (geo or IDENTITY))  # + 0.0: no -0.0
        bands = [ds.GetRasterBand(b) for b in range(1, count + 1)]
        nodata = next((_float_or_none(v) for v in (b.GetNoDataValue() for b in bands) if v is not None), None)
        if nodata is None and "data_ignore_value" in envi:
            nodata = _float_or_none(envi["data_ignore_value"])
        wl, units, fwhm, note = _spectral(ds, envi)
        if note:
            notes.append(note)
        bad = _envi_list(envi.get("bbl"))
        bad_bands = None
        if bad is not None:
            if len(bad) == count:
                bad_bands = np.array([_float_or_none(v) not in (0.0, None) for v in bad], dtype=bool)
            else:
                notes.append(f"bbl ignored: {len(bad)} values for {count} bands")
        names = _envi_list(envi.get("band_names"))
        if names is None or len(names) != count:
            names = [b.GetDescription() or f"Band {i + 1}" for i, b in enumerate(bands)]
        if ds.GetDriver().ShortName == "ENVI":
            for f in ds.GetFileList() or []:
                if str(f).lower().endswith(".aux.xml"):
                    notes.append(f"{Path(f).name} beside the ENVI header may override its metadata")
        return SceneInfo(
            path=str(src),
            height=height,
            width=width,
            count=count,
            dtype=_dtype_name(bands[0]),
            crs=crs,
            transform=transform,
            nodata=nodata,
            wavelengths=wl,
            wavelength_units=units,
            fwhm=fwhm,
            bad_bands=bad_bands,
            band_names=[str(n) for n in names],
            notes=notes,
        )


# GDAL's "no georeference" geotransform: pixel = map coordinates.
IDENTITY = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

# GDAL data type name -> numpy dtype of the read buffer (complex integers are read as complex
# floats: numpy has no complex integer type).
_NUMPY_OF_GDAL = {
    "Byte": "uint8",
    "Int8": "int8",
    "UInt16": "uint16",
    "Int16": "int16",
    "UInt32": "uint32",
    "Int32": "int32",
    "UInt64": "uint64",
    "Int64": "int64",
    "Float32": "float32",
    "Float64": "float64",
    "CInt16": "complex64",
    "CInt32": "complex128",
    "CFloat32": "complex64",
    "CFloat64": "complex128",
}


def _signed_byte(band) -> bool:
    """GDAL < 3.7 stores int8 as Byte with ``PIXELTYPE=SIGNEDBYTE``."""
    return band.GetMetadataItem("PIXELTYPE", "IMAGE_STRUCTURE") == "SIGNEDBYTE"


def _dtype_name(band) -> str:
    """The band's data type with numpy's names (``complex_int16`` for GDAL's CInt16)."""
    gdal = import_gdal()
    name = gdal.GetDataTypeName(band.DataType)
    if name == "Byte" and _signed_byte(band):
        return "int8"
    if name in ("CInt16", "CInt32"):
        return "complex_int" + name[4:]
    if name not in _NUMPY_OF_GDAL:
        raise InputError(f"unsupported GDAL data type {name}")
    return _NUMPY_OF_GDAL[name]


def _read_types(ds):
    """``(numpy dtype to read into, dtype to view it as or None)`` for the first band's type."""
    gdal = import_gdal()
    band = ds.GetRasterBand(1)
    name = gdal.GetDataTypeName(band.DataType)
    if name == "Byte" and _signed_byte(band):
        return np.dtype("uint8"), np.dtype("int8")  # read the bytes as they are, then reinterpret
    return np.dtype(_NUMPY_OF_GDAL[name]), None


def _subdatasets(ds) -> List[str]:
    meta = ds.GetMetadata_Dict("SUBDATASETS") or {}
    names = [
        (int(k.split("_")[1]), v)
        for k, v in meta.items()
        if k.startswith("SUBDATASET_") and k.endswith("_NAME")
    ]
    return [v for _, v in sorted(names)]


def _spectral(ds, envi: dict):
    """``(wavelengths nm, units as read, fwhm nm, note)`` from the first source that has them."""
    count = ds.RasterCount
    # 1. IMAGERY domain (GDAL >= 3.10): always micrometres.
    imagery = [_tags(ds, bidx=b, ns="IMAGERY") for b in range(1, count + 1)]
    if all("CENTRAL_WAVELENGTH_UM" in t for t in imagery):
        fw_um = [t.get("FWHM_UM") for t in imagery]
        return _finish(
            [t["CENTRAL_WAVELENGTH_UM"] for t in imagery],
            "Micrometers",
            fw_um if all(v is not None for v in fw_um) else None,
        )
    # 2. band-level wavelength (+ units per band or for the dataset).
    band_tags = [_tags(ds, bidx=b) for b in range(1, count + 1)]
    if all("wavelength" in t for t in band_tags):
        units = (
            band_tags[0].get("wavelength_units")
            or _tags(ds).get("wavelength_units")
            or envi.get("wavelength_units")
        )
        fw: Optional[List[Any]] = [t.get("fwhm") for t in band_tags]
        if fw is not None and not all(v is not None for v in fw):
            fw = _envi_list(envi.get("fwhm"))
        return _finish([t["wavelength"] for t in band_tags], units, fw)
    # 3. dataset ENVI domain.
    wl: Optional[List[str]] = _envi_list(envi.get("wavelength"))
    if wl is not None:
        return _finish(wl, envi.get("wavelength_units"), _envi_list(envi.get("fwhm")))
    return None, None, None, None


def _finish(wl_values, units, fwhm_values):
    count = len(wl_values)
    try:
        values = np.array([float(v) for v in wl_values], dtype=np.float64)
    except (TypeError, ValueError):
        return None, units, None, "wavelengths ignored: not numbers"
    nm, note = wavelengths_to_nm(values, units)
    fwhm = None
    if nm is not None and fwhm_values is not None and len(fwhm_values) == count:
        try:
            fw = np.array([float(v) for v in fwhm_values], dtype=np.float64)
            scale = nm[0] / values[0] if values[0] != 0 else 1.0  # same unit as the wavelengths
            fwhm = fw * scale
        except (TypeError, ValueError):
            fwhm = None
    return nm, (str(units) if units else None), fwhm, note


def _tags(ds, bidx: int = 0, ns: Optional[str] = None) -> dict:
    """Metadata of the dataset (``bidx`` 0) or of a band in a domain; {} when it has none."""
    obj = ds if bidx == 0 else ds.GetRasterBand(bidx)
    return obj.GetMetadata_Dict(ns or "") or {}


def _envi_list(text: Optional[str]) -> Optional[List[str]]:
    """Parse an ENVI ``{a, b, c}`` list as GDAL keeps it in the ENVI domain."""
    if text is None:
        return None
    body = text.strip()
    if body.startswith("{"):
        body = body[1:]
    if body.endswith("}"):
        body = body[:-1]
    items = [s.strip() for s in re.split(r",", body)]
    items = [s for s in items if s != ""]
    return items or None


def _float_or_none(value) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _looks_like_text(p: Path) -> bool:
    """A clearer message for the common mistake of picking a .txt/.csv/.hdr-like file."""
    try:
        with open(p, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_gdal_name(path) -> bool:
    """A GDAL connection string such as ``GPKG:file.gpkg:table`` or ``NETCDF:"f.nc":var``, or a
    virtual file system path (``/vsizip/...``, ``/vsicurl/https://...``): passed to GDAL as a
    string, never through ``Path``, which would fold the ``//`` of a URL."""
    text = str(path)
    if text.startswith("/vsi"):
        return True
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9_]+:", text)) and not Path(text).exists()


def _name(src) -> str:
    return src.name if isinstance(src, Path) else str(src)
