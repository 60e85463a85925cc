"""The generated demo scene: shape, planted targets, and a clear error when it cannot fit them."""

from __future__ import annotations

import numpy as np
import pytest

from fers_engine.errors import InputError
from fers_engine.synthetic import make_scene


def test_scene_holds_its_targets():
    scene = make_scene(rows=40, cols=44, bands=12, seed=3, n_targets=4)
    assert scene.cube.shape == (12, 40, 44)
    assert np.isfinite(scene.cube).all()
    assert 4 <= scene.truth.sum() <= 4 * 9  # squares of 1 to 3 px


@pytest.mark.parametrize("rows,cols,n_targets", [(20, 18, 16), (12, 40, 1)])
def test_scene_too_small_for_its_targets_is_a_clear_error(rows, cols, n_targets):
    with pytest.raises(InputError, match="scene"):
        make_scene(rows=rows, cols=cols, bands=6, n_targets=n_targets)
