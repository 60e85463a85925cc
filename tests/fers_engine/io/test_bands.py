"""Band selection, wavelength units, first-N and the spectral resampling matrix."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.errors import InputError
from fers_engine.io import (
    first_n,
    open_scene,
    resample_block,
    resampling_matrix,
    select_bands,
    wavelengths_to_nm,
)
from fers_engine.io.scene import SceneInfo


def _info(count=10, wavelengths=None, bad=None) -> SceneInfo:
    return SceneInfo(
        path="cube.tif",
        height=2,
        width=2,
        count=count,
        dtype="float32",
        wavelengths=None if wavelengths is None else np.asarray(wavelengths, float),
        bad_bands=None if bad is None else np.asarray(bad, bool),
    )


# -- selection ---------------------------------------------------------------------------------
def test_select_by_indices_sorted_and_unique():
    np.testing.assert_array_equal(select_bands(_info(), indices=[7, 2, 2, 0]), [0, 2, 7])
    np.testing.assert_array_equal(select_bands(_info()), np.arange(10))


def test_select_by_wavelength_ranges_inclusive():
    info = _info(wavelengths=np.arange(400, 1400, 100))  # 400..1300 nm
    got = select_bands(info, wavelength_ranges=[(400, 600), (1150, 1300)])
    np.testing.assert_array_equal(got, [0, 1, 2, 8, 9])


def test_drop_bad_bands_and_intersection():
    bad = np.ones(10, bool)
    bad[[1, 5]] = False
    info = _info(wavelengths=np.arange(400, 1400, 100), bad=bad)
    np.testing.assert_array_equal(select_bands(info, drop_bad_bands=True), [0, 2, 3, 4, 6, 7, 8, 9])
    got = select_bands(info, indices=range(0, 7), wavelength_ranges=[(500, 2000)], drop_bad_bands=True)
    np.testing.assert_array_equal(got, [2, 3, 4, 6])
    # no bbl in the file: dropping bad bands keeps everything
    np.testing.assert_array_equal(select_bands(_info(), drop_bad_bands=True), np.arange(10))


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(indices=[10]), "band index 10 out of range: 'cube.tif' has 10 bands"),
        (dict(indices=[-1]), "out of range"),
        (dict(indices=[]), "empty"),
        (dict(indices=[1.5]), "integers"),
        (dict(wavelength_ranges=[(400, 500)]), "has no wavelengths"),
    ],
)
def test_selection_errors_without_wavelengths(kw, words):
    with pytest.raises(InputError, match=words):
        select_bands(_info(), **kw)


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(wavelength_ranges=[(2000, 2500)]), "band selection is empty"),
        (dict(wavelength_ranges=[(900, 500)]), "low > high"),
        (dict(wavelength_ranges=[]), "empty"),
        (dict(indices=[0], wavelength_ranges=[(900, 1000)]), "empty"),
    ],
)
def test_selection_errors_with_wavelengths(kw, words):
    with pytest.raises(InputError, match=words):
        select_bands(_info(wavelengths=np.arange(400, 1400, 100)), **kw)


def test_first_n():
    np.testing.assert_array_equal(first_n(205, 3), [0, 1, 2])
    with pytest.raises(InputError, match="has 162 bands but 175 are needed"):
        first_n(162, 175)
    with pytest.raises(InputError):
        first_n(10, 0)


# -- wavelength units --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, units, expected, guessed",
    [
        ([0.4, 2.5], "Micrometers", [400, 2500], False),
        ([0.4, 2.5], "microns", [400, 2500], False),
        ([400, 2500], "Nanometers", [400, 2500], False),
        ([400, 2500], "nm", [400, 2500], False),
        ([0.4, 2.5], None, [400, 2500], True),
        ([400, 2500], "", [400, 2500], True),
        ([0.4, 2.5], "Unknown", [400, 2500], True),
    ],
)
def test_wavelength_units(values, units, expected, guessed):
    nm, note = wavelengths_to_nm(values, units)
    np.testing.assert_allclose(nm, expected)
    assert (note is not None and "guessed" in note) == guessed


@pytest.mark.parametrize("values, units", [([1, 2, 3], "Index"), ([4, 219], None), ([np.nan, 1], None)])
def test_implausible_wavelengths_are_dropped(values, units):
    nm, note = wavelengths_to_nm(values, units)
    assert nm is None and "ignored" in note


# -- resampling --------------------------------------------------------------------------------
def test_resampling_rows_sum_to_one_and_reproduce_a_linear_spectrum():
    src = np.linspace(400, 2500, 189)
    tgt = np.linspace(450, 2400, 72)
    R, desc = resampling_matrix(src, 189, tgt, 72)
    assert R.shape == (72, 189) and R.dtype == np.float32
    np.testing.assert_allclose(R.sum(axis=1), 1.0, atol=1e-6)
    assert (R >= 0).all() and ((R > 0).sum(axis=1) <= 2).all(), "interpolation between neighbours"
    spectrum = 3.0 + 0.01 * src
    np.testing.assert_allclose(R.astype(np.float64) @ spectrum, 3.0 + 0.01 * tgt, rtol=1e-6)
    assert "by wavelength" in desc and "clamped" not in desc


def test_targets_outside_the_range_clamp_and_say_so():
    src = np.array([500.0, 600.0, 700.0])
    R, desc = resampling_matrix(src, 3, np.array([400.0, 550.0, 800.0, 900.0]), 4)
    np.testing.assert_allclose(R, [[1, 0, 0], [0.5, 0.5, 0], [0, 0, 1], [0, 0, 1]])
    assert "3 target band(s) outside the input range were clamped" in desc


def test_unsorted_source_wavelengths():
    """AVIRIS spectrometers overlap, so real wavelength vectors step back (Santa Barbara)."""
    src = np.array([400.0, 500.0, 600.0, 580.0, 700.0])
    R, _ = resampling_matrix(src, 5, np.array([590.0, 650.0]), 2)
    spectrum = 2.0 * src
    np.testing.assert_allclose(R @ spectrum, [1180.0, 1300.0], rtol=1e-6)
    np.testing.assert_allclose(R.sum(axis=1), 1.0)


def test_same_grid_is_identity():
    wl = np.linspace(400, 1000, 7)
    R, desc = resampling_matrix(wl, 7, wl.copy(), 7)
    np.testing.assert_array_equal(R, np.eye(7))
    assert "no resampling" in desc


def test_band_axis_interpolation_without_wavelengths():
    R, desc = resampling_matrix(None, 5, None, 9)
    np.testing.assert_allclose(R.sum(axis=1), 1.0, atol=1e-6)
    ramp = np.arange(5.0)  # linear along the band axis -> stays linear on the new axis
    np.testing.assert_allclose(R @ ramp, np.linspace(0, 4, 9), atol=1e-6)
    assert "normalised band axis" in desc and "no input and target wavelengths" in desc
    R, desc = resampling_matrix(np.linspace(400, 900, 5), 5, None, 9)
    assert "no target wavelengths" in desc
    R, desc = resampling_matrix(None, 6, None, 6)
    np.testing.assert_array_equal(R, np.eye(6))


def test_resampling_input_errors():
    with pytest.raises(InputError, match="3 bands but 2 wavelengths"):
        resampling_matrix([400, 500], 3, None, 4)
    with pytest.raises(InputError):
        resampling_matrix(None, 0, None, 4)


def test_resample_block_is_a_tensordot_over_bands():
    rng = np.random.default_rng(0)
    block = rng.random((5, 3, 4), dtype=np.float32)
    R, _ = resampling_matrix(None, 5, None, 3)
    out = resample_block(block, R)
    assert out.shape == (3, 3, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.einsum("ts,srw->trw", R, block), rtol=1e-6)
    with pytest.raises(InputError, match="4 bands but the resampling expects 5"):
        resample_block(block[:4], R)


def test_san_diego_onto_the_muufl_grid(shared_data):
    with (
        open_scene(shared_data / "san-diego-envi-90x90" / "SDData") as sd,
        open_scene(shared_data / "muufl-gulfport-crops" / "an_hsi_img_for_tgt_det_demo.mat") as mu,
    ):
        R, desc = resampling_matrix(sd.info.wavelengths, sd.info.count, mu.info.wavelengths, mu.info.count)
        block, _ = sd.read(0, 4)
    assert R.shape == (72, 189)
    assert "clamped" in desc, "MUUFL starts at 367.7 nm, below the San Diego 429.4 nm"
    assert resample_block(block, R).shape == (72, 4, 90)
    kept = select_bands(sd.info, wavelength_ranges=[(400, 1340), (1450, 1800)], drop_bad_bands=True)
    assert 0 < kept.size < 189 and sd.info.wavelengths[kept].max() <= 1800
