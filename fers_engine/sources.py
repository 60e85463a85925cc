"""Row-block sources that the detectors stream from.

A detector never cares whether its input comes straight from the file (after band selection) or
from the enhancers: both are a ``BlockSource`` that returns, for any row range, a dict of
variant arrays (``{"x": block}`` for the raw source, ``{"sum": ...}`` or ``{"spe": ..., "spa":
...}`` for the enhanced one) and the validity mask. That keeps one RX/LRX code path for every
enhancer and fusion choice.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Dict, Optional, Tuple

import numpy as np

from .blas import matmul

if TYPE_CHECKING:  # pragma: no cover
    from .io.scene import BandIndices, Scene

Blocks = Dict[str, np.ndarray]
_RAW_CHUNK_BYTES = 64 * 2**20
#: Side of the square tiles the enhancers run on; the pipeline may lower a source's ``tile`` to fit
#: the networks' activations in a small memory budget (``pipeline._block_rows``).
ENHANCER_TILE = 256
_STRIP_COLS = 512  # columns of features computed at once by the enhanced source


class BlockSource:
    """Something that yields (variants, valid) for a row range [row0, row1)."""

    height: int
    width: int
    count: int
    variants: Tuple[str, ...]

    def read(self, row0: int, row1: int) -> Tuple[Blocks, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds beyond the scene (threads); the scene stays open."""


class SceneSource(BlockSource):
    """The input raster restricted to the selected bands (optionally resampled by a matrix)."""

    def __init__(
        self,
        scene: Scene,
        bands: BandIndices,
        matrix: Optional[np.ndarray] = None,
        chunk_bytes: int = _RAW_CHUNK_BYTES,
    ):
        self.scene = scene
        self.chunk_bytes = int(chunk_bytes)  # full-band float32 rows read at once (memory plan)
        self.bands = [int(b) for b in bands]
        self.matrix = None if matrix is None else np.ascontiguousarray(matrix, dtype=np.float32)
        self.height = scene.info.height
        self.width = scene.info.width
        self.count = len(self.bands) if self.matrix is None else self.matrix.shape[0]
        self.variants = ("x",)

    def read(self, row0: int, row1: int) -> Tuple[Blocks, np.ndarray]:
        if self.matrix is None:
            block, valid = self.scene.read(row0, row1, self.bands)
            return {"x": block}, valid
        # Resample in sub-chunks so the full-band rows never sit in memory all at once.
        width = self.width
        step = max(1, self.chunk_bytes // max(1, width * len(self.bands) * 4))
        out = np.empty((self.count, row1 - row0, width), np.float32)
        valid = np.empty((row1 - row0, width), bool)
        for r in range(row0, row1, step):
            r_end = min(row1, r + step)
            raw, ok = self.scene.read(r, r_end, self.bands)
            b, rows, cols = raw.shape
            out[:, r - row0 : r_end - row0] = matmul(self.matrix, raw.reshape(b, rows * cols)).reshape(
                -1, rows, cols
            )
            valid[r - row0 : r_end - row0] = ok
        return {"x": out}, valid


class EnhancedSource(BlockSource):
    """Scene blocks enhanced by a FERS model, fused as the pipeline asked.

    ``sum`` gives one variant, x + spe (+ spa); ``hadamard`` gives two, x + spe and x + spa, whose
    RX maps the pipeline multiplies. Features need ``halo`` rows of context on each side, read
    from the scene and cropped, so any row blocking gives the same numbers. Blocks already
    computed are kept when the whole scene's output fits the cache budget, so the statistics pass
    and the scoring pass do not run the networks twice on scenes that fit in memory; larger
    scenes are recomputed block by block instead, which keeps memory bounded.
    """

    def __init__(
        self,
        raw: BlockSource,
        enhancer,
        normaliser,
        enhancer_mode: str,
        fusion: str,
        cache_bytes: int = 0,
        batch_bytes: int = 256 * 2**20,
    ):
        self.raw = raw
        self.batch_bytes = int(batch_bytes)  # the networks' activations per batch (memory plan)
        self.tile = ENHANCER_TILE  # tile side for the networks (tile-exact: any value, same result)
        self.enhancer = enhancer
        self.normaliser = normaliser
        self.parts = ("spectral",) if enhancer_mode == "spectral" else ("spectral", "spatial")
        self.fusion = fusion if enhancer_mode == "full" else "sum"
        self.height, self.width, self.count = raw.height, raw.width, raw.count
        self.variants = ("spe", "spa") if self.fusion == "hadamard" else ("sum",)
        self.halo = int(enhancer.halo)
        self._cache: OrderedDict[Tuple[int, int], Tuple[Blocks, np.ndarray]] = OrderedDict()
        self._cache_bytes = 0
        whole_scene = self.height * self.width * self.count * 4 * len(self.variants)
        self._cache_limit = int(cache_bytes) if whole_scene <= cache_bytes else 0

    def read(self, row0: int, row1: int) -> Tuple[Blocks, np.ndarray]:
        key = (row0, row1)
        if key in self._cache:
            return self._cache[key]
        from .nets.context import context_rows, feature_strips

        # Features need context rows on each side; more when nodata must be filled in from the
        # nearest valid pixels (nets/context.py), so read again wider only when there is nodata.
        halo = self.halo
        r0, r1 = max(0, row0 - halo), min(self.height, row1 + halo)
        blocks, valid = self.raw.read(r0, r1)
        if not valid.all():
            wide = context_rows(halo, True)
            r0, r1 = max(0, row0 - wide), min(self.height, row1 + wide)
            blocks, valid = self.raw.read(r0, r1)
        x = self.normaliser.apply(blocks.pop("x"))
        top, bottom = row0 - r0, row1 - r0
        # Each fused variant starts as the block's own rows and gathers the features strip by
        # strip: no block-sized feature arrays beside it. Sums in the order x + spe + spa.
        if self.variants == ("sum",):
            out: Blocks = {"sum": x[:, top:bottom].copy()}
            into = {p: "sum" for p in self.parts}
        else:
            out = {"spe": x[:, top:bottom].copy(), "spa": x[:, top:bottom].copy()}
            into = {"spectral": "spe", "spatial": "spa"}
        strips = feature_strips(
            lambda b: self.enhancer.features(
                b, parts=self.parts, tile=self.tile, max_batch_bytes=self.batch_bytes
            ),
            x,
            valid,
            r0,
            r1,
            row0,
            row1,
            halo,
            self.height,
            self.strip_cols(r1 - r0),
        )
        for c0, c1, feats in strips:
            for part in self.parts:  # spectral first: the sum's order
                out[into[part]][:, :, c0:c1] += feats[part]
        del x
        result = (out, valid[top:bottom])
        size = sum(a.nbytes for a in out.values())
        if self._cache_bytes + size <= self._cache_limit:
            self._cache[key] = result
            self._cache_bytes += size
        return result

    def strip_cols(self, rows: int) -> int:
        """Columns of features computed at once for a read of ``rows`` rows.

        The numpy networks run a strip in one pass, so the strip is as wide as the batch budget
        allows for the strip plus its halo columns (at most ``_STRIP_COLS``, at least the halo:
        narrower strips would spend more on halo columns than on their own); the torch backend
        tiles the strip itself and takes ``_STRIP_COLS``.
        """
        if self.enhancer.backend != "numpy":
            return _STRIP_COLS
        from .nets.numpy_forward import bytes_per_pixel

        per_col = max(1, int(rows)) * bytes_per_pixel(self.enhancer.card.arch)
        fit = self.batch_bytes // per_col - 2 * self.halo
        return int(min(_STRIP_COLS, max(self.halo, 8, fit)))

    def close(self) -> None:
        self.raw.close()


class ReadAhead(BlockSource):
    """Reads the next row window in a background thread while the caller works on this one.

    Streaming passes ask for windows at a fixed stride (halo windows included), so the next
    window is predictable from the last two; it is read while the caller runs the enhancers or
    the detector, on the GPU or on the other CPU core. GDAL decoding and the band resampling
    release the GIL, so the read really overlaps. One window at most is in flight, and the
    wrapped source is never used by two threads at once: any other request first waits for it.
    A wrong guess costs only the wasted read.
    """

    def __init__(self, inner: BlockSource):
        self.inner = inner
        self.height, self.width, self.count = inner.height, inner.width, inner.count
        self.variants = inner.variants
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pending: Optional[Tuple[Tuple[int, int], Future]] = None
        self._last: Optional[Tuple[int, int]] = None
        self.hits = 0  # windows served from the read-ahead (for tests and benchmarks)

    def read(self, row0: int, row1: int) -> Tuple[Blocks, np.ndarray]:
        key = (row0, row1)
        result = None
        if self._pending is not None:
            guess, future = self._pending
            self._pending = None
            if guess == key:
                result = future.result()
                self.hits += 1
            else:
                _settle(future)
        if result is None:
            result = self.inner.read(row0, row1)
        nxt = self._predict(key)
        self._last = key
        if nxt is not None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fers-read-ahead")
            self._pending = (nxt, self._pool.submit(self.inner.read, *nxt))
        return result

    def _predict(self, key: Tuple[int, int]) -> Optional[Tuple[int, int]]:
        """The window one stride on; the stride is read off the window ends, which stay
        regular where a halo window is clipped at the top of the image."""
        if self._last is None:
            return None
        step = key[1] - self._last[1]
        if step <= 0:
            return None
        start, end = key[0] + step, min(self.height, key[1] + step)
        return (start, end) if start < end else None

    def close(self) -> None:
        if self._pending is not None:
            _settle(self._pending[1])
            self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.inner.close()


def _settle(future: Future) -> None:
    """Wait for an unwanted read to finish (the source may not be shared), ignoring its error:
    a window nobody asked for must not fail the run."""
    if not future.cancel():
        try:
            future.result()
        except Exception:  # noqa: BLE001 - the error belongs to a read nobody asked for
            pass
