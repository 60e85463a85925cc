"""Local (windowed) RX against SPy's windowed ``spectral.rx`` and a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from ring_reference import per_pixel

from fers_engine.detectors import choose_covariance, halo_rows, local_rx, local_rx_block
from fers_engine.detectors.windows import window_starts
from fers_engine.errors import Cancelled, InputError
from fers_engine.progress import Reporter

spectral = pytest.importorskip("spectral")


@pytest.fixture(autouse=True)
def backend(lrx_backend):
    """Every test here runs on both full-mode paths (``lrx_backend`` in conftest.py)."""
    return lrx_backend


def spy_local(cube, inner, outer, cov=None):
    x = np.ascontiguousarray(cube.transpose(1, 2, 0)).astype(np.float64)
    return spectral.rx(x, window=(inner, outer), cov=cov)


def brute_local(cube, valid, inner, outer, rcond=1e-10, cov=None):
    """Per-pixel loop: SPy's shifted windows, valid ring pixels only, eigen pseudo-inverse."""

    def score(y, x):
        vals, vecs = np.linalg.eigh(np.cov(x) if cov is None else cov)
        keep = vals > vals[-1] * rcond
        proj = vecs[:, keep].T @ (y - x.mean(axis=1))
        return np.sum(proj**2 / vals[keep])

    return per_pixel(cube, valid, inner, outer, 1 if cov is not None else 2, score)


def cube_for(rng, bands=6, rows=24, cols=20):
    latent = rng.normal(size=(3, rows * cols))
    data = rng.normal(size=(bands, 3)) @ latent + 0.5 * rng.normal(size=(bands, rows * cols))
    return (data * 40 + 2000).reshape(bands, rows, cols).astype(np.float32)


@pytest.mark.parametrize("inner,outer,bands", [(3, 9, 6), (1, 5, 6), ((3, 5), (9, 7), 6), (3, 11, 13)])
def test_matches_spectral_windowed_rx_including_edges(inner, outer, bands):
    cube = cube_for(np.random.default_rng(0), bands=bands)
    ours = local_rx(cube, inner=inner, outer=outer)
    assert ours.dtype == np.float32 and np.isfinite(ours).all()
    np.testing.assert_allclose(ours, spy_local(cube, inner, outer), rtol=1e-4)


def test_fixed_covariance_mode_matches_spectral():
    cube = cube_for(np.random.default_rng(1))
    cov = np.cov(cube.reshape(cube.shape[0], -1).astype(np.float64))
    ours = local_rx(cube, inner=3, outer=9, cov=cov)
    np.testing.assert_allclose(ours, spy_local(cube, 3, 9, cov=cov), rtol=1e-4)


def test_edge_rule_shifts_windows_inside_the_image():
    assert window_starts(np.arange(6), 5, 6).tolist() == [0, 0, 0, 1, 1, 1]
    assert halo_rows(0, 4, 30, 9) == (0, 9)  # shifted down at the top edge
    assert halo_rows(10, 14, 30, 9) == (6, 18)  # outer // 2 rows either side
    assert halo_rows(26, 30, 30, 9) == (21, 30)


@pytest.mark.parametrize("splits", [[0, 24], [0, 1, 2, 23, 24], [0, 5, 11, 17, 24]])
def test_block_with_halo_equals_whole_image(splits):
    rng = np.random.default_rng(2)
    cube = cube_for(rng)
    valid = rng.random(cube.shape[1:]) > 0.1
    whole = local_rx(cube, valid, inner=3, outer=9)
    for a, b in zip(splits[:-1], splits[1:]):
        r0, r1 = halo_rows(a, b, 24, 9)
        r0, r1 = max(0, r0 - 2), min(24, r1 + 1)  # extra rows beyond the halo do no harm
        part = local_rx_block(cube[:, r0:r1], valid[r0:r1], r0, a, b, 24, inner=3, outer=9)
        np.testing.assert_allclose(part, whole[a:b], rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("cov_mode", [False, True])
def test_invalid_pixels_leave_the_rings_and_score_nan(cov_mode):
    rng = np.random.default_rng(3)
    cube = cube_for(rng, bands=5, rows=16, cols=14)
    valid = rng.random(cube.shape[1:]) > 0.25
    cov = np.cov(cube[:, valid].astype(np.float64)) if cov_mode else None
    cube[:, ~valid] = np.nan
    ours = local_rx(cube, valid, inner=3, outer=7, cov=cov)
    assert np.isnan(ours[~valid]).all()
    ref = brute_local(cube, valid, (3, 3), (7, 7), cov=cov)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("gather", [256, 7])
def test_rings_with_fewer_pixels_than_bands_are_finite(monkeypatch, gather):
    import fers_engine.detectors.lrx_numpy as lrx_numpy

    monkeypatch.setattr(lrx_numpy, "GATHER_PIXELS", gather)  # singular rings gathered in batches
    cube = cube_for(np.random.default_rng(4), bands=12, rows=10, cols=9)
    ours = local_rx(cube, inner=1, outer=3)  # 8 ring pixels, 12 bands: singular covariance
    assert np.isfinite(ours).all()
    ref = brute_local(cube, np.ones(cube.shape[1:], bool), (1, 1), (3, 3))
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_constant_block_scores_zero():
    cube = np.full((5, 12, 11), 7.0, dtype=np.float32)  # no variance: nothing to whiten
    np.testing.assert_array_equal(local_rx(cube, inner=3, outer=7), np.zeros((12, 11), np.float32))


def test_planted_local_anomaly_stands_out():
    cube = cube_for(np.random.default_rng(5), bands=8, rows=30, cols=30)
    cube[:, 14, 15] += 300.0 * np.cos(np.arange(8))
    scores = local_rx(cube, inner=3, outer=11)
    assert np.unravel_index(np.argmax(scores), scores.shape) == (14, 15)


def test_reporter_steps_per_chunk_and_cancel():
    cube = cube_for(np.random.default_rng(6))
    steps = []
    local_rx(cube, inner=3, outer=9, row_chunk=6, reporter=Reporter(on_progress=steps.append))
    assert len(steps) >= 4 and steps[-1] == pytest.approx(1.0)
    assert steps == sorted(steps)  # chunks report inside each row chunk, never backwards
    with pytest.raises(Cancelled):
        local_rx(cube, inner=3, outer=9, reporter=Reporter(should_stop=lambda: True))


def test_threads_give_identical_results():
    cube = cube_for(np.random.default_rng(7))
    one = local_rx(cube, inner=3, outer=9, row_chunk=5)
    two = local_rx(cube, inner=3, outer=9, row_chunk=5, workers=2)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(inner=2, outer=9), "odd"),
        (dict(inner=9, outer=9), "smaller"),
        (dict(inner=3, outer=31), "larger than the image"),
        (dict(inner=(3, 3, 3), outer=9), "int or"),
    ],
)
def test_bad_windows_are_clear_errors(kwargs, match):
    cube = cube_for(np.random.default_rng(8))
    with pytest.raises(InputError, match=match):
        local_rx(cube, **kwargs)


def test_block_that_misses_its_halo_is_rejected():
    cube = cube_for(np.random.default_rng(9))
    with pytest.raises(InputError, match="do not cover"):
        local_rx_block(cube[:, 5:12], None, 5, 6, 10, 24, inner=3, outer=9)


@pytest.mark.parametrize("cov_mode", [False, True])
def test_small_memory_budgets_change_nothing(monkeypatch, cov_mode):
    import fers_engine.detectors.lrx as lrx
    import fers_engine.detectors.lrx_numpy as lrx_numpy
    import fers_engine.detectors.parallel as parallel

    cube = cube_for(np.random.default_rng(10), cols=37)
    cov = np.cov(cube.reshape(cube.shape[0], -1).astype(np.float64)) if cov_mode else None
    whole = local_rx(cube, inner=3, outer=9, cov=cov, row_chunk=24)
    monkeypatch.setattr(lrx, "PASS_BYTES", 1)  # one core row per pass
    monkeypatch.setattr(lrx_numpy, "STRIP_BYTES", 1)  # the narrowest strips
    monkeypatch.setattr(parallel, "WORK_PER_CHUNK", 1)  # one pixel per kernel call
    monkeypatch.setattr(lrx_numpy, "GROUP_BYTES", 1)  # one row per integral image
    small = local_rx(cube, inner=3, outer=9, cov=cov, row_chunk=24)
    np.testing.assert_allclose(small, whole, rtol=1e-9)


@pytest.mark.parametrize(
    "mode,bands,expected,word",
    [
        ("auto", 100, "ring", "at least 2 per band"),  # 216 ring pixels >= 2 x 100
        ("auto", 108, "ring", "at least 2 per band"),  # exactly 2 per band
        ("auto", 109, "scene", "fewer than 2 per band"),
        ("ring", 224, "ring", "singular"),  # forced, and every ring is singular
        ("ring", 150, "ring", "216 ring pixels for 150 bands"),
        ("scene", 10, "scene", "216 ring pixels for 10 bands"),
    ],
)
def test_covariance_choice_follows_the_two_pixels_per_band_rule(mode, bands, expected, word):
    choice = choose_covariance(mode, 3, 15, bands)
    assert choice.mode == expected and word in choice.reason
    assert choice.singular == (word == "singular")


def test_unknown_covariance_mode_is_a_clear_error():
    with pytest.raises(InputError, match="choose one of auto, ring, scene"):
        choose_covariance("local", 3, 15, 10)
