"""Raster input/output for the engine: one reader interface for every format, one writer.

``open_scene(path, ReaderOptions())`` gives a ``Scene`` whose ``read(row0, row1, bands)`` returns
a float32 bands-first block (reflectance, for products that declare a scale) and a bool validity
mask; sensor products (EMIT, EnMAP, PRISMA, AVIRIS, DESIS, Tanager) are recognised by
``detect_product``; ``RasterWriter`` writes every output atomically.
"""

from .bands import first_n, resample_block, resampling_matrix, select_bands, wavelengths_to_nm
from .blocks import count_blocks, default_block_rows, iter_row_blocks
from .open import (
    PRODUCT_FILE_FILTERS,
    ReaderOptions,
    detect_product,
    find_ground_truth,
    open_scene,
    read_ground_truth,
)
from .scene import Scene, SceneInfo
from .writer import RasterWriter, write_array

__all__ = [
    "open_scene",
    "ReaderOptions",
    "detect_product",
    "PRODUCT_FILE_FILTERS",
    "read_ground_truth",
    "find_ground_truth",
    "SceneInfo",
    "Scene",
    "RasterWriter",
    "write_array",
    "select_bands",
    "resampling_matrix",
    "resample_block",
    "wavelengths_to_nm",
    "first_n",
    "default_block_rows",
    "iter_row_blocks",
    "count_blocks",
]
