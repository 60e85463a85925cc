"""Scene checks made before work: complex samples, band counts, bands that hold no value."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from fers_engine.errors import InputError
from fers_engine.io.checks import (
    band_labels,
    check_band_count,
    check_scene,
    drop_empty_bands,
    find_empty_bands,
)
from fers_engine.io.scene import Scene, SceneInfo
from fers_engine.progress import Reporter


class ArrayScene(Scene):
    """An in-memory scene that counts the rows it reads."""

    def __init__(self, cube: np.ndarray, nodata=None, wavelengths=None):
        self.cube = cube
        self.rows_read = 0
        self.info = SceneInfo(
            path="/data/cube.tif",
            height=cube.shape[1],
            width=cube.shape[2],
            count=cube.shape[0],
            dtype=str(cube.dtype),
            nodata=nodata,
            wavelengths=wavelengths,
        )

    def _read_raw(self, row0, row1, bands):
        self.rows_read += row1 - row0
        return self.cube[bands, row0:row1]


def _info(**kw):
    base = dict(path="/data/c.tif", height=4, width=4, count=5, dtype="float32")
    base.update(kw)
    return SceneInfo(**base)


def test_complex_and_single_band_scenes_are_refused():
    with pytest.raises(InputError, match="c.tif holds complex samples \\(complex64\\)"):
        check_scene(_info(dtype="complex64"))
    with pytest.raises(InputError, match="has 1 band"):
        check_scene(_info(count=1))
    check_scene(_info())


def test_a_band_selection_needs_two_bands():
    info = _info(wavelengths=np.array([400.0, 500.0, 600.0, 700.0, 800.0]))
    with pytest.raises(InputError, match="keeps only band 4 \\(700.0 nm\\) of c.tif; .* at least 2 bands"):
        check_band_count(info, [3])
    with pytest.raises(InputError, match="keeps no band"):
        check_band_count(info, [])
    check_band_count(info, [0, 3])


def test_band_labels_are_one_based_with_wavelength_or_name():
    info = _info(band_names=["Band 1", "red edge", "Band 3", "", "Band 5"])
    assert band_labels(info, [0, 1, 3]) == "band 1, band 2 (red edge), band 4"
    assert band_labels(info, list(range(5)), limit=2) == "band 1, band 2 (red edge) and 3 more"


def test_empty_bands_are_found_and_a_normal_scene_costs_one_probe():
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(6, 200, 10)).astype(np.float32)
    scene = ArrayScene(cube)
    assert find_empty_bands(scene, np.arange(6), probe_bytes=6 * 10 * 9 * 20).size == 0
    assert scene.rows_read == 20  # stopped after the first chunk of 20 rows
    cube[2] = np.nan
    cube[4] = -9999.0
    cube[1, :150] = np.nan  # a band that is valid only near the bottom is not empty
    scene = ArrayScene(cube, nodata=-9999.0)
    assert find_empty_bands(scene, np.arange(6), probe_bytes=6 * 10 * 9 * 20).tolist() == [2, 4]
    assert scene.rows_read == 200
    assert find_empty_bands(scene, [0, 1, 3]).size == 0


def test_empty_bands_are_dropped_with_a_warning_naming_them_or_refused():
    cube = np.random.default_rng(1).normal(size=(5, 8, 9)).astype(np.float32)
    cube[[1, 3]] = np.nan
    scene = ArrayScene(cube, wavelengths=np.array([400.0, 500.0, 600.0, 700.0, 800.0]))
    warnings = []
    kept = drop_empty_bands(scene, np.arange(5), Reporter(on_warning=warnings.append))
    assert kept.tolist() == [0, 2, 4]
    assert warnings == [
        "dropped 2 band(s) of cube.tif hold no valid value (all NaN or nodata): "
        "band 2 (500.0 nm), band 4 (700.0 nm)"
    ]
    with pytest.raises(InputError, match="^2 band\\(s\\) of cube.tif hold no valid value"):
        drop_empty_bands(scene, np.arange(5), drop=False)
    with pytest.raises(InputError, match="without them 1 band\\(s\\) would be left"):
        drop_empty_bands(scene, [0, 1, 3])


def test_stored_validity_masks_count_as_no_value():
    class Masked(ArrayScene):
        def _extra_valid(self, row0, row1):
            return np.zeros((row1 - row0, self.info.width), bool)

    scene = Masked(np.ones((3, 4, 4), np.float32))
    assert find_empty_bands(scene, [0, 1, 2]).tolist() == [0, 1, 2]


def test_validity_per_band_uses_the_read_rule():
    cube = np.array([[[1.0, np.nan]], [[-5.0, 2.0]], [[np.inf, 1e39]]], dtype=np.float64)
    scene = ArrayScene(cube, nodata=-5.0)
    ok = scene.read_band_validity(0, 1)
    # inf and a float64 value that overflows float32 are unusable, as in read()
    assert ok[:, 0].tolist() == [[True, False], [False, True], [False, False]]
    _, valid = scene.read(0, 1)
    assert valid.tolist() == [[False, False]] and (ok.all(axis=0) == valid).all()


def test_failed_reads_become_one_line_naming_the_file():
    class Broken(ArrayScene):
        def _read_raw(self, row0, row1, bands):
            try:
                raise OSError("TIFFFillTile: Read error at row 3; got 10 bytes, expected 4096")
            except OSError as inner:
                raise RuntimeError("Read failed. See previous exception for details.") from inner

    scene = Broken(np.ones((2, 4, 4), np.float32))
    for call in (lambda: scene.read(0, 2), lambda: scene.read_band_validity(0, 2)):
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value) == (
            "cannot read rows 0-2 of cube.tif (TIFFFillTile: Read error at row 3; got 10 "
            "bytes, expected 4096): the file may be truncated or damaged"
        )


def test_memory_errors_are_not_disguised():
    class Greedy(ArrayScene):
        def _read_raw(self, row0, row1, bands):
            raise MemoryError()

    with pytest.raises(MemoryError):
        Greedy(np.ones((2, 4, 4), np.float32)).read(0, 2)


def test_band_labels_accept_plain_objects():
    info = SimpleNamespace(band_names=None, wavelengths=None)
    assert band_labels(info, [0]) == "band 1"
