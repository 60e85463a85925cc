"""The CUDA path gives the CPU path's scores (runs only where torch sees a GPU).

The CI machine and the development machine have no GPU, so here these tests skip; on a machine
with one they check that every computation moved to the GPU (enhancers, statistics, RX scores)
agrees with the CPU run it replaces.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import small_scene
from osgeo import gdal

from fers_engine.pipeline import DetectOptions, detect

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")


def _scores(path):
    ds = gdal.Open(str(path))  # kept referenced while its band is read
    return ds.GetRasterBand(1).ReadAsArray()


@pytest.mark.parametrize("enhancer", ["none", "spectral", "full"])
def test_cuda_scores_equal_cpu_scores(tmp_path, enhancer):
    cube_path, _, _ = small_scene(tmp_path, rows=64, cols=56)
    cpu = detect(
        cube_path,
        tmp_path / "cpu.tif",
        DetectOptions(enhancer=enhancer, detector="rx", device="cpu", block_rows=9),
    )
    gpu = detect(
        cube_path,
        tmp_path / "gpu.tif",
        DetectOptions(enhancer=enhancer, detector="rx", device="cuda", block_rows=9),
    )
    assert cpu.device == "cpu" and gpu.device.startswith("cuda")
    a, b = _scores(tmp_path / "cpu.tif"), _scores(tmp_path / "gpu.tif")
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, rtol=2e-3, atol=1e-3)


def test_the_default_method_on_cuda_equals_the_cpu(tmp_path):
    """The default (spectral enhancer, CRD+RX): the enhancers and global RX's statistics and
    scores on the GPU, CRD on the CPU; the log says so."""
    cube_path, _, _ = small_scene(tmp_path, rows=64, cols=56)
    cpu = detect(cube_path, tmp_path / "cpu.tif", DetectOptions(device="cpu", block_rows=9))
    gpu = detect(cube_path, tmp_path / "gpu.tif", DetectOptions(device="cuda", block_rows=9))
    assert cpu.device == "cpu" and gpu.device.startswith("cuda")
    assert "CRD runs on the CPU; the GPU serves the enhancers and global RX" in gpu.messages
    a, b = _scores(tmp_path / "cpu.tif"), _scores(tmp_path / "gpu.tif")
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(b, a, rtol=2e-3, atol=1e-3)
