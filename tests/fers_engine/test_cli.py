"""The `fers` console script: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from engine_helpers import PLAIN_RX, small_scene, write_cube

from fers_engine.cli import main as fers, parse_bands
from fers_engine.errors import InputError


def test_parse_bands_is_one_based():
    assert parse_bands("1-3,5") == [0, 1, 2, 4]
    with pytest.raises(InputError):
        parse_bands("0-3")
    with pytest.raises(InputError):
        parse_bands("5-2")


def test_detect_evaluate_threshold_roundtrip(tmp_path, capsys):
    cube, truth, _ = small_scene(tmp_path)
    assert (
        fers(
            [
                "detect",
                str(cube),
                str(tmp_path / "s.tif"),
                *PLAIN_RX,
                "--bands",
                "1-20",
                "-q",
            ]
        )
        == 0
    )
    assert fers(["evaluate", str(tmp_path / "s.tif"), str(truth), "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{") :])
    assert result["auc"] > 0.7 and "auc_pf_tau" in result
    assert (
        fers(["threshold", str(tmp_path / "s.tif"), str(tmp_path / "m.tif"), "--method", "otsu", "-q"]) == 0
    )
    assert (tmp_path / "m.tif").is_file()


def test_detect_lrx_covariance_option_reaches_the_engine(tmp_path, capsys):
    cube, _, _ = small_scene(tmp_path, rows=30, cols=26, bands=8)
    assert (
        fers(
            [
                "detect",
                str(cube),
                str(tmp_path / "s.tif"),
                "--enhancer",
                "none",
                "--detector",
                "lrx",
                "--inner",
                "3",
                "--outer",
                "9",
                "--lrx-covariance",
                "scene",
                "-q",
                "-v",
            ]
        )
        == 0
    )
    assert "local RX covariance: scene" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        fers(["detect", str(cube), str(tmp_path / "t.tif"), "--lrx-covariance", "local"])


def test_detect_crd_options_reach_the_engine(tmp_path, capsys):
    cube, _, _ = small_scene(tmp_path, rows=40, cols=36, bands=8)
    assert (
        fers(
            [
                "detect",
                str(cube),
                str(tmp_path / "s.tif"),
                "--enhancer",
                "none",
                "--detector",
                "crd",
                "--inner",
                "3",
                "--outer",
                "9",
                "--crd-lambda",
                "0.25",
                "--threads",
                "1",
                "-q",
                "-v",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "CRD: windows 3/9, lambda 0.25" in err and "on 1 thread;" in err
    assert (
        fers(
            [
                "detect",
                str(cube),
                str(tmp_path / "t.tif"),
                "--enhancer",
                "none",
                "--detector",
                "crd",
                "--crd-lambda",
                "0",
                "-q",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lambda" in err[0] and not (tmp_path / "t.tif").exists()


def test_info_json(tmp_path, capsys):
    cube, _, scene = small_scene(tmp_path)
    assert fers(["info", str(cube), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["bands"] == scene.cube.shape[0]
    assert "32611" in info["crs"] or "UTM" in info["crs"]
    np.testing.assert_allclose(info["wavelengths_nm"], scene.wavelengths, atol=0.01)


def test_bad_input_is_one_line_on_stderr_without_traceback(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_text("hello")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fers_engine.cli",
            "detect",
            str(bad),
            str(tmp_path / "o.tif"),
            *PLAIN_RX,
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("fers: error:") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.tif").exists()


def test_one_band_raster_is_refused(tmp_path, capsys):
    one = write_cube(tmp_path / "one.tif", np.ones((1, 6, 6), np.float32))
    assert fers(["detect", str(one), str(tmp_path / "o.tif"), *PLAIN_RX]) == 2
    assert "band" in capsys.readouterr().err


def test_missing_band_is_named_one_based(tmp_path, capsys):
    cube, _, scene = small_scene(tmp_path)
    count = scene.cube.shape[0]
    assert (
        fers(
            [
                "detect",
                str(cube),
                str(tmp_path / "o.tif"),
                *PLAIN_RX,
                "--bands",
                f"1-{count + 5}",
            ]
        )
        == 2
    )
    assert f"band {count + 5} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


def test_evaluate_writes_the_html_report(tmp_path, capsys):
    cube, truth, _ = small_scene(tmp_path)
    assert fers(["detect", str(cube), str(tmp_path / "s.tif"), *PLAIN_RX, "-q"]) == 0
    assert fers(["evaluate", str(tmp_path / "s.tif"), str(truth), "--html", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    auc = float(next(line for line in out.splitlines() if line.strip().startswith("auc:")).split(":")[1])
    html = (tmp_path / "r.html").read_text()
    assert f'id="auc">{auc:.6f}<' in html and "<svg" in html


@pytest.mark.parametrize(
    "method, flagged", [("percentile", 0.01), ("false_alarm_rate", 0.01), ("otsu", None)]
)
def test_threshold_methods_have_their_own_defaults(tmp_path, capsys, method, flagged):
    cube, _, _ = small_scene(tmp_path, rows=60, cols=50)
    assert fers(["detect", str(cube), str(tmp_path / "s.tif"), *PLAIN_RX, "-q"]) == 0
    assert (
        fers(["threshold", str(tmp_path / "s.tif"), str(tmp_path / "m.tif"), "--method", method, "-q"]) == 0
    )
    from osgeo import gdal

    mask = gdal.Open(str(tmp_path / "m.tif")).ReadAsArray()
    if flagged is not None:
        assert abs((mask == 1).sum() - flagged * mask.size) <= 1
    assert fers(["threshold", str(tmp_path / "s.tif"), str(tmp_path / "v.tif"), "--method", "value"]) == 2
    assert "needs a threshold value" in capsys.readouterr().err


def _full_disk(limit_bytes: int):
    """For a child process: writes past ``limit_bytes`` fail (EFBIG), as on a full disk."""
    import resource
    import signal

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_detect_on_a_full_disk_fails_in_one_line_and_keeps_the_previous_score(tmp_path):
    """Issue 15 item 2: GDAL's write error must not end in exit 0 and a corrupt file."""
    cube, _, _ = small_scene(tmp_path, rows=120, cols=100)
    score = tmp_path / "s.tif"
    assert fers(["detect", str(cube), str(score), *PLAIN_RX, "-q"]) == 0
    before = score.read_bytes()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fers_engine.cli",
            "detect",
            str(cube),
            str(score),
            "--enhancer",
            "none",
            "--detector",
            "lrx",
            "--inner",
            "3",
            "--outer",
            "7",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_full_disk(len(before) // 2),
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "s.tif" in lines[0] and "File too large" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "wrote" not in proc.stdout
    assert score.read_bytes() == before, "the previous output is kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif", "scene.tif", "truth.tif"]


@pytest.mark.parametrize("enhancer,mapped", [("spectral", True), ("none", False)])
def test_detect_maps_large_arrays_only_when_the_enhancers_run(
    tmp_path, capsys, monkeypatch, enhancer, mapped
):
    """``fers detect`` keeps --memory-mb a limit with the enhancers (memory.map_large_arrays),
    and leaves plain RX, which the setting slows, alone."""
    import fers_engine.memory as memory

    calls = []
    monkeypatch.setattr(memory, "map_large_arrays", lambda: calls.append(1) or True)
    cube, _, _ = small_scene(tmp_path, rows=40, cols=36)
    assert (
        fers(["detect", str(cube), str(tmp_path / "s.tif"), "--enhancer", enhancer, "--detector", "rx", "-q"])
        == 0
    )
    assert bool(calls) == mapped
