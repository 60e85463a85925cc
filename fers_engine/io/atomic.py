"""The one way the product commits a file: write it beside the target, then rename it onto it.

Every output (score and mask rasters, model files and their cards, checkpoints, JSON and HTML
reports) is written into a hidden temporary file in the target's folder,
``.NAME.partial-HOST-PID-XXXX<suffix>`` (``io.guard.partial_prefix``, so that the next run's
sweep can tell a dead writer's file from a live one's), and moved onto the target by one
``os.replace`` only once it is complete. A failure or a cancel at any point deletes the
temporary file and leaves any previous output untouched, so no reader (QGIS, a map server, the
next run) ever sees half a file.

The finished file gets the mode any file the user creates gets (0666 minus the umask), not the
0600 of the temporary file: colleagues and servers that may read the user's files can read
these too.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Literal, Optional, Union

from ..errors import OutputError
from .guard import partial_prefix

_umask_lock = threading.Lock()


def user_file_mode() -> int:
    """0666 minus the process umask: the mode ``open(path, "w")`` would give a new file.

    Linux reports the umask in /proc without changing it; elsewhere it can only be read by
    setting it, which is done under a lock and undone at once.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


class CommitOnSuccess:
    """A ``with`` block that commits what it wrote when it ends cleanly and aborts otherwise
    (any exception, ``Cancelled`` and Ctrl-C included): ``AtomicFile`` and ``RasterWriter``."""

    def commit(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False


class AtomicFile(CommitOnSuccess):
    """A temporary file beside ``target`` that becomes ``target`` on ``commit()``.

    ``open()`` creates the (empty) temporary file and returns its path for the caller to fill,
    by path (GDAL, a library) or by ``write_bytes``. As a context manager it commits when the
    block ends cleanly and aborts on any exception (``Cancelled`` and Ctrl-C included).
    """

    def __init__(self, target: Union[str, os.PathLike], suffix: Optional[str] = None) -> None:
        self.target = Path(target).expanduser()
        self.suffix = self.target.suffix if suffix is None else suffix
        self.tmp: Optional[Path] = None
        if self.target.is_dir():
            raise OutputError(f"output path is a folder: {self.target}")
        if not self.target.parent.is_dir():
            raise OutputError(f"output folder does not exist: {self.target.parent}")

    def open(self) -> Path:
        """Create the temporary file (once) and return its path."""
        if self.tmp is None:
            try:
                fd, name = tempfile.mkstemp(
                    prefix=partial_prefix(self.target), suffix=self.suffix, dir=str(self.target.parent)
                )
                os.close(fd)
            except OSError as exc:
                raise OutputError(f"cannot write in {self.target.parent} ({exc.strerror or exc})") from None
            self.tmp = Path(name)
        return self.tmp

    def write_bytes(self, data: bytes) -> None:
        """Fill the temporary file; a failed write (disk full) is an ``OutputError``."""
        tmp = self.open()
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot write {self.target.name} ({exc.strerror or exc})") from None

    def commit(self) -> Path:
        """Give the finished file the user's mode and move it onto the target."""
        if self.tmp is None:
            raise OutputError(f"nothing was written for {self.target.name}")
        try:
            os.chmod(self.tmp, user_file_mode())
            os.replace(self.tmp, self.target)
        except OSError as exc:
            self.abort()
            raise OutputError(
                f"cannot replace {self.target} ({exc.strerror or exc}); is it open in another program?"
            ) from None
        self.tmp = None
        return self.target

    def abort(self) -> None:
        """Delete the temporary file; the target is left as it was."""
        if self.tmp is not None:
            try:
                self.tmp.unlink()
            except OSError:
                pass
            self.tmp = None

    def __enter__(self) -> Path:
        return self.open()


def write_bytes(target: Union[str, os.PathLike], data: bytes) -> Path:
    """Commit ``data`` as the file ``target``, atomically."""
    out = AtomicFile(target)
    out.write_bytes(data)
    return out.commit()


def write_text(target: Union[str, os.PathLike], text: str) -> Path:
    """Commit ``text`` (UTF-8) as the file ``target``, atomically."""
    return write_bytes(target, text.encode("utf-8"))
