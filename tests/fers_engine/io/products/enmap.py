"""EnMAP L2A as DLR delivers it: ``<name>-SPECTRAL_IMAGE.TIF`` (int16 reflectance x 10000, nodata
-32768, UTM) and ``<name>-METADATA.XML`` (``level_X``: ``specific/bandCharacterisation/bandID``
with wavelengthCenterOfBand, FWHMOfBand, GainOfBand, OffsetOfBand; ``specific/{vnir,swir}
ProductQuality/expectedChannelsList``; ``product/bandStatistics/bandID`` with mean and
stdDeviation), in a folder or in the delivered ZIP (``<name>/<name>-...``)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

import numpy as np
from osgeo import gdal, osr

NAME = "ENMAP01-____L2A-DT0000001234_20220724T104526Z_001_V010303_20230101T000000Z"
TRANSFORM = (366015.0, 30.0, 0.0, 5809965.0, 0.0, -30.0)
NODATA = -32768
GAIN = 0.0001


def write_image(path: Path, dn: np.ndarray, transform=TRANSFORM, epsg: int = 32633) -> Path:
    """A (bands, rows, cols) int16 GeoTIFF with nodata, through GDAL's GTiff driver."""
    bands, rows, cols = dn.shape
    ds = gdal.GetDriverByName("GTiff").Create(
        str(path), cols, rows, bands, gdal.GDT_Int16, ["INTERLEAVE=BAND"]
    )
    ds.SetGeoTransform(transform)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        band = ds.GetRasterBand(b + 1)
        band.SetNoDataValue(NODATA)
        band.WriteArray(dn[b])
    ds = None
    return Path(path)


def metadata_xml(
    wavelengths: Sequence[float],
    fwhm: Sequence[float],
    vnir: Sequence[int],
    swir: Sequence[int],
    empty: Sequence[int] = (),
    gain: float = GAIN,
) -> str:
    """METADATA.XML text; ``vnir``/``swir`` are 1-based channel lists, ``empty`` 0-based
    no-data bands (bandStatistics mean -1000000, stdDeviation 0)."""
    chars = "".join(
        f'<bandID number="{i + 1}"><wavelengthCenterOfBand>{w:.3f}</wavelengthCenterOfBand>'
        f"<FWHMOfBand>{f:.3f}</FWHMOfBand><GainOfBand>{gain}</GainOfBand>"
        "<OffsetOfBand>0</OffsetOfBand></bandID>"
        for i, (w, f) in enumerate(zip(wavelengths, fwhm))
    )
    stats = "".join(
        f'<bandID number="{i + 1}"><mean>{-1000000 if i in empty else 1234.5}</mean>'
        f"<stdDeviation>{0 if i in empty else 321.0}</stdDeviation></bandID>"
        for i in range(len(wavelengths))
    )

    def quality(tag: str, channels: Sequence[int]) -> str:
        return f"<{tag}><expectedChannelsList>{','.join(map(str, channels))}</expectedChannelsList></{tag}>"

    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<level_X><metadata><name>{escape(NAME)}</name>'
        f"</metadata><specific><bandCharacterisation>{chars}</bandCharacterisation>"
        + quality("vnirProductQuality", vnir)
        + quality("swirProductQuality", swir)
        + f"</specific><product><bandStatistics>{stats}</bandStatistics></product></level_X>\n"
    )


def write_product(
    folder: Path,
    dn: np.ndarray,
    xml: str,
    xml_suffix: str = "-METADATA.XML",
    image_suffix: str = "-SPECTRAL_IMAGE.TIF",
) -> Path:
    """The unpacked product folder; returns the metadata file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / f"{NAME}{image_suffix}", dn)
    meta = folder / f"{NAME}{xml_suffix}"
    meta.write_text(xml)
    return meta


def write_zip(path: Path, folder: Path) -> Path:
    """The delivered ZIP: every file of the product folder under ``<name>/``."""
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"{NAME}/{f.name}")
    return path
