"""What the enhancers see: nodata filled from the nearest valid pixel, the border continued the
same way, dead bands repaired; so a nodata collar, a 90-degree rotation or flip and dead bands
leave the enhanced scores unchanged (exactly, up to float rounding)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine_helpers import write_tiny_model  # noqa: E402

from fers_engine.nets.context import block_features, fill_invalid, scene_features  # noqa: E402
from fers_engine.nets.inputs import dead_bands, fit_cube, repair_matrix  # noqa: E402


def _cube(seed=0, bands=20, rows=30, cols=26):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(bands, 1, 1)) * 50 + 500
    field = np.cumsum(rng.normal(size=(bands, rows, cols)), axis=1) * 3
    return (base + field + rng.normal(size=(bands, rows, cols)) * 5).astype(np.float32)


def _scores(enh, cube, valid):
    """The product's enhanced RX scores of a cube in memory (as bench/accuracy.py scores)."""
    from fers_engine.detectors.rx import global_rx

    x = fit_cube(enh.grid, cube, valid).apply(cube)
    f = scene_features(lambda b: enh.features(b, parts=enh.parts), x, valid, enh.halo)
    return global_rx(x + f["spectral"] + f["spatial"], valid)


@pytest.fixture(scope="module")
def enhancer(tmp_path_factory):
    from fers_engine.nets.enhancer import load_enhancer

    return load_enhancer(
        str(write_tiny_model(tmp_path_factory.mktemp("m") / "tiny.safetensors")), device="cpu"
    )


def test_fill_of_a_rectangular_collar_is_the_replicated_edge():
    x = _cube()[:, :20, :18]
    valid = np.zeros((28, 26), bool)
    valid[4:24, 3:21] = True
    framed = np.zeros((x.shape[0], 28, 26), np.float32)
    framed[:, 4:24, 3:21] = x
    filled = fill_invalid(framed, valid, depth=10)
    np.testing.assert_array_equal(filled, np.pad(x, ((0, 0), (4, 4), (3, 5)), mode="edge"))
    assert np.array_equal(framed[:, valid], filled[:, valid])


def test_a_nodata_collar_does_not_change_the_enhanced_scores(enhancer):
    cube = _cube()
    valid = np.ones(cube.shape[1:], bool)
    w = 9
    framed = np.zeros((cube.shape[0], cube.shape[1] + 2 * w, cube.shape[2] + 2 * w), np.float32)
    framed[:, w:-w, w:-w] = cube
    fvalid = np.zeros(framed.shape[1:], bool)
    fvalid[w:-w, w:-w] = True
    a = _scores(enhancer, cube, valid)
    b = _scores(enhancer, framed, fvalid)
    assert np.isnan(b[~fvalid]).all()
    np.testing.assert_allclose(b[w:-w, w:-w], a, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k,flip", [(1, False), (2, False), (3, False), (0, True), (1, True)])
def test_rotations_and_flips_move_the_scores_with_the_pixels(enhancer, k, flip):
    cube = _cube(seed=1)
    valid = np.ones(cube.shape[1:], bool)

    def t(a, axes):
        a = np.rot90(a, k, axes)
        return np.flip(a, axes[1]) if flip else a

    a = _scores(enhancer, cube, valid)
    b = _scores(enhancer, np.ascontiguousarray(t(cube, (1, 2))), valid if k % 2 == 0 else valid.T)
    np.testing.assert_allclose(b, t(a, (0, 1)), rtol=1e-4, atol=1e-4)


def test_dead_bands_are_found_and_replaced_by_their_neighbours(enhancer):
    cube = _cube(seed=2)
    valid = np.ones(cube.shape[1:], bool)
    dead = [3, 4, 11]
    repaired = cube.copy()
    repaired[3] = cube[2] * 2 / 3 + cube[5] / 3
    repaired[4] = cube[2] / 3 + cube[5] * 2 / 3
    repaired[11] = (cube[10] + cube[12]) / 2
    broken = cube.copy()
    broken[dead] = 0.0
    flags = dead_bands(broken.reshape(broken.shape[0], -1))
    assert np.flatnonzero(flags).tolist() == dead
    m = repair_matrix(flags)
    np.testing.assert_allclose(np.tensordot(m, broken, axes=(1, 0)), repaired, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(
        _scores(enhancer, broken, valid), _scores(enhancer, repaired, valid), rtol=1e-4, atol=1e-4
    )


def test_block_features_with_nodata_equal_whole_scene_features(enhancer):
    """Row blocks read with the context ``context_rows`` asks for give the whole-scene features,
    ragged nodata included."""
    from fers_engine.nets.context import context_rows

    rng = np.random.default_rng(3)
    x = (rng.normal(size=(12, 70, 33)) * 0.03).astype(np.float32)
    valid = rng.random((70, 33)) > 0.05
    valid[:, :4] = False
    valid[50:58] = False
    run = lambda b: enhancer.features(b, parts=enhancer.parts)  # noqa: E731
    whole = scene_features(run, x, valid, enhancer.halo)
    ctx = context_rows(enhancer.halo, True)
    for r0 in range(0, 70, 16):
        r1 = min(70, r0 + 16)
        a0, a1 = max(0, r0 - ctx), min(70, r1 + ctx)
        part = block_features(run, x[:, a0:a1], valid[a0:a1], a0, a1, r0, r1, enhancer.halo, 70, strip=10)
        for p in whole:
            np.testing.assert_allclose(
                part[p][:, valid[r0:r1]], whole[p][:, r0:r1][:, valid[r0:r1]], atol=2e-6
            )
