"""io.atomic: the one commit primitive (rasters, model files, reports, checkpoints): the user's
file mode, nothing left behind on failure, the previous file kept."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fers_engine.errors import OutputError
from fers_engine.io import write_array
from fers_engine.io.atomic import AtomicFile, user_file_mode, write_bytes, write_text
from fers_engine.quicklook import write_png
from fers_engine.report import write_report

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _png(path: Path) -> Path:
    write_png(path, np.zeros((2, 3, 3), np.uint8))
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_writer_gives_the_users_file_mode(tmp_path, umask, mask, expected):
    umask(mask)
    assert user_file_mode() == expected
    outputs = [
        write_array(tmp_path / "score.tif", np.zeros((3, 4), np.float32)),
        write_text(tmp_path / "card.json", "{}"),
        write_bytes(tmp_path / "weights.bin", b"\0" * 8),
        write_report(tmp_path / "report.html", {"auc": 0.5}),
        _png(tmp_path / "quicklook.png"),
    ]
    for out in outputs:
        assert _mode(Path(out)) == expected, (out, oct(_mode(Path(out))))
    assert sorted(os.listdir(tmp_path)) == [
        "card.json",
        "quicklook.png",
        "report.html",
        "score.tif",
        "weights.bin",
    ]


def test_model_file_and_its_card_get_the_users_mode(tmp_path, umask):
    torch = pytest.importorskip("torch")
    from fers_engine.nets.model_file import save_model

    umask(0o022)
    path = save_model(tmp_path / "m.safetensors", {"w": torch.zeros(2)}, {"format": "x"})
    assert _mode(path) == 0o644 and _mode(path.with_suffix(".json")) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["m.json", "m.safetensors"]


def test_an_exception_deletes_the_temporary_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "out.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with AtomicFile(target) as tmp:
            tmp.write_text("half")
            assert tmp.name.startswith(".out.json.partial-") and tmp.parent == tmp_path
            raise RuntimeError("boom")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.json"]


def test_bad_targets_are_one_line(tmp_path):
    with pytest.raises(OutputError, match="output folder does not exist"):
        write_text(tmp_path / "no" / "x.json", "")
    with pytest.raises(OutputError, match="output path is a folder"):
        write_text(tmp_path, "")
    with pytest.raises(OutputError, match="nothing was written"):
        AtomicFile(tmp_path / "y").commit()


# A full disk, for real: the child lowers its own file-size limit (RLIMIT_FSIZE) so that every
# write beyond it fails with EFBIG exactly as a full disk fails with ENOSPC; SIGXFSZ is ignored
# so the write returns the error instead of killing the process.
FULL_DISK = r"""
import os, resource, signal, sys
from fers_engine.errors import OutputError
from fers_engine.io.atomic import write_bytes
target = sys.argv[1]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_bytes(target, os.urandom(100_000))
    print("no error")
except OutputError as exc:
    print("OutputError:", exc)
"""


def test_full_disk_keeps_the_previous_file(tmp_path):
    target = tmp_path / "weights.bin"
    write_bytes(target, b"previous")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(target)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OutputError: cannot write weights.bin (File too large)"
    assert target.read_bytes() == b"previous" and os.listdir(tmp_path) == ["weights.bin"]
