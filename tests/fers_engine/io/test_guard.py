"""The output guard: collisions with inputs and between outputs, non-file outputs, folders,
and the sweep of partial files left by runs that died."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fers_engine.errors import OutputError
from fers_engine.io.guard import (
    LEGACY_PARTIAL_AGE_S,
    Output,
    guard_outputs,
    partial_prefix,
    pid_alive,
    sweep_stale_partials,
)
from fers_engine.progress import Reporter


def _touch(path: Path, text: str = "data") -> Path:
    path.write_text(text)
    return path


def test_output_equal_to_an_input_is_refused(tmp_path):
    src = _touch(tmp_path / "x.tif")
    with pytest.raises(
        OutputError, match=r"^the mask x.tif would overwrite the input x.tif; choose another path$"
    ):
        guard_outputs([Output.raster("mask", src)], inputs=[src])
    guard_outputs([Output.raster("mask", tmp_path / "m.tif")], inputs=[src])  # another path is fine


def test_links_to_an_input_are_refused(tmp_path):
    src = _touch(tmp_path / "x.tif")
    os.symlink(src, tmp_path / "soft.tif")
    os.link(src, tmp_path / "hard.tif")
    for name in ("soft.tif", "hard.tif"):
        with pytest.raises(OutputError, match="would overwrite the input x.tif \\(through a link\\)"):
            guard_outputs([Output.raster("score raster", tmp_path / name)], inputs=[src])
    # an input given through a link is found too
    with pytest.raises(OutputError, match="would overwrite"):
        guard_outputs([Output.raster("score raster", src)], inputs=[tmp_path / "soft.tif"])


def test_envi_partner_and_aux_files_of_an_input_are_protected(tmp_path):
    data = _touch(tmp_path / "SDData")
    _touch(tmp_path / "SDData.hdr", "ENVI")
    _touch(tmp_path / "SDData.aux.xml", "<PAMDataset/>")
    for name in ("SDData.hdr", "SDData.aux.xml"):
        with pytest.raises(OutputError, match=f"{name}, a file of the input SDData"):
            guard_outputs([Output.file("report", tmp_path / name)], inputs=[data])
    with pytest.raises(OutputError, match="the input SDData"):  # the header names the data file too
        guard_outputs([Output.raster("score raster", data)], inputs=[tmp_path / "SDData.hdr"])


def test_opened_scene_files_are_inputs(tmp_path):
    class FakeScene:  # what the guard uses of a Scene: info.path and the GDAL file list
        class info:
            path = str(tmp_path / "cube.tif")

        files = [tmp_path / "cube.tif", tmp_path / "cube.tif.msk"]

    with pytest.raises(OutputError, match="cube.tif.msk, a file of the input cube.tif"):
        guard_outputs([Output.raster("mask", tmp_path / "cube.tif.msk")], inputs=[FakeScene()])


def test_two_outputs_of_one_run_may_not_be_one_file(tmp_path):
    score = tmp_path / "s.tif"
    with pytest.raises(OutputError, match=r"^the score raster and the mask are the same file \(s.tif\)"):
        guard_outputs([Output.raster("score raster", score), Output.raster("mask", score)])
    model = tmp_path / "m.safetensors"
    with pytest.raises(
        OutputError, match="the model and the training checkpoint are the same file \\(m.json\\)"
    ):
        guard_outputs(
            [
                Output.file("model", model, model.with_suffix(".json")),
                Output.file("training checkpoint", tmp_path / "m.json"),
            ]
        )


def test_a_batch_of_outputs_is_guarded_in_linear_time(tmp_path, monkeypatch):
    """A campaign guards thousands of outputs against thousands of inputs before it starts: each
    file is resolved a bounded number of times, not once per pair (200 scenes took 27 s pair by
    pair). A hard link between the last output and the first input is still found."""
    import fers_engine.io.guard as guard

    inputs = [_touch(tmp_path / f"in{i}.tif") for i in range(200)]
    outputs = [Output.raster(f"score raster {i}", tmp_path / f"s{i}.tif") for i in range(200)]
    calls = []
    real = os.path.realpath
    monkeypatch.setattr(guard.os.path, "realpath", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    guard_outputs(outputs, inputs=inputs)
    files = (
        len(inputs) * 3 + len(outputs) * 2
    )  # an input, its .aux.xml and .hdr probes; a raster, its .aux.xml
    assert len(calls) <= 2 * files, len(calls)
    os.link(inputs[0], tmp_path / "s199.tif")
    with pytest.raises(OutputError, match="the score raster 199 s199.tif would overwrite the input in0.tif"):
        guard_outputs(outputs, inputs=inputs)


@pytest.mark.parametrize("kind", ["folder", "fifo", "char device"])
def test_outputs_that_are_not_regular_files_are_refused(tmp_path, kind):
    target = tmp_path / "out.tif"
    if kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        try:
            os.mknod(target, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("creating a device node needs root")
    words = {"folder": "a folder", "fifo": "a named pipe", "char device": "a character device"}[kind]
    with pytest.raises(OutputError, match=f"is {words}, not a file"):
        guard_outputs([Output.raster("score raster", target)])
    link = tmp_path / "link.tif"
    os.symlink(target, link)  # a link to such a node is refused the same way
    with pytest.raises(OutputError, match=f"is {words}, not a file"):
        guard_outputs([Output.raster("score raster", link)])


def test_missing_folder_and_virtual_paths_are_refused(tmp_path):
    with pytest.raises(OutputError, match="output folder does not exist"):
        guard_outputs([Output.raster("score raster", tmp_path / "nowhere" / "s.tif")])
    with pytest.raises(OutputError, match="GDAL virtual path"):
        guard_outputs([Output.raster("score raster", "/vsimem/s.tif")])


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="cannot write in"):
            guard_outputs([Output.raster("score raster", folder / "s.tif")])
    finally:
        folder.chmod(0o755)


def test_the_writability_probe_leaves_nothing(tmp_path):
    guard_outputs([Output.raster("score raster", tmp_path / "s.tif")])
    assert list(tmp_path.iterdir()) == []


# -- partial files ------------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _host() -> str:
    return partial_prefix("s.tif").split(".partial-")[1].split("-")[0]


def _partial(folder: Path, target: str, pid: int, host: str = None) -> Path:
    return _touch(folder / f".{target}.partial-{host or _host()}-{pid}-ab12cd_9.tif")


def test_partial_names_carry_host_and_pid(tmp_path):
    prefix = partial_prefix(tmp_path / "s.tif")
    assert prefix == f".s.tif.partial-{_host()}-{os.getpid()}-" and len(_host()) == 8


def test_sweep_removes_only_partials_of_dead_writers_of_this_host(tmp_path):
    dead = _dead_pid()
    assert not pid_alive(dead) and pid_alive(os.getpid())
    stale = _partial(tmp_path, "s.tif", dead)
    stale_aux = _touch(Path(str(stale) + ".aux.xml"))
    live = _partial(tmp_path, "t.tif", os.getppid())  # a running process
    mine = _partial(tmp_path, "u.tif", os.getpid())
    other_host = _partial(tmp_path, "v.tif", dead, host="00000000" if _host() != "00000000" else "11111111")
    keep = [
        _touch(tmp_path / "s.tif"),
        _touch(tmp_path / ".s.tif.partial-notours"),
        _touch(tmp_path / "s.tif.partial-ab12cd_9.tif"),
    ]  # not hidden: not the pattern
    link = tmp_path / f".w.tif.partial-{_host()}-{dead}-ab12cd_9.tif"
    os.symlink(tmp_path / "s.tif", link)
    removed = sweep_stale_partials(tmp_path)
    assert sorted(removed) == sorted([stale.name, stale_aux.name])
    for p in (live, mine, other_host, *keep):
        assert p.exists(), p
    assert os.path.islink(link)


def test_sweep_removes_pidless_partials_only_when_old(tmp_path):
    young = _touch(tmp_path / ".s.tif.partial-ab12cd_9.tif")
    old = _touch(tmp_path / ".t.tif.partial-zz12cd_9.tif")
    past = time.time() - LEGACY_PARTIAL_AGE_S - 60
    os.utime(old, (past, past))
    assert sweep_stale_partials(tmp_path) == [old.name]
    assert young.exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_sweep_leaves_other_users_partials(tmp_path):
    theirs = _partial(tmp_path, "s.tif", _dead_pid())
    os.chown(theirs, 54321, 54321)
    assert sweep_stale_partials(tmp_path) == [] and theirs.exists()


def test_guard_sweeps_output_folders_and_says_so(tmp_path):
    stale = _partial(tmp_path, "s.tif", _dead_pid())
    logs = []
    guard_outputs([Output.raster("score raster", tmp_path / "s.tif")], reporter=Reporter(on_info=logs.append))
    assert not stale.exists()
    assert logs == [f"removed 1 partial file(s) left in {tmp_path} by an interrupted run: {stale.name}"]
