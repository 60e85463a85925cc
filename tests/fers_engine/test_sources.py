"""The read-ahead wrapper: same data as direct reads, served ahead on regular strides, never two
reads of the wrapped source at once, and errors only for windows somebody asked for."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fers_engine.sources import BlockSource, ReadAhead


class FakeSource(BlockSource):
    """Rows filled with their index; records every read and whether two ever overlapped."""

    def __init__(self, height=100, width=3, fail_rows=(), delay=0.0):
        self.height, self.width, self.count, self.variants = height, width, 2, ("x",)
        self.calls, self.fail_rows, self.delay = [], set(fail_rows), delay
        self.busy, self.overlapped, self.closed = threading.Lock(), False, False

    def read(self, row0, row1):
        if not self.busy.acquire(blocking=False):
            self.overlapped = True
            self.busy.acquire()
        try:
            self.calls.append((row0, row1))
            time.sleep(self.delay)
            if row0 in self.fail_rows:
                raise OSError(f"bad block at row {row0}")
            rows = np.arange(row0, row1, dtype=np.float32)
            block = np.broadcast_to(rows[None, :, None], (2, row1 - row0, self.width)).copy()
            return {"x": block}, np.ones((row1 - row0, self.width), bool)
        finally:
            self.busy.release()

    def close(self):
        self.closed = True


def _windows(height, step, halo):
    return [(max(0, r - halo), min(height, r + step + halo)) for r in range(0, height, step)]


@pytest.mark.parametrize("halo", [0, 4])
def test_halo_windows_are_served_ahead_with_the_same_data(halo):
    src = FakeSource(delay=0.002)
    ahead = ReadAhead(src)
    windows = _windows(100, 16, halo)
    for _ in range(2):  # two passes, as global RX makes
        for r0, r1 in windows:
            data, valid = ahead.read(r0, r1)
            assert data["x"].shape == (2, r1 - r0, 3) and valid.all()
            assert np.array_equal(data["x"][0, :, 0], np.arange(r0, r1))
    # every window after the second of each pass came from the read-ahead
    assert ahead.hits == 2 * (len(windows) - 2)
    ahead.close()
    assert src.closed and not src.overlapped


def test_a_failed_guess_is_silent_but_a_requested_failure_raises():
    src = FakeSource(fail_rows={48})
    ahead = ReadAhead(src)
    ahead.read(0, 16)
    ahead.read(16, 32)  # now (32, 48) is read ahead ...
    ahead.read(32, 48)  # ... and (48, 64) is guessed: it fails in the background
    ahead.read(0, 10)  # another window: the failed guess is dropped without an error
    with pytest.raises(OSError, match="row 48"):
        ahead.read(48, 64)
    ahead.close()
    assert not src.overlapped


def test_close_waits_for_the_read_in_flight():
    src = FakeSource(delay=0.05)
    ahead = ReadAhead(src)
    ahead.read(0, 10)
    ahead.read(10, 20)  # (20, 30) is now in flight
    ahead.close()
    assert src.calls[-1] == (20, 30) and not src.busy.locked()


def test_fers_detect_ignores_a_nodata_collar(tmp_path):
    """The streamed product path (EnhancedSource, small row blocks): a scene and the same scene
    inside a nodata collar get the same full-method scores on the scene's pixels."""
    from engine_helpers import write_cube, write_tiny_model

    from fers_engine.io import open_scene
    from fers_engine.pipeline import DetectOptions, detect

    model = write_tiny_model(tmp_path / "tiny.safetensors")
    rng = np.random.default_rng(5)
    cube = (np.cumsum(rng.normal(size=(16, 40, 30)), axis=1) * 3 + 500).astype(np.float32)
    w = 11
    framed = np.full((16, 40 + 2 * w, 30 + 2 * w), -9999.0, np.float32)
    framed[:, w:-w, w:-w] = cube
    out = {}
    for name, data in (("plain", cube), ("framed", framed)):
        src = write_cube(tmp_path / f"{name}.tif", data, nodata=-9999.0)
        detect(
            src,
            tmp_path / f"{name}-score.tif",
            DetectOptions(enhancer="full", model=str(model), device="cpu", block_rows=7),
        )
        with open_scene(tmp_path / f"{name}-score.tif") as s:
            out[name] = s.read_all()[0][0]
    np.testing.assert_allclose(out["framed"][w:-w, w:-w], out["plain"], rtol=1e-4, atol=1e-3)


def test_fers_detect_with_ragged_nodata_does_not_depend_on_the_block_size(tmp_path):
    """Nodata spread over the scene: rows read around each block must reach the valid pixels the
    fill takes its values from, so small blocks give the one-block scores."""
    from engine_helpers import write_cube, write_tiny_model

    from fers_engine.io import open_scene
    from fers_engine.pipeline import DetectOptions, detect

    model = write_tiny_model(tmp_path / "tiny.safetensors")
    rng = np.random.default_rng(6)
    cube = (np.cumsum(rng.normal(size=(16, 60, 30)), axis=1) * 3 + 500).astype(np.float32)
    holes = rng.random((60, 30)) < 0.08
    # a band of nodata as deep as the networks' halo (7 px) just above the block that starts at
    # row 40: its upper rows must be filled from row 32, more than a halo above that block
    holes[33:40] = True
    cube[:, holes] = -9999.0
    src = write_cube(tmp_path / "holes.tif", cube, nodata=-9999.0)
    out = {}
    for rows in (5, 1000):
        detect(
            src,
            tmp_path / f"s{rows}.tif",
            DetectOptions(enhancer="full", model=str(model), device="cpu", block_rows=rows),
        )
        with open_scene(tmp_path / f"s{rows}.tif") as s:
            scores, scored = s.read_all()
        assert np.array_equal(scored, ~holes)  # nodata in, nodata (NaN) out
        out[rows] = scores[0]
    np.testing.assert_allclose(out[5][~holes], out[1000][~holes], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("resample", [False, True])
def test_read_ahead_over_a_gdal_raster_serves_what_direct_reads_give(tmp_path, resample):
    """Over a real tiled, compressed GeoTIFF with a nodata value (GDAL decodes in the worker
    thread, the dataset is used from two threads in turn): every window of two halo passes,
    band selection and resampling included, equals a direct read of a second handle."""
    from engine_helpers import write_cube

    from fers_engine.io import open_scene
    from fers_engine.sources import SceneSource

    rng = np.random.default_rng(8)
    cube = (rng.normal(size=(9, 301, 37)) * 40 + 500).astype(np.float32)
    cube[:, 17:40, 5:9] = -9999.0  # a nodata patch, across a window edge
    path = write_cube(tmp_path / "scene.tif", cube, nodata=-9999.0)
    bands = [0, 2, 3, 5, 8]
    matrix = rng.random((3, len(bands))).astype(np.float32) if resample else None
    windows = _windows(301, 32, 6)
    with open_scene(path) as direct_scene, open_scene(path) as scene:
        direct = SceneSource(direct_scene, bands, matrix, chunk_bytes=37 * 5 * 4 * 7)
        ahead = ReadAhead(SceneSource(scene, bands, matrix, chunk_bytes=37 * 5 * 4 * 7))
        for _ in range(2):
            for r0, r1 in windows:
                got, got_valid = ahead.read(r0, r1)
                want, want_valid = direct.read(r0, r1)
                np.testing.assert_array_equal(got_valid, want_valid)
                np.testing.assert_array_equal(got["x"], want["x"])
                if r0 == 0:  # the nodata patch is read as invalid, the rest as data
                    assert not got_valid[17:r1, 5:9].any() and got_valid[:17].all()
        assert ahead.hits == 2 * (len(windows) - 2)
        ahead.close()


class CubeSource(BlockSource):
    """Rows of an in-memory (C, H, W) cube, some pixels invalid."""

    def __init__(self, cube, valid):
        self.cube, self.valid = cube, valid
        self.count, self.height, self.width = cube.shape
        self.variants = ("x",)

    def read(self, row0, row1):
        return {"x": self.cube[:, row0:row1].copy()}, self.valid[row0:row1].copy()


@pytest.mark.parametrize("fusion", ["sum", "hadamard"])
def test_a_small_batch_budget_narrows_the_strips_not_the_features(fusion):
    """The numpy networks run one column strip at a time, as wide as the batch budget allows:
    a small budget gives narrow strips (and no block-sized feature arrays), the same features."""
    from fers_engine.nets.enhancer import load_enhancer
    from fers_engine.nets.normalise import Normaliser
    from fers_engine.sources import _STRIP_COLS, EnhancedSource

    enhancer = load_enhancer("fers-default", device="cpu", backend="numpy")
    rng = np.random.default_rng(4)
    cube = rng.normal(size=(enhancer.bands, 40, 70)).astype(np.float32)
    valid = np.ones(cube.shape[1:], bool)
    valid[:3, :5] = False
    norm = Normaliser()
    norm.update(cube, valid)

    def source(batch_bytes):
        raw = CubeSource(cube, valid)
        return EnhancedSource(raw, enhancer, norm, "full", fusion, batch_bytes=batch_bytes)

    wide, narrow = source(1 << 30), source(2 << 20)
    assert wide.strip_cols(40) == _STRIP_COLS
    assert enhancer.halo <= narrow.strip_cols(40) < 70
    for r0, r1 in [(0, 12), (12, 29), (29, 40)]:
        a, va = wide.read(r0, r1)
        b, vb = narrow.read(r0, r1)
        np.testing.assert_array_equal(va, vb)
        assert a.keys() == b.keys() == set(wide.variants)
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-5)
