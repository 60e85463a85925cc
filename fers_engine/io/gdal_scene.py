"""Any raster GDAL reads (GeoTIFF, ENVI, ...), through rasterio, with its spectral metadata.

Wavelengths are looked up in the order EnMAP-Box uses (anchors d.4): the ``IMAGERY`` domain
(newer GDAL), band-level ``wavelength``/``wavelength_units`` (what the ENVI driver and many
GeoTIFF writers produce), then the dataset ``ENVI`` domain (``wavelength``, ``fwhm``, ``bbl``,
``data ignore value``). The file is opened once and read window by window.
"""
from __future__ import annotations

from contextlib import contextmanager

import re
import warnings
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np

from ..errors import InputError
from .bands import wavelengths_to_nm
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
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        src = Path(path) if not is_gdal_name(path) else path
        if isinstance(src, Path) and src.suffix.lower() == ".hdr":
            data = envi_data_file(src)
            if data is None:
                raise InputError(f"ENVI header {src.name} has no data file beside it")
            src = data
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(src)
        except RasterioIOError as exc:
            if isinstance(src, Path) and _looks_like_text(src):
                raise InputError(f"{src.name} is a text file, not a raster GDAL can read") from None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise InputError(
                f"cannot read {_name(src)} as a raster (unrecognised or corrupt format: {first})"
            ) from None
        try:
            self.info = self._build_info(src)
        except BaseException:
            self._ds.close()
            raise
        self._nodatavals = [(_float_or_none(v) if v is not None else None) for v in self._ds.nodatavals]
        if self.info.nodata is not None and all(v is None for v in self._nodatavals):
            self._nodatavals = [self.info.nodata] * self.info.count  # from the ENVI domain
        self._dataset_mask = self._uses_dataset_mask()

    @property
    def files(self) -> List[Path]:
        """Every file of the dataset (ENVI data + header, aux files): for the writer's guard."""
        return [Path(f) for f in (self._ds.files or [self.info.path])]

    # -- Scene interface ----------------------------------------------------------------------
    def _read_raw(self, row0: int, row1: int, bands: np.ndarray) -> np.ndarray:
        from rasterio.windows import Window

        if self._ds.closed:
            raise InputError(f"{Path(self.info.path).name} is closed")
        window = Window(0, row0, self.info.width, row1 - row0)
        uniq, inverse = np.unique(bands, return_inverse=True)
        data = self._ds.read(indexes=[int(b) + 1 for b in uniq], window=window)
        return data if len(uniq) == len(bands) and (uniq == bands).all() else data[inverse]

    def _nodata_for(self, bands: np.ndarray) -> list:
        return [self._nodatavals[int(b)] for b in bands]

    def _extra_valid(self, row0: int, row1: int) -> Optional[np.ndarray]:
        if not self._dataset_mask:
            return None
        from rasterio.windows import Window

        mask = self._ds.dataset_mask(window=Window(0, row0, self.info.width, row1 - row0))
        return mask > 0

    def close(self) -> None:
        if not self._ds.closed:
            self._ds.close()

    # -- metadata ------------------------------------------------------------------------------
    def _uses_dataset_mask(self) -> bool:
        """True for an internal/external mask or alpha band (not nodata, which read() handles)."""
        from rasterio.enums import MaskFlags

        flags = self._ds.mask_flag_enums
        return any(
            (MaskFlags.per_dataset in f or MaskFlags.alpha in f) and MaskFlags.nodata not in f
            for f in flags
        )

    def _build_info(self, src) -> SceneInfo:
        ds = self._ds
        label = _name(src)
        if ds.count < 1:
            subs = list(ds.subdatasets or [])
            if subs:
                shown = ", ".join(subs[:3]) + (", ..." if len(subs) > 3 else "")
                raise InputError(f"{label} has no bands: it holds {len(subs)} subdatasets "
                                 f"({shown}); open one of those")
            raise InputError(f"{label} has no bands")
        if ds.width < 1 or ds.height < 1:
            raise InputError(f"{label} is empty ({ds.width}x{ds.height} pixels)")
        envi = _tags(ds, ns="ENVI")
        notes: List[str] = []
        crs = ds.crs.to_wkt() if ds.crs else None
        transform = None
        if crs is not None or not ds.transform.is_identity:
            transform = tuple(float(v) + 0.0 for v in ds.transform.to_gdal())  # no -0.0
        nodata = next((_float_or_none(v) for v in ds.nodatavals if v is not None), None)
        if nodata is None and "data_ignore_value" in envi:
            nodata = _float_or_none(envi["data_ignore_value"])
        wl, units, fwhm, note = _spectral(ds, envi)
        if note:
            notes.append(note)
        bad = _envi_list(envi.get("bbl"))
        bad_bands = None
        if bad is not None:
            if len(bad) == ds.count:
                bad_bands = np.array([_float_or_none(v) not in (0.0, None) for v in bad], dtype=bool)
            else:
                notes.append(f"bbl ignored: {len(bad)} values for {ds.count} bands")
        names = _envi_list(envi.get("band_names"))
        if names is None or len(names) != ds.count:
            names = [d if d else f"Band {i + 1}" for i, d in enumerate(ds.descriptions)]
        if ds.driver == "ENVI":
            for f in ds.files or []:
                if str(f).lower().endswith(".aux.xml"):
                    notes.append(f"{Path(f).name} beside the ENVI header may override its metadata")
        return SceneInfo(
            path=str(src),
            height=int(ds.height),
            width=int(ds.width),
            count=int(ds.count),
            dtype=str(ds.dtypes[0]),
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


def _spectral(ds, envi: dict):
    """``(wavelengths nm, units as read, fwhm nm, note)`` from the first source that has them."""
    count = ds.count
    # 1. IMAGERY domain (GDAL >= 3.10): always micrometres.
    imagery = [_tags(ds, bidx=b, ns="IMAGERY") for b in range(1, count + 1)]
    if all("CENTRAL_WAVELENGTH_UM" in t for t in imagery):
        wl = [t["CENTRAL_WAVELENGTH_UM"] for t in imagery]
        fw = [t.get("FWHM_UM") for t in imagery]
        return _finish(wl, "Micrometers", fw if all(v is not None for v in fw) else None)
    # 2. band-level wavelength (+ units per band or for the dataset).
    band_tags = [_tags(ds, bidx=b) for b in range(1, count + 1)]
    if all("wavelength" in t for t in band_tags):
        units = band_tags[0].get("wavelength_units") or _tags(ds).get("wavelength_units") \
            or envi.get("wavelength_units")
        fw = [t.get("fwhm") for t in band_tags]
        if not all(v is not None for v in fw):
            fw = _envi_list(envi.get("fwhm"))
        return _finish([t["wavelength"] for t in band_tags], units, fw)
    # 3. dataset ENVI domain.
    wl = _envi_list(envi.get("wavelength"))
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
    try:
        return ds.tags(bidx, ns=ns) if ns else ds.tags(bidx)
    except Exception:  # a missing domain is not an error
        return {}


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



@contextmanager
def limit_gdal_cache(max_bytes: int) -> Iterator[None]:
    """Cap GDAL's block cache while a job runs, then restore it.

    GDAL's default cache is 5 % of the machine's RAM (1.2 GB on 24 GB) and counts in the
    process's resident memory, so streaming a large raster under a memory budget must bound it
    too. Uses osgeo.gdal when present (the same libgdal rasterio is built against here);
    without it, the cache keeps GDAL's own setting.
    """
    try:
        from osgeo import gdal
    except ImportError:  # pragma: no cover - rasterio-only installs
        yield
        return
    previous = gdal.GetCacheMax()
    gdal.SetCacheMax(int(min(previous, max(16 * 2**20, max_bytes))))
    try:
        yield
    finally:
        gdal.SetCacheMax(previous)
