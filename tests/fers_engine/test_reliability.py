"""Hostile runs of issue 15 ("nothing lost, nothing hung"), one test per numbered case.

Each case runs the `fers` command (in-process through ``main``, or as a child process where a
signal, a kill or a file cut short mid-run is involved) and checks the contract: one line on
stderr and a non-zero status for bad input, no traceback, no partial file, and no input or
older output destroyed. Inputs are written with ``osgeo.gdal`` directly, so these tests do not
depend on the writer they guard. Case 4 (hostile model cards) is tested beside the model-file
loader; case 10 (memory) is measured by ``bench/speed.py``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from engine_helpers import PLAIN_RX

from fers_engine.cli import main as fers
from fers_engine.io.checks import CONSTANT_SCENE

REPO = Path(__file__).resolve().parents[2]
TRANSFORM = (500000.0, 2.0, 0.0, 4100000.0, 0.0, -2.0)

# `fers` with every block read of the detection passes slowed down, so a signal or a truncation
# lands mid-run; the first such read (the score writer is open by then) creates the file argv[2].
SLOW_FERS = """
import sys, time
from pathlib import Path
from fers_engine import sources
read = sources.SceneSource.read
def slow_read(self, row0, row1):
    Path(sys.argv[2]).touch()
    time.sleep(float(sys.argv[1]))
    return read(self, row0, row1)
sources.SceneSource.read = slow_read
from fers_engine.cli import main
sys.exit(main(sys.argv[3:]))
"""


# -- helpers ----------------------------------------------------------------------------------
def write_tif(path: Path, cube: np.ndarray, nodata: Optional[float] = None) -> Path:
    """A striped, uncompressed GeoTIFF (bands, rows, cols) through osgeo.gdal, UTM 33N."""
    from osgeo import gdal, gdal_array, osr

    bands, rows, cols = cube.shape
    ds = gdal.GetDriverByName("GTiff").Create(
        str(path),
        cols,
        rows,
        bands,
        gdal_array.NumericTypeCodeToGDALTypeCode(cube.dtype),
        options=["INTERLEAVE=BAND"],
    )
    ds.SetGeoTransform(TRANSFORM)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    ds.SetProjection(srs.ExportToWkt())
    for i in range(bands):
        band = ds.GetRasterBand(i + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band.WriteArray(cube[i])
    ds = None
    return path


def scene_cube(rows: int = 40, cols: int = 36, bands: int = 12, seed: int = 0) -> np.ndarray:
    """Correlated float32 spectra with a few bright targets."""
    rng = np.random.default_rng(seed)
    basis = np.cumsum(rng.normal(size=(bands, 4)), axis=0)
    cube = basis @ rng.normal(size=(4, rows * cols)) + 0.2 * rng.normal(size=(bands, rows * cols)) + 50.0
    cube = cube.reshape(bands, rows, cols).astype(np.float32)
    cube[:, 5, 7] += 6.0
    cube[:, 20, 30] -= 6.0
    return cube


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def partials(folder: Path):
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("fers: error:") and "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def child_env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("FERS_MODELS_DIR", None)
    return env


def start_slow(args, marker: Path, delay: float = 0.05) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_FERS, str(delay), str(marker), *args],
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_partial(folder: Path, proc: subprocess.Popen, marker: Path, timeout: float = 60.0) -> str:
    """The name of the partial file of a child whose detection passes have started."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        found = [p for p in partials(folder) if not p.endswith(".probe")]
        if found and marker.exists():
            return found[0]
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before its passes: {proc.communicate()}")
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("the run did not start its passes")


@pytest.fixture
def scene(tmp_path) -> Path:
    return write_tif(tmp_path / "x.tif", scene_cube())


# -- 1. an output that is an input or another output ------------------------------------------
def test_1_mask_equal_to_the_input_is_refused_and_the_input_kept(scene, tmp_path, capsys):
    before = digest(scene)
    assert (
        fers(
            [
                "detect",
                str(scene),
                str(tmp_path / "s.tif"),
                *PLAIN_RX,
                "--mask",
                str(scene),
            ]
        )
        == 2
    )
    assert "the mask x.tif would overwrite the input x.tif" in one_line_error(capsys)
    assert digest(scene) == before and not (tmp_path / "s.tif").exists()


def test_1_mask_equal_to_the_score_is_named_as_such(scene, tmp_path, capsys):
    score = tmp_path / "s.tif"
    assert fers(["detect", str(scene), str(score), *PLAIN_RX, "--mask", str(score)]) == 2
    assert "the score raster and the mask are the same file (s.tif)" in one_line_error(capsys)
    assert not score.exists()


def test_1_outputs_linked_to_the_input_are_refused(scene, tmp_path, capsys):
    os.symlink(scene, tmp_path / "soft.tif")
    os.link(scene, tmp_path / "hard.tif")
    before = digest(scene)
    for out in ("soft.tif", "hard.tif"):
        assert fers(["detect", str(scene), str(tmp_path / out), *PLAIN_RX]) == 2
        assert "would overwrite the input x.tif (through a link)" in one_line_error(capsys)
    assert digest(scene) == before


def test_1_and_3_qgis_outputs_onto_their_inputs_are_refused(scene, tmp_path, qgis_process):
    """fers:detect OUTPUT_MASK=<the input> and fers:evaluate OUTPUT_HTML=<the score raster>."""
    score = tmp_path / "s.tif"
    assert fers(["detect", str(scene), str(score), *PLAIN_RX, "-q"]) == 0
    labels = np.zeros((1, 40, 36), np.uint8)
    labels[0, 5, 7] = labels[0, 20, 30] = 1
    truth = write_tif(tmp_path / "t.tif", labels)
    before = {p: digest(p) for p in (scene, score)}
    for args, message in (
        (
            [
                "fers:detect",
                "--",
                f"INPUT={scene}",
                "ENHANCER=none",
                "DETECTOR=rx",
                f"OUTPUT={tmp_path / 'o.tif'}",
                f"OUTPUT_MASK={scene}",
            ],
            "the mask x.tif would overwrite the input x.tif",
        ),
        (
            ["fers:evaluate", "--", f"SCORE={score}", f"GROUND_TRUTH={truth}", f"OUTPUT_HTML={score}"],
            "the report s.tif would overwrite the input s.tif",
        ),
    ):
        proc = qgis_process("run", *args, timeout=300)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert {p: digest(p) for p in (scene, score)} == before and not (tmp_path / "o.tif").exists()


# -- 2. disk full -----------------------------------------------------------------------------
@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 256 KiB tmpfs, where this test may mount one (root on Linux)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not root'}); the writer's "
            "own tests inject the write error"
        )
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_2_disk_full_keeps_the_previous_output_and_fails(tiny_tmpfs, tmp_path, capsys):
    big = write_tif(
        tmp_path / "big.tif", np.random.default_rng(1).normal(size=(4, 400, 400)).astype(np.float32)
    )
    old = tiny_tmpfs / "s.tif"
    old.write_bytes(b"previous good output" * 1000)
    before = digest(old)
    status = fers(["detect", str(big), str(old), *PLAIN_RX, "-q"])  # 400 x 400 scores: > 256 KiB
    err = capsys.readouterr().err
    assert status == 2 and digest(old) == before and partials(tiny_tmpfs) == [], err
    assert "No space left on device" in err or "no space" in err.lower()


# -- 3. outputs that would destroy what they describe, device nodes ---------------------------
def test_3_training_onto_its_own_input_is_refused(scene, capsys):
    pytest.importorskip("torch")
    before = digest(scene)
    assert fers(["train", str(scene), "-o", str(scene), "--epochs", "1"]) == 2
    assert "the model x.tif would overwrite the input x.tif" in one_line_error(capsys)
    assert digest(scene) == before


def test_3_evaluation_report_onto_the_score_is_refused(scene, tmp_path, capsys):
    score, truth = tmp_path / "s.tif", write_tif(tmp_path / "t.tif", np.zeros((1, 40, 36), np.uint8))
    assert fers(["detect", str(scene), str(score), *PLAIN_RX, "-q"]) == 0
    capsys.readouterr()
    before = digest(score)
    assert fers(["evaluate", str(score), str(truth), "--html", str(score)]) == 2
    assert "the report s.tif would overwrite the input s.tif" in one_line_error(capsys)
    assert digest(score) == before
    from fers_engine.errors import OutputError
    from fers_engine.report import write_report

    with pytest.raises(OutputError, match="would overwrite the input"):  # what fers:evaluate calls
        write_report(score, {"auc": 0.5}, score_path=str(score), truth_path=str(truth))
    assert digest(score) == before


def test_3_outputs_that_are_not_regular_files_stay_what_they_are(scene, tmp_path, capsys):
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    assert fers(["detect", str(scene), str(fifo), *PLAIN_RX]) == 2
    assert "is a named pipe, not a file" in one_line_error(capsys)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    (tmp_path / "folder.tif").mkdir()
    assert fers(["detect", str(scene), str(tmp_path / "folder.tif"), *PLAIN_RX]) == 2
    assert "is a folder, not a file" in one_line_error(capsys)
    device = tmp_path / "null.tif"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        return  # creating a device node needs root; the named pipe above took the same path
    assert fers(["detect", str(scene), str(device), *PLAIN_RX]) == 2
    assert "is a character device, not a file" in one_line_error(capsys)
    assert stat.S_ISCHR(os.lstat(device).st_mode)


# -- 5. validation before work ----------------------------------------------------------------
def test_5_bad_mask_requests_fail_before_the_score_is_written(scene, tmp_path, capsys):
    score = tmp_path / "s.tif"
    score.write_bytes(b"an older score")
    for extra in (
        ["--mask", str(tmp_path / "nodir" / "m.tif")],
        ["--mask", str(tmp_path / "m.tif"), "--threshold-value", "101"],
        ["--mask", str(tmp_path / "m.tif"), "--threshold-method", "value"],
    ):
        assert fers(["detect", str(scene), str(score), *PLAIN_RX, *extra]) == 2
        one_line_error(capsys)
        assert score.read_bytes() == b"an older score" and partials(tmp_path) == []


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder this process cannot write in: chmod for users, a read-only tmpfs for root."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(
            f"root cannot be kept from writing here without a read-only mount ({proc.stderr.strip()})"
        )
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_5_training_into_a_read_only_folder_fails_before_training(
    scene, read_only_folder, capsys, monkeypatch
):
    pytest.importorskip("torch")
    from fers_engine.nets import data

    def never(*args, **kwargs):
        raise AssertionError("training data was prepared before the output folder was checked")

    monkeypatch.setattr(data, "prepare_scene", never)
    assert fers(["train", str(scene), "-o", str(read_only_folder / "m.safetensors"), "--epochs", "1"]) == 2
    assert "cannot write in" in one_line_error(capsys)


def test_5_detect_into_a_read_only_folder_is_one_line(scene, read_only_folder, capsys):
    assert fers(["detect", str(scene), str(read_only_folder / "s.tif"), *PLAIN_RX]) == 2
    assert "cannot write in" in one_line_error(capsys)


# -- 6. signals and leftovers -----------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_6_termination_signals_clean_up_like_ctrl_c(scene, tmp_path, signum):
    score = tmp_path / "s.tif"
    score.write_bytes(b"an older score")
    marker = tmp_path.parent / f"{tmp_path.name}.started"
    proc = start_slow(
        [
            "detect",
            str(scene),
            str(score),
            *PLAIN_RX,
            "--block-rows",
            "1",
            "-q",
        ],
        marker,
    )
    wait_for_partial(tmp_path, proc, marker)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, (out, err)
    assert err.strip() == f"fers: terminated by {signal.Signals(signum).name}; no partial output left"
    assert partials(tmp_path) == [] and score.read_bytes() == b"an older score"


def test_6_partials_of_a_killed_run_are_swept_by_the_next_run(scene, tmp_path, capsys):
    marker = tmp_path.parent / f"{tmp_path.name}.started"
    proc = start_slow(
        [
            "detect",
            str(scene),
            str(tmp_path / "s.tif"),
            *PLAIN_RX,
            "--block-rows",
            "1",
        ],
        marker,
    )
    name = wait_for_partial(tmp_path, proc, marker)
    proc.kill()
    proc.wait(timeout=30)
    assert partials(tmp_path) == [name]  # kill -9 cannot be caught: the next run cleans up
    if f"-{proc.pid}-" not in name:  # a writer that does not name its pid: only an old partial goes
        day_ago = time.time() - 2 * 24 * 3600
        os.utime(tmp_path / name, (day_ago, day_ago))
    assert (
        fers(
            [
                "detect",
                str(scene),
                str(tmp_path / "t.tif"),
                *PLAIN_RX,
                "-v",
                "-q",
            ]
        )
        == 0
    )
    assert partials(tmp_path) == []
    assert (
        f"removed 1 partial file(s) left in {tmp_path} by an interrupted run: {name}"
        in capsys.readouterr().err
    )


# -- 7. one line instead of a traceback -------------------------------------------------------
def test_7_truncated_geotiff_is_one_line(scene, tmp_path, capsys):
    cut = tmp_path / "cut.tif"
    cut.write_bytes(scene.read_bytes()[: scene.stat().st_size // 2])
    assert fers(["detect", str(cut), str(tmp_path / "s.tif"), *PLAIN_RX]) == 2
    assert "cut.tif" in one_line_error(capsys) and not (tmp_path / "s.tif").exists()


def test_7_input_truncated_mid_run_is_one_line(tmp_path):
    # 22 MB: more than the 16 MiB budget lets GDAL cache, so rows past the cut are read after it
    big = write_tif(tmp_path / "big.tif", scene_cube(rows=1000, cols=700, bands=8))
    marker = tmp_path.parent / f"{tmp_path.name}.started"
    proc = start_slow(
        [
            "detect",
            str(big),
            str(tmp_path / "s.tif"),
            *PLAIN_RX,
            "--block-rows",
            "50",
            "--memory-mb",
            "16",
        ],
        marker,
    )
    wait_for_partial(tmp_path, proc, marker)
    os.truncate(big, big.stat().st_size // 3)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, (out, err)
    assert err.startswith("fers: error: cannot read rows") and "big.tif" in err
    assert len(err.strip().splitlines()) == 1 and partials(tmp_path) == []


def test_7_exclusion_mask_of_the_wrong_size_is_one_line(scene, tmp_path, capsys):
    pytest.importorskip("torch")
    small = write_tif(tmp_path / "ex.tif", np.zeros((1, 10, 10), np.uint8))
    assert fers(["train", str(scene), "-o", str(tmp_path / "m.safetensors"), "--exclude", str(small)]) == 2
    assert "exclusion mask ex.tif is 10 x 10 px but the training input x.tif is 36 x 40 px" in one_line_error(
        capsys
    )


# -- 8. nonsense refused before work ----------------------------------------------------------
@pytest.mark.parametrize("epochs", ["0", "-3"])
def test_8_training_needs_at_least_one_epoch(scene, tmp_path, capsys, epochs):
    pytest.importorskip("torch")
    assert fers(["train", str(scene), "-o", str(tmp_path / "m.safetensors"), "--epochs", epochs]) == 2
    assert f"epochs must be a whole number of at least 1, got {epochs}" in one_line_error(capsys)
    assert not (tmp_path / "m.safetensors").exists()


def test_8_training_with_every_pixel_excluded_is_refused(scene, tmp_path, capsys):
    pytest.importorskip("torch")
    everything = write_tif(tmp_path / "ex.tif", np.ones((1, 40, 36), np.uint8))
    assert (
        fers(["train", str(scene), "-o", str(tmp_path / "m.safetensors"), "--exclude", str(everything)]) == 2
    )
    assert "excludes every pixel of x.tif" in one_line_error(capsys)
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("budget", ["0", "-1"])
def test_8_memory_budget_must_be_positive(scene, tmp_path, capsys, budget):
    assert (
        fers(
            [
                "detect",
                str(scene),
                str(tmp_path / "s.tif"),
                *PLAIN_RX,
                "--memory-mb",
                budget,
            ]
        )
        == 2
    )
    assert "memory budget must be at least" in one_line_error(capsys)


def test_8_a_single_band_selection_is_refused(scene, tmp_path, capsys):
    assert (
        fers(
            [
                "detect",
                str(scene),
                str(tmp_path / "s.tif"),
                *PLAIN_RX,
                "--bands",
                "7",
            ]
        )
        == 2
    )
    assert "keeps only band 7 of x.tif; anomaly detection needs at least 2 bands" in one_line_error(capsys)


def test_8_complex_input_is_refused(tmp_path, capsys):
    cube = scene_cube().astype(np.complex64) * (1 + 1j)
    src = write_tif(tmp_path / "c.tif", cube)
    assert fers(["detect", str(src), str(tmp_path / "s.tif"), *PLAIN_RX]) == 2
    assert "c.tif holds complex samples" in one_line_error(capsys)


def test_8_mat_with_two_cubes_is_refused_naming_them(tmp_path, capsys):
    from scipy.io import savemat

    cube = np.moveaxis(scene_cube(), 0, 2)
    savemat(tmp_path / "two.mat", {"data": cube, "data_norm": cube / cube.max()})
    assert (
        fers(
            [
                "detect",
                str(tmp_path / "two.mat"),
                str(tmp_path / "s.tif"),
                *PLAIN_RX,
            ]
        )
        == 2
    )
    err = one_line_error(capsys)
    assert "two.mat holds 2 hyperspectral cubes ('data' 40x36x12, 'data_norm' 40x36x12)" in err


def test_8_a_constant_scene_is_warned(tmp_path, capsys):
    src = write_tif(tmp_path / "flat.tif", np.full((6, 20, 18), 7.0, np.float32))
    assert fers(["detect", str(src), str(tmp_path / "s.tif"), *PLAIN_RX, "-q"]) == 0
    assert CONSTANT_SCENE in capsys.readouterr().err
    pytest.importorskip("torch")
    assert fers(["detect", str(src), str(tmp_path / "f.tif"), "-q"]) == 0
    assert CONSTANT_SCENE in capsys.readouterr().err


# -- 9. messages that say what is wrong -------------------------------------------------------
@pytest.mark.parametrize("fill", ["nan", "nodata"])
def test_9_empty_bands_are_named_and_dropped(tmp_path, capsys, fill):
    cube = scene_cube()
    reference = tmp_path / "ref.tif"
    assert (
        fers(
            [
                "detect",
                str(write_tif(tmp_path / "good.tif", np.delete(cube, [2, 6], axis=0))),
                str(reference),
                *PLAIN_RX,
                "-q",
            ]
        )
        == 0
    )
    cube[[2, 6]] = np.nan if fill == "nan" else -9999.0
    src = write_tif(tmp_path / "holes.tif", cube, nodata=None if fill == "nan" else -9999.0)
    capsys.readouterr()
    assert fers(["detect", str(src), str(tmp_path / "s.tif"), *PLAIN_RX, "-q"]) == 0
    err = capsys.readouterr().err
    assert "dropped 2 band(s) of holes.tif hold no valid value (all NaN or nodata): band 3, band 7" in err
    from osgeo import gdal

    got = gdal.Open(str(tmp_path / "s.tif")).ReadAsArray()
    np.testing.assert_allclose(got, gdal.Open(str(reference)).ReadAsArray(), rtol=1e-6)


def test_9_device_and_folder_and_url_messages(scene, tmp_path, capsys):
    assert fers(["detect", "/dev/zero", str(tmp_path / "s.tif"), *PLAIN_RX]) == 2
    assert "input /dev/zero is a character device, not a raster file" in one_line_error(capsys)
    (tmp_path / "models").mkdir()
    assert fers(["detect", str(scene), str(tmp_path / "s.tif"), "--model", str(tmp_path / "models")]) == 2
    assert "is a folder, not a model file" in one_line_error(capsys)
    url = "/vsicurl/http://127.0.0.1:9/scene.tif"  # refused at once: nothing listens on port 9
    assert fers(["detect", url, str(tmp_path / "s.tif"), *PLAIN_RX]) == 2
    assert url in one_line_error(capsys)
