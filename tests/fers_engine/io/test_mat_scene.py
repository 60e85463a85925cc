"""MatScene: cube, ground truth, validity mask and wavelengths found by content, not by name."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from fers_engine.errors import InputError
from fers_engine.io import open_scene, read_ground_truth
from fers_engine.io.mat_scene import MatScene


def _cube(rows=6, cols=4, bands=5, dtype=np.int16):
    r, c, b = np.meshgrid(np.arange(rows), np.arange(cols), np.arange(bands), indexing="ij")
    return (100 * r + 10 * c + b).astype(dtype)  # rows x cols x bands, as MATLAB files store it


def test_keys_found_by_content_with_odd_names(tmp_path):
    cube = _cube()
    gt = np.zeros((6, 4), np.uint8)
    gt[1, 2] = gt[4, 0] = 255
    scipy.io.savemat(
        tmp_path / "x.mat", {"zz_small": np.ones((2, 2, 2)), "Q": cube, "lbl": gt, "note": np.arange(3.0)}
    )
    with open_scene(tmp_path / "x.mat") as scene:
        assert isinstance(scene, MatScene)
        assert scene.cube_key == "Q" and scene.ground_truth_key == "lbl"
        info = scene.info
        assert (info.height, info.width, info.count, info.dtype) == (6, 4, 5, "int16")
        assert info.crs is None and info.transform is None and info.wavelengths is None
        block, valid = scene.read_all()
        assert valid.all()
        np.testing.assert_array_equal(block, np.moveaxis(cube, 2, 0).astype(np.float32))
        rows, _ = scene.read(2, 5, bands=[4, 0])
        np.testing.assert_array_equal(rows, np.moveaxis(cube[2:5][:, :, [4, 0]], 2, 0))
    mask = read_ground_truth(tmp_path / "x.mat")
    assert mask.dtype == bool and mask.sum() == 2 and mask[1, 2] and mask[4, 0]


def test_bool_ground_truth_and_validity_mask_and_micrometre_wavelengths(tmp_path):
    cube = _cube().astype(np.float32)
    gt = np.zeros((6, 4), bool)
    gt[0, 0] = True
    ok = np.ones((6, 4), np.uint8)
    ok[5, :] = 0  # a quarter of the pixels unusable: majority set -> validity, not anomalies
    wl_um = np.array([[0.4], [0.5], [0.6], [0.7], [0.8]])
    scipy.io.savemat(tmp_path / "y.mat", {"a": gt, "b": ok, "c": wl_um, "d": cube})
    with open_scene(tmp_path / "y.mat") as scene:
        np.testing.assert_allclose(scene.info.wavelengths, [400, 500, 600, 700, 800])
        assert scene.ground_truth.sum() == 1
        _, valid = scene.read_all()
        assert not valid[5].any() and valid[:5].all()
        assert any("micrometres" in n for n in scene.info.notes)


def test_transposed_ground_truth_is_made_consistent(tmp_path):
    gt_t = np.zeros((4, 6), np.uint8)  # cols x rows: stored transposed
    gt_t[3, 1] = 1
    scipy.io.savemat(tmp_path / "t.mat", {"data": _cube(), "map": gt_t})
    with open_scene(tmp_path / "t.mat") as scene:
        gt = scene.ground_truth
        assert gt.shape == (6, 4) and gt[1, 3] and gt.sum() == 1
        assert any("transposed" in n for n in scene.info.notes)


def test_unmixing_layout_rebuilt_column_major(tmp_path):
    rows, cols, bands = 3, 5, 4
    cube = _cube(rows, cols, bands, np.uint16)
    # MATLAB: Y = reshape(cube, rows*cols, bands)'; pixel p = r + c*rows (column-major)
    Y = cube.reshape(rows * cols, bands, order="F").T
    idx = np.arange(4, 4 + bands, dtype=np.uint8)[:, None]  # a kept-band list, not a mask
    scipy.io.savemat(tmp_path / "j.mat", {"Y": Y, "nCol": cols, "nRow": rows, "GT": idx, "maxValue": 5000})
    with open_scene(tmp_path / "j.mat") as scene:
        assert (scene.info.height, scene.info.width, scene.info.count) == (rows, cols, bands)
        block, _ = scene.read_all()
        assert scene.ground_truth is None and scene.info.wavelengths is None
    np.testing.assert_array_equal(block, np.moveaxis(cube, 2, 0))


def test_no_cube_is_an_input_error(tmp_path):
    scipy.io.savemat(tmp_path / "n.mat", {"a": np.zeros((3, 3)), "b": np.arange(4)})
    with pytest.raises(InputError, match="no hyperspectral cube found in n.mat"):
        open_scene(tmp_path / "n.mat")


def test_garbage_mat_is_an_input_error(tmp_path):
    (tmp_path / "g.mat").write_bytes(b"\x01\x02 not a matlab file at all" * 20)
    with pytest.raises(InputError, match="g.mat"):
        open_scene(tmp_path / "g.mat")


def _fake_v73_header() -> bytes:
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    return text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"


def test_v73_without_h5py_is_a_clear_error(tmp_path):
    try:
        import h5py  # noqa: F401

        pytest.skip("h5py is installed: v7.3 files are read (see the test below)")
    except ImportError:
        pass
    (tmp_path / "v73.mat").write_bytes(_fake_v73_header().ljust(1024, b"\x00"))
    with pytest.raises(InputError, match="v7.3"):
        open_scene(tmp_path / "v73.mat")


def test_v73_read_with_h5py(tmp_path):
    h5py = pytest.importorskip("h5py")
    cube = _cube()
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["data"] = cube.T  # MATLAB writes column-major: axes appear reversed in HDF5
    with open(path, "r+b") as f:
        f.write(_fake_v73_header())
    with open_scene(path) as scene:
        block, _ = scene.read_all()
    np.testing.assert_array_equal(block, np.moveaxis(cube, 2, 0))


# -- the real files with special layouts --------------------------------------------------------
def test_jasper_ridge_y_layout(shared_data):
    path = shared_data / "bg-jasper-ridge-100x100" / "jasperRidge2_R198.mat"
    Y = scipy.io.loadmat(path)["Y"]
    with open_scene(path) as scene:
        assert (scene.info.height, scene.info.width, scene.info.count) == (100, 100, 198)
        assert scene.ground_truth is None, "its 'GT' is a list of kept bands, not a mask"
        assert scene.info.wavelengths is None
        block, _ = scene.read_all()
    r, c = 17, 63
    np.testing.assert_array_equal(block[:, r, c], Y[:, r + c * 100])


def test_santa_barbara_wavelengths_in_nm(shared_data):
    path = shared_data / "bg-aviris-santa-barbara-90x90" / "a_hsi_img_for_VI_demo.mat"
    with open_scene(path) as scene:
        wl = scene.info.wavelengths
        assert wl.shape == (224,)
        assert wl[0] == pytest.approx(365.91) and wl[-1] == pytest.approx(2496.22)
        assert scene.ground_truth is None


def test_muufl_validity_mask_and_wavelengths(shared_data):
    folder = shared_data / "muufl-gulfport-crops"
    with open_scene(folder / "an_hsi_image_sub_for_demo.mat") as scene:
        assert (scene.info.height, scene.info.width, scene.info.count) == (51, 88, 72)
        assert scene.ground_truth is None, "mask_sub is a validity mask, not anomalies"
        _, valid = scene.read_all()
        assert valid.sum() == 3884
        assert scene.info.wavelengths[0] == pytest.approx(367.7)
    with open_scene(folder / "an_hsi_img_for_tgt_det_demo.mat") as scene:
        assert scene.ground_truth_key == "gtImg_sub"
        assert scene.info.wavelengths.shape == (72,), "tgt_spectra is not taken for wavelengths"
        assert scene.info.wavelengths[-1] == pytest.approx(1043.4)


def test_hydice_transposed_file_is_self_consistent(shared_data):
    with open_scene(shared_data / "hydice-urban" / "HYDICE_data__LREN.mat") as lren:
        assert (lren.info.height, lren.info.width) == (100, 80)
        assert lren.ground_truth.shape == (100, 80) and lren.ground_truth.sum() == 19
        a, _ = lren.read_all()
    with open_scene(shared_data / "hydice-urban" / "HYDICE__DSC.mat") as dsc:
        b, _ = dsc.read_all()
    # SOURCE.md: transpose(LREN) equals DSC shifted by one column
    at = a.transpose(0, 2, 1)
    assert np.array_equal(at[:, :, 1:], b[:, :, :-1]) or np.array_equal(at[:, :, :-1], b[:, :, 1:])


def test_two_cubes_of_similar_size_are_refused_by_name(tmp_path):
    cube = _cube()
    scipy.io.savemat(
        tmp_path / "two.mat", {"data": cube, "data_norm": cube[:, :, :4] / 2.0, "thumb": np.ones((2, 2, 3))}
    )
    with pytest.raises(
        InputError,
        match=r"two.mat holds 2 hyperspectral cubes \('data' 6x4x5, 'data_norm' "
        r"6x4x4\) and FERS cannot tell which one to analyse",
    ):
        open_scene(tmp_path / "two.mat")
