"""CRD (collaborative representation detector) against a per-pixel reference solve."""

from __future__ import annotations

import numpy as np
import pytest
from ring_reference import per_pixel

from fers_engine.detectors import crd as crd_module, parallel
from fers_engine.detectors.crd import crd, crd_block, use_band_space
from fers_engine.detectors.windows import halo_rows
from fers_engine.errors import Cancelled, InputError
from fers_engine.progress import Reporter


@pytest.fixture(autouse=True)
def backend(lrx_backend):
    """Every test here runs on both paths: the numba kernel and the batched numpy path."""
    return lrx_backend


def reference(cube, valid, inner, outer, lam):
    """The paper's formula solved pixel by pixel: alpha = (X^T X + lam Gamma^2)^-1 X^T y over the
    valid ring pixels (windows centred, cut at the image's edges), score = ||y - X alpha||."""

    def score(y, x):
        gamma2 = np.diag(((x - y[:, None]) ** 2).sum(axis=0))
        alpha = np.linalg.solve(x.T @ x + lam * gamma2, x.T @ y)
        return np.linalg.norm(y - x @ alpha)

    return per_pixel(cube, valid, inner, outer, 2, score, centred=True)


def cube_for(rng, bands=6, rows=22, cols=19):
    latent = rng.normal(size=(3, rows * cols))
    data = rng.normal(size=(bands, 3)) @ latent + 0.4 * rng.normal(size=(bands, rows * cols))
    return (data * 40 + 900).reshape(bands, rows, cols).astype(np.float32)


@pytest.mark.parametrize(
    "bands,inner,outer,lam",
    [
        (6, 3, 7, 0.1),  # band space (6 <= 40 ring pixels)
        (30, 3, 7, 1e-3),  # band space, near the crossover
        (50, 3, 7, 0.1),  # ring space (50 > 40)
        (12, (1, 3), (5, 9), 1.0),  # rectangular windows
    ],
)
def test_matches_the_per_pixel_solve_including_edges(bands, inner, outer, lam):
    rng = np.random.default_rng(bands)
    cube = cube_for(rng, bands=bands)
    valid = np.ones(cube.shape[1:], bool)
    pair = lambda w: (w, w) if isinstance(w, int) else w  # noqa: E731
    ours = crd(cube, inner=inner, outer=outer, lam=lam)
    assert ours.dtype == np.float32 and np.isfinite(ours).all()
    np.testing.assert_allclose(ours, reference(cube, valid, pair(inner), pair(outer), lam), rtol=2e-5)


def test_images_smaller_than_the_window_are_scored_like_any_other():
    """The windows stay centred and the outside counts as nodata, so a scene smaller than the
    outer window (a small crop, the default 15 on a 10-row strip) has rings like any edge pixel:
    the per-pixel reference, whole or in row chunks of 3."""
    rng = np.random.default_rng(11)
    cube = cube_for(rng, bands=8, rows=10, cols=9)
    valid = np.ones(cube.shape[1:], bool)
    ours = crd(cube, inner=3, outer=15)
    np.testing.assert_allclose(ours, reference(cube, valid, (3, 3), (15, 15), 0.1), rtol=2e-5)
    np.testing.assert_array_equal(crd(cube, inner=3, outer=15, row_chunk=3), ours)


@pytest.mark.parametrize("collar", [2, 9])
def test_a_nodata_collar_changes_no_score(collar):
    """An orthorectified product arrives inside a declared nodata collar: whatever its width
    (narrower or wider than half the outer window), the scene's scores are those of the scene
    cropped to its data. Fails with windows shifted inside the image at its edges."""
    rng = np.random.default_rng(7)
    cube = cube_for(rng, bands=8)
    _, rows, cols = cube.shape
    framed = np.zeros((8, rows + 2 * collar, cols + 2 * collar), np.float32)
    framed[:, collar:-collar, collar:-collar] = cube
    valid = np.zeros(framed.shape[1:], bool)
    valid[collar:-collar, collar:-collar] = True
    inside = crd(framed, valid, inner=3, outer=7)[collar:-collar, collar:-collar]
    np.testing.assert_allclose(inside, crd(cube, inner=3, outer=7), rtol=1e-6)


@pytest.mark.parametrize("bands", [8, 60])
def test_band_space_and_ring_space_give_the_same_scores(monkeypatch, bands):
    cube = cube_for(np.random.default_rng(1), bands=bands)
    chosen = crd(cube, inner=3, outer=7, lam=0.05)
    flipped = not use_band_space(bands, 3, 7)
    monkeypatch.setattr(crd_module, "use_band_space", lambda *a: flipped)
    np.testing.assert_allclose(crd(cube, inner=3, outer=7, lam=0.05), chosen, rtol=1e-5)


@pytest.mark.parametrize("splits", [[0, 22], [0, 1, 2, 21, 22], [0, 5, 11, 17, 22]])
def test_row_blocks_with_halos_equal_the_whole_image_bit_for_bit(splits):
    rng = np.random.default_rng(2)
    cube = cube_for(rng)
    valid = rng.random(cube.shape[1:]) > 0.1
    whole = crd(cube, valid, inner=3, outer=9)
    for a, b in zip(splits[:-1], splits[1:]):
        r0, r1 = halo_rows(a, b, 22, 9)
        r0, r1 = max(0, r0 - 2), min(22, r1 + 1)  # extra rows beyond the halo change nothing
        part = crd_block(cube[:, r0:r1], valid[r0:r1], r0, a, b, 22, inner=3, outer=9)
        np.testing.assert_array_equal(part, whole[a:b])


def test_chunks_and_workers_change_nothing(monkeypatch):
    cube = cube_for(np.random.default_rng(3), cols=31)
    whole = crd(cube, inner=3, outer=9, row_chunk=22)
    monkeypatch.setattr(parallel, "WORK_PER_CHUNK", 1)  # one pixel per kernel call
    monkeypatch.setattr(crd_module, "PASS_BYTES", 1)  # one core row per pass
    np.testing.assert_array_equal(crd(cube, inner=3, outer=9, row_chunk=4, workers=2), whole)


def test_invalid_pixels_leave_the_rings_and_score_nan():
    rng = np.random.default_rng(4)
    cube = cube_for(rng, bands=5, rows=16, cols=14)
    valid = rng.random(cube.shape[1:]) > 0.3
    valid[0:3, 0:3] = False
    valid[1, 1] = True  # its 3x3 ring (outer 5, inner 3 shifted into the corner) has few pixels
    cube[:, ~valid] = np.nan
    ours = crd(cube, valid, inner=3, outer=5, lam=0.1)
    ref = reference(cube, valid, (3, 3), (5, 5), 0.1)
    assert np.isnan(ours[~valid]).all()
    np.testing.assert_allclose(ours, ref, rtol=2e-5, equal_nan=True)
    nan_mask_only = crd(np.where(valid, cube, 0.0), valid, inner=3, outer=5, lam=0.1)
    np.testing.assert_array_equal(nan_mask_only, ours)  # masked values never reach the maths


def test_rings_with_fewer_than_two_valid_pixels_score_nan():
    cube = cube_for(np.random.default_rng(5), bands=4, rows=9, cols=9)
    valid = np.zeros((9, 9), bool)
    valid[4, 4] = valid[4, 2] = True  # one ring pixel each
    scores = crd(cube, valid, inner=1, outer=5, lam=0.1)
    assert np.isnan(scores).all()
    valid[2, 4] = True  # now the centre pixel has 2 ring pixels
    assert np.isfinite(crd(cube, valid, inner=1, outer=5, lam=0.1)[4, 4])


def test_flat_and_duplicated_backgrounds_score_zero_without_failing():
    flat = np.full((5, 12, 11), 7.0, np.float32)  # every ring pixel equals every pixel
    np.testing.assert_allclose(crd(flat, inner=3, outer=7), 0.0, atol=1e-4)
    cube = cube_for(np.random.default_rng(6), bands=40, rows=12, cols=11)
    cube[:, 5, 5] = cube[:, 5, 8]  # a ring pixel equal to the pixel: it explains it exactly
    scores = crd(cube, inner=3, outer=7, lam=0.1)
    assert np.isfinite(scores).all() and scores[5, 5] < 1e-3 * np.median(scores)


def test_scores_scale_with_the_data_and_lambda_does_not():
    cube = cube_for(np.random.default_rng(7))
    np.testing.assert_allclose(
        crd(cube * 1e3, inner=3, outer=7), 1e3 * crd(cube, inner=3, outer=7), rtol=1e-4
    )


def test_planted_anomaly_stands_out():
    cube = cube_for(np.random.default_rng(8), bands=8, rows=30, cols=30)
    cube[:, 14, 15] += 300.0 * np.cos(np.arange(8))
    scores = crd(cube, inner=3, outer=11)
    assert np.unravel_index(np.argmax(scores), scores.shape) == (14, 15)


def test_all_invalid_block_scores_nan():
    cube = np.full((4, 10, 10), np.nan, np.float32)
    assert np.isnan(crd(cube, inner=3, outer=5)).all()


def test_reporter_progress_and_cancel():
    cube = cube_for(np.random.default_rng(9))
    steps = []
    crd(cube, inner=3, outer=9, row_chunk=6, reporter=Reporter(on_progress=steps.append))
    assert steps == sorted(steps) and steps[-1] == pytest.approx(1.0)
    with pytest.raises(Cancelled):
        crd(cube, inner=3, outer=9, reporter=Reporter(should_stop=lambda: True))


@pytest.mark.parametrize("lam", [0, -1.0, float("nan"), float("inf"), "abc", None])
def test_bad_lambda_is_a_clear_error(lam):
    cube = cube_for(np.random.default_rng(10))
    with pytest.raises(InputError, match="lambda"):
        crd(cube, inner=3, outer=9, lam=lam)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(inner=2, outer=9), "odd"),
        (dict(inner=9, outer=9), "smaller"),
    ],
)
def test_bad_windows_are_clear_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        crd(cube_for(np.random.default_rng(11)), **kwargs)


def test_block_that_misses_its_halo_is_rejected():
    cube = cube_for(np.random.default_rng(12))
    with pytest.raises(InputError, match="do not cover"):
        crd_block(cube[:, 5:12], None, 5, 6, 10, 22, inner=3, outer=9)
