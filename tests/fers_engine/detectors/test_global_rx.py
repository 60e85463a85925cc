"""Global RX against SPy's ``spectral.rx`` (the oracle) and its streaming contracts."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.detectors import RxScorer, global_rx, rx_scores
from fers_engine.detectors.stats import BackgroundStats, regularised_inverse
from fers_engine.errors import Cancelled, InputError
from fers_engine.progress import Reporter

spectral = pytest.importorskip("spectral")


def spy_rx(cube: np.ndarray, valid=None) -> np.ndarray:
    """SPy on the (R, C, B) transpose, in float64 so the oracle itself is exact."""
    x = np.ascontiguousarray(cube.transpose(1, 2, 0)).astype(np.float64)
    if valid is None:
        return spectral.rx(x)
    background = spectral.calc_stats(x, mask=valid.astype(int))
    return spectral.rx(x, background=background)


def random_cube(rng, bands=12, rows=30, cols=25):
    return rng.random((bands, rows, cols), dtype=np.float32)


def correlated_cube(rng, bands=30, rows=40, cols=36, factors=4, noise=3.0):
    latent = rng.normal(size=(factors, rows * cols))
    mix = rng.normal(size=(bands, factors))
    data = mix @ latent * 20.0 + rng.normal(size=(bands, rows * cols)) * noise
    return data.reshape(bands, rows, cols).astype(np.float32)


def scene_like_cube(rng, bands=40, rows=48, cols=40):
    """Raw-DN-like: smooth endmember spectra, Dirichlet abundances, dark offset ~1e3-4e3."""
    wl = np.linspace(0, 1, bands)
    ends = np.stack([2000 + 1500 * np.sin(3 * wl + p) + 800 * wl for p in (0, 1, 2, 3, 4)])
    abund = rng.dirichlet(np.ones(5) * 0.7, size=rows * cols)
    data = abund @ ends + rng.normal(size=(rows * cols, bands)) * 15.0 + 1000.0
    return np.ascontiguousarray(data.T.reshape(bands, rows, cols)).astype(np.float32)


@pytest.mark.parametrize("make", [random_cube, correlated_cube, scene_like_cube])
def test_matches_spectral_rx(make):
    cube = make(np.random.default_rng(0))
    ours = global_rx(cube)
    assert ours.dtype == np.float32 and ours.shape == cube.shape[1:]
    np.testing.assert_allclose(ours, spy_rx(cube), rtol=1e-5)


def test_float64_precision_matches_spy_on_ill_conditioned_data():
    cube = correlated_cube(np.random.default_rng(1), noise=0.05)  # condition ~1e8
    np.testing.assert_allclose(global_rx(cube, precision="float64"), spy_rx(cube), rtol=1e-7)


@pytest.mark.parametrize("block_rows", [1, 7, 16, 1000])
def test_blockwise_equals_whole_image(block_rows):
    cube = scene_like_cube(np.random.default_rng(2))
    whole = global_rx(cube, block_rows=cube.shape[1])
    # merges round differently from one pass; both are within float32 scoring precision
    np.testing.assert_allclose(global_rx(cube, block_rows=block_rows), whole, rtol=1e-5)


def test_invalid_pixels_are_excluded_and_nan():
    rng = np.random.default_rng(3)
    cube = correlated_cube(rng)
    valid = rng.random(cube.shape[1:]) > 0.2
    cube[:, ~valid] = -9999.0  # nodata values must not reach the statistics
    cube[4, 0, 0] = np.nan  # nor a NaN the mask missed
    valid_eff = valid.copy()
    valid_eff[0, 0] = False
    ours = global_rx(cube, valid, block_rows=9)
    assert np.isnan(ours[~valid_eff]).all() and np.isfinite(ours[valid_eff]).all()
    ref = spy_rx(np.where(valid_eff, cube, 0.0), valid_eff)
    np.testing.assert_allclose(ours[valid_eff], ref[valid_eff], rtol=1e-5)


def test_more_bands_than_pixels_is_finite():
    cube = np.random.default_rng(4).random((20, 4, 3), dtype=np.float32)
    scores = global_rx(cube)
    assert np.isfinite(scores).all() and (scores >= 0).all()


def test_duplicated_band_changes_nothing():
    cube = correlated_cube(np.random.default_rng(5), bands=10)
    doubled = np.concatenate([cube, cube[3:4]], axis=0)
    messages = []
    scores = global_rx(doubled, reporter=Reporter(on_info=messages.append))
    assert np.isfinite(scores).all()
    assert any("singular" in m for m in messages)
    # the pseudo-inverse ignores the zero-variance direction: same distances as without it
    np.testing.assert_allclose(scores, global_rx(cube), rtol=1e-4)


def test_constant_band_is_finite():
    cube = correlated_cube(np.random.default_rng(6), bands=8)
    cube[2] = 123.0
    assert np.isfinite(global_rx(cube)).all()


def test_planted_anomaly_gets_the_top_score():
    rng = np.random.default_rng(7)
    cube = scene_like_cube(rng)
    cube[:, 17, 23] = cube[:, 17, 23] * 0.7 + 300.0 * np.cos(np.arange(cube.shape[0]))
    scores = global_rx(cube)
    assert np.unravel_index(np.argmax(scores), scores.shape) == (17, 23)


def test_rx_scores_and_scorer_agree_with_global():
    cube = correlated_cube(np.random.default_rng(8))
    stats = BackgroundStats(cube.shape[0])
    stats.update(cube)
    inv, _ = regularised_inverse(stats.covariance())
    whole = global_rx(cube)
    part = rx_scores(cube[:, 5:9], None, stats.mean, inv)
    np.testing.assert_allclose(part, whole[5:9], rtol=1e-5)
    scorer = RxScorer.from_inv_cov(stats.mean, inv)
    np.testing.assert_allclose(scorer(cube), whole, rtol=1e-5)
    with pytest.raises(InputError):
        rx_scores(cube, None, stats.mean, inv[:-1, :-1])


def test_reporter_steps_once_per_block_and_cancels():
    cube = random_cube(np.random.default_rng(9), rows=30)
    steps = []
    global_rx(cube, block_rows=10, reporter=Reporter(on_progress=steps.append))
    assert len(steps) == 6 and steps[-1] == pytest.approx(1.0)
    assert steps == sorted(steps)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        global_rx(cube, block_rows=10, reporter=Reporter(should_stop=stop))


def test_default_blocks_come_from_the_io_helpers(monkeypatch):
    """One block-size rule for the engine: global RX uses ``fers_engine.io.blocks``."""
    import fers_engine.detectors as detectors
    import fers_engine.detectors.rx as rx
    from fers_engine.io import blocks

    assert not hasattr(detectors, "default_block_rows")
    assert rx.default_block_rows is blocks.default_block_rows
    assert rx.iter_row_blocks is blocks.iter_row_blocks
    cube = random_cube(np.random.default_rng(11), rows=30)
    asked = []

    def three_rows(width, bands, **kwargs):
        asked.append((width, bands))
        return 3

    monkeypatch.setattr(rx, "default_block_rows", three_rows)
    steps = []
    out = global_rx(cube, reporter=Reporter(on_progress=steps.append))
    assert asked == [(cube.shape[2], cube.shape[0])]
    assert len(steps) == 2 * 10
    np.testing.assert_allclose(out, global_rx(cube, block_rows=30), rtol=1e-5)


def test_bad_input_is_a_clear_error():
    cube = random_cube(np.random.default_rng(10))
    with pytest.raises(InputError):
        global_rx(cube[0])
    with pytest.raises(InputError):
        global_rx(cube, valid=np.ones((3, 3), bool))
    with pytest.raises(InputError, match="valid pixel"):
        global_rx(cube, valid=np.zeros(cube.shape[1:], bool))
    with pytest.raises(InputError, match="precision"):
        global_rx(cube, precision="float16")


def test_torch_cpu_backend_matches_numpy_and_leaves_the_cube_alone():
    pytest.importorskip("torch")
    cube = scene_like_cube(np.random.default_rng(11))
    original = cube.copy()
    valid = np.ones(cube.shape[1:], bool)
    valid[3, 4] = False
    ref = global_rx(cube, valid)  # numpy first: the torch run must not change what it sees
    ours = global_rx(cube, valid, device="cpu")
    # RX is translation-invariant, so equal scores cannot show a cube centred in place: compare it
    np.testing.assert_array_equal(cube, original)
    assert np.isnan(ours[3, 4])
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scorer_and_statistics_never_modify_the_callers_block(dtype):
    pytest.importorskip("torch")
    block = scene_like_cube(np.random.default_rng(12)).astype(dtype)
    original = block.copy()
    valid = np.ones(block.shape[1:], bool)
    valid[0, 0] = False
    for device in (None, "cpu"):
        stats = BackgroundStats(block.shape[0], device=device)
        stats.update(block)
        stats.update(block, valid)
        scorer, _ = RxScorer.from_cov(stats.mean, stats.covariance(), device=device)
        scorer(block, valid)
        np.testing.assert_array_equal(block, original, err_msg=f"device {device}")


def test_stream_rx_scores_every_variant_of_a_stream_like_global_rx():
    from fers_engine.detectors.rx import stream_rx

    rng = np.random.default_rng(13)
    a, b = correlated_cube(rng), correlated_cube(rng)
    valid = rng.random(a.shape[1:]) > 0.1
    got = {"a": np.full(a.shape[1:], -1.0, np.float32), "b": np.full(a.shape[1:], -1.0, np.float32)}
    logs, warnings = [], []

    def put(variant, r0, scores):
        got[variant][r0 : r0 + scores.shape[0]] = scores

    infos = stream_rx(
        lambda r0, r1: ({"a": a[:, r0:r1], "b": b[:, r0:r1]}, valid[r0:r1]),
        a.shape[1],
        a.shape[0],
        ("a", "b"),
        7,
        put,
        Reporter(on_info=logs.append, on_warning=warnings.append),
    )
    np.testing.assert_array_equal(got["a"], global_rx(a, valid, block_rows=7))
    np.testing.assert_array_equal(got["b"], global_rx(b, valid, block_rows=7))
    np.testing.assert_allclose(got["b"], global_rx(b, valid, block_rows=3), rtol=1e-5)  # any blocking
    assert set(infos) == {"a", "b"} and not warnings
    assert sum("covariance condition number" in m for m in logs) == 2


def test_regularised_and_constant_covariances_are_warnings():
    rng = np.random.default_rng(14)
    cube = correlated_cube(rng, bands=6)
    cube[5] = cube[4]  # a duplicated band: singular covariance
    warnings = []
    global_rx(cube, reporter=Reporter(on_warning=warnings.append))
    assert len(warnings) == 1 and "singular or ill-conditioned" in warnings[0]
    warnings.clear()
    flat = global_rx(np.full((4, 6, 5), 3.0, np.float32), reporter=Reporter(on_warning=warnings.append))
    assert warnings == [
        "global RX: the scene is constant: every valid pixel has the same spectrum, so no "
        "pixel can stand out and the scores carry no information"
    ]
    assert (flat == 0).all()
