"""DESIS L2A: SPECTRAL_IMAGE.tif with its ENVI-style .hdr and METADATA.xml."""

from __future__ import annotations

import numpy as np
import pytest
from products.checks import run_rx, top_pixel
from products.common import band_table, reflectance
from products.desis import GAIN, NAME, NODATA, TRANSFORM, write_desis

from fers_engine.errors import InputError
from fers_engine.io import open_scene


@pytest.fixture
def desis(tmp_path, shared_data):
    wl, fwhm = band_table(shared_data, "desis")
    scene = reflectance(56, 52, wl, anomaly=(8, 8))
    dn = np.round(np.moveaxis(scene.cube, 2, 0) / GAIN).astype(np.int16)
    dn[:, -1, :] = NODATA
    return dict(meta=write_desis(tmp_path / "d", dn, wl, fwhm), wl=wl, fwhm=fwhm, dn=dn, scene=scene)


@pytest.mark.parametrize("entry", ["metadata", "image"])
def test_reads_back_and_finds_the_anomaly(desis, tmp_path, entry):
    path = desis["meta"] if entry == "metadata" else desis["meta"].parent / f"{NAME}-SPECTRAL_IMAGE.tif"
    with open_scene(path) as s:
        info = s.info
        block, valid = s.read(54, 56, [3])
    assert info.product == "DESIS L2A" and info.count == 235
    np.testing.assert_allclose(info.wavelengths, desis["wl"], atol=1e-4)
    np.testing.assert_allclose(info.fwhm, desis["fwhm"], atol=1e-4)
    np.testing.assert_allclose(info.scale, GAIN) and info.offset is None
    assert info.nodata == NODATA and info.transform == TRANSFORM and "32633" in info.crs
    np.testing.assert_allclose(block[0, 0], desis["dn"][3, 54] * np.float32(GAIN), rtol=1e-6)
    assert valid[0].all() and not valid[1].any()
    scores, gt, _ = run_rx(path, tmp_path / "score.tif")
    assert top_pixel(scores) in [(8, 8), (8, 9), (9, 8), (9, 9)] and gt == TRANSFORM


def test_missing_header_is_one_line_and_no_output(desis, tmp_path):
    (desis["meta"].parent / f"{NAME}-SPECTRAL_IMAGE.hdr").unlink()
    with pytest.raises(InputError, match="SPECTRAL_IMAGE.hdr is missing"):
        run_rx(desis["meta"], tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()
