"""Training requests refused before any training work: epochs, exclusion masks, outputs."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.errors import InputError, OutputError
from fers_engine.nets.train_request import check_train_request


def write_cube(path, cube):
    """A plain GeoTIFF through osgeo.gdal (bands, rows, cols)."""
    from osgeo import gdal, gdal_array

    ds = gdal.GetDriverByName("GTiff").Create(
        str(path),
        cube.shape[2],
        cube.shape[1],
        cube.shape[0],
        gdal_array.NumericTypeCodeToGDALTypeCode(cube.dtype),
    )
    for i, band in enumerate(cube):
        ds.GetRasterBand(i + 1).WriteArray(band)
    ds = None
    return path


@pytest.fixture
def scene(tmp_path):
    cube = np.random.default_rng(0).normal(100, 5, size=(6, 20, 18)).astype(np.float32)
    return write_cube(tmp_path / "v.tif", cube)


def _check(scene, tmp_path, epochs=None, exclude=None, out=None, checkpoints=()):
    check_train_request(
        [str(scene)], exclude, epochs or {"0": 1, "1": 2}, out or tmp_path / "m.safetensors", checkpoints
    )


def test_a_sound_request_passes_and_writes_nothing(scene, tmp_path):
    _check(scene, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.tif"]


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "2"])
def test_epochs_must_be_whole_and_positive(scene, tmp_path, bad):
    with pytest.raises(
        InputError, match=f"epochs must be a whole number of at least 1, got {bad!r} for stage 1"
    ):
        _check(scene, tmp_path, epochs={"0": 1, "1": bad})


def test_exclusion_masks_must_match_in_number_and_size(scene, tmp_path):
    with pytest.raises(InputError, match="2 exclusion masks given for 1 inputs"):
        _check(scene, tmp_path, exclude=[None, None])
    small = write_cube(tmp_path / "ex.tif", np.zeros((1, 10, 12), np.uint8))
    with pytest.raises(
        InputError, match="exclusion mask ex.tif is 12 x 10 px but the training input v.tif is 18 x 20 px"
    ):
        _check(scene, tmp_path, exclude=[str(small)])


def test_nothing_left_to_train_on_is_refused(scene, tmp_path):
    everything = write_cube(tmp_path / "all.tif", np.ones((1, 20, 18), np.uint8))
    with pytest.raises(InputError, match="exclusion mask all.tif excludes every pixel of v.tif"):
        _check(scene, tmp_path, exclude=[str(everything)])
    # nodata on the left half, the mask on the right half: no valid pixel is left
    cube = np.random.default_rng(1).normal(100, 5, size=(6, 20, 18)).astype(np.float32)
    cube[:, :, :9] = np.nan
    half = write_cube(tmp_path / "half.tif", cube)
    right = np.zeros((1, 20, 18), np.uint8)
    right[..., 9:] = 1
    with pytest.raises(
        InputError, match="every valid pixel of the training input half.tif is excluded by right.tif"
    ):
        check_train_request(
            [str(half)],
            [str(write_cube(tmp_path / "right.tif", right))],
            {"1": 1},
            tmp_path / "m.safetensors",
        )


def test_an_input_without_valid_pixels_names_its_empty_bands(tmp_path):
    cube = np.random.default_rng(2).normal(100, 5, size=(4, 12, 12)).astype(np.float32)
    cube[1:] = np.nan
    src = write_cube(tmp_path / "nan.tif", cube)
    with pytest.raises(
        InputError,
        match="the training input nan.tif has 1 band\\(s\\) with a valid value; these "
        "bands hold no valid value: band 2, band 3, band 4; training needs at least 2",
    ):
        check_train_request([str(src)], None, {"1": 1}, tmp_path / "m.safetensors")
    cube = np.random.default_rng(2).normal(100, 5, size=(4, 12, 12)).astype(np.float32)
    cube[:, 5, 5] = np.nan  # one pixel invalid in every band; the other pixels miss one band each
    cube[0, :5], cube[1, 5:], cube[2, 5, :5], cube[3, 5, 6:] = np.nan, np.nan, np.nan, np.nan
    src = write_cube(tmp_path / "holes.tif", cube)
    with pytest.raises(InputError, match="every pixel of the training input holes.tif is nodata or NaN$"):
        check_train_request([str(src)], None, {"1": 1}, tmp_path / "m.safetensors")


def test_bands_without_any_valid_value_are_dropped_as_training_drops_them(tmp_path):
    """An EnMAP L2A tile's water-vapour bands are nodata everywhere: training reads the other
    bands (nets.data.read_scene), so the request is sound."""
    from fers_engine.nets.data import read_scene

    cube = np.random.default_rng(2).normal(100, 5, size=(4, 12, 12)).astype(np.float32)
    cube[2] = np.nan
    src = write_cube(tmp_path / "nan.tif", cube)
    check_train_request([str(src)], None, {"1": 1}, tmp_path / "m.safetensors")
    raw = read_scene(src, truth="none")
    assert raw.cube.shape == (3, 12, 12) and raw.valid.all()


def test_outputs_may_not_replace_inputs(scene, tmp_path):
    with pytest.raises(OutputError, match="the model v.tif would overwrite the input v.tif"):
        _check(scene, tmp_path, out=scene)
    mask = write_cube(tmp_path / "m.json", np.zeros((1, 20, 18), np.uint8))
    with pytest.raises(
        OutputError, match="the model m.json \\(written with m.safetensors\\) would overwrite the input"
    ):
        _check(scene, tmp_path, exclude=[str(mask)])
    with pytest.raises(OutputError, match="the training checkpoint v.tif would overwrite the input v.tif"):
        _check(scene, tmp_path, checkpoints=[scene])
    truth = write_cube(tmp_path / "vGt.tif", np.zeros((1, 20, 18), np.uint8))  # found and read as labels
    with pytest.raises(OutputError, match="would overwrite the input vGt.tif"):
        _check(scene, tmp_path, out=truth)


def test_complex_and_single_band_inputs_are_refused(tmp_path):
    one = write_cube(tmp_path / "one.tif", np.ones((1, 8, 8), np.float32))
    with pytest.raises(InputError, match="one.tif has 1 band"):
        check_train_request([str(one)], None, {"1": 1}, tmp_path / "m.safetensors")
