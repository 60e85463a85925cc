"""The output guard: every file a run will write, checked before any work starts.

A run reads some files (a scene and its partner files, a model, ground truth, exclusion masks)
and writes others (score raster, mask, model and its card, checkpoints, report, batch outputs).
``guard_outputs`` is called once per run, before the first pixel is read, and refuses:

* an output that is, or links to (symbolic link, hard link: same device and inode), a file of
  an input: the raster itself, its ENVI partner (``.hdr`` beside the data, the data beside the
  ``.hdr``), its ``.aux.xml`` and every file GDAL lists for the dataset;
* two outputs of the same run that are one file (the score and the mask, a model and its card);
* an output that exists and is not a regular file (a folder, a device node such as /dev/null,
  a named pipe, a socket): the atomic rename would replace the node by a regular file;
* an output whose folder is missing or not writable. Writability is probed by creating and
  removing a file, the only test that holds on every platform (ACLs, read-only mounts).

Then it sweeps each output folder of the partial files that runs which died left behind
(``sweep_stale_partials``): a killed writer cannot clean up after itself, the next run can.

**Partial files** are named ``.NAME.partial-HOST-PID-XXXXXXXX.EXT`` (``partial_prefix``): the
writer's host tag and process id are in the name, so a later run removes a partial only when it
was made on this machine by a process that no longer exists. That is exact where an age rule
can only guess (a scene's statistics pass may leave its partial untouched for an hour), needs no
lock file, and is safe on folders shared between machines (another host's partials are never
touched). Partials named before the pid was carried (``.NAME.partial-XXXXXXXX.EXT``) have no
owner to ask, so they are removed only when older than ``LEGACY_PARTIAL_AGE_S``.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ..errors import OutputError
from ..progress import SILENT, Reporter

PathLike = Union[str, "os.PathLike[str]"]

#: Partials without a pid in their name are removed when older than this (one day).
LEGACY_PARTIAL_AGE_S = 24 * 3600

# Data-file suffixes an ENVI header may describe (the same list the GDAL reader tries).
_ENVI_DATA_SUFFIXES = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw", ".bin", ".envi")
# mkstemp's random part: 8 characters of [a-z0-9_].
_PARTIAL = re.compile(
    r"^\.(?P<name>.+)\.partial-(?:(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-)?"
    r"(?P<rand>[a-z0-9_]{8})(?P<ext>(?:\.[A-Za-z0-9]+)*)$"
)


@dataclass(frozen=True)
class Output:
    """One file a run writes, plus the files written with it (a raster's ``.aux.xml``, which
    the writer removes when it replaces an older output; a model's ``.json`` card)."""

    role: str  #: how messages name it: "score raster", "mask", "model", "report"...
    path: Path
    companions: Tuple[Path, ...] = ()

    @classmethod
    def raster(cls, role: str, path: PathLike) -> Output:
        p = Path(path).expanduser()
        return cls(role, p, (Path(str(p) + ".aux.xml"),))

    @classmethod
    def file(cls, role: str, path: PathLike, *companions: PathLike) -> Output:
        return cls(role, Path(path).expanduser(), tuple(Path(c).expanduser() for c in companions))

    def files(self) -> Tuple[Path, ...]:
        return (self.path,) + self.companions


def guard_outputs(
    outputs: Sequence[Optional[Output]], inputs: Iterable = (), reporter: Reporter = SILENT
) -> None:
    """Refuse outputs that would destroy an input, collide, or cannot be written (see the
    module docstring), then sweep stale partial files from the output folders.

    ``outputs``: ``Output`` entries (None entries, e.g. an optional mask not asked for, are
    skipped). ``inputs``: paths, or opened scenes (their GDAL file list is used too); None and
    GDAL connection strings that are not files are skipped.
    """
    wanted = [o for o in outputs if o is not None]
    for out in wanted:
        _check_output_path(out)
    # Files are matched by identity keys in dictionaries, not pair by pair: a batch guards
    # thousands of outputs against thousands of inputs before it starts.
    by_key: Dict[Tuple, Tuple[Path, Path]] = {}
    for main, inp in _input_files(inputs):
        for key in _file_keys(inp):
            by_key.setdefault(key, (main, inp))
    for out in wanted:
        for written in out.files():
            for key in _file_keys(written):
                if key in by_key:
                    raise OutputError(_collision_message(out, written, *by_key[key]))
    written_by: Dict[Tuple, Tuple[Output, Path]] = {}
    for b in wanted:
        for fb in b.files():
            keys = _file_keys(fb)
            for key in keys:
                a, fa = written_by.get(key, (b, fb))
                if a is not b:
                    shown = fa.name if fa.name == fb.name else f"{fa.name} and {fb.name}"
                    raise OutputError(
                        f"the {a.role} and the {b.role} are the same file ({shown}): "
                        "choose two different paths"
                    )
            for key in keys:
                written_by.setdefault(key, (b, fb))
    for folder in dict.fromkeys(out.path.parent for out in wanted):
        _probe_writable(folder)
        removed = sweep_stale_partials(folder)
        if removed:
            reporter.info(
                f"removed {len(removed)} partial file(s) left in {folder} by an interrupted "
                f"run: {', '.join(removed)}"
            )


def partial_prefix(target: PathLike) -> str:
    """Name prefix of the temporary file a writer makes beside ``target`` with
    ``tempfile.mkstemp(prefix=..., dir=target's folder)``: ``.NAME.partial-HOST-PID-``."""
    return f".{Path(target).name}.partial-{_host_tag()}-{os.getpid()}-"


def sweep_stale_partials(folder: PathLike, now: Optional[float] = None) -> List[str]:
    """Remove this tool's partial files in ``folder`` whose writer is gone; returns their names.

    Only regular files (never links) directly in ``folder``, owned by this user, whose name
    matches the partial pattern, and either carry this host's tag and the pid of a process that
    no longer exists, or carry no pid and are older than ``LEGACY_PARTIAL_AGE_S``.
    """
    now = time.time() if now is None else now
    removed: List[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    host, me = _host_tag(), os.getpid()
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            continue
        if match.group("pid") is None:
            stale = now - info.st_mtime > LEGACY_PARTIAL_AGE_S
        else:
            pid = int(match.group("pid"))
            stale = match.group("host") == host and pid != me and not pid_alive(pid)
        if not stale:
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(entry.name)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts as alive). Never signals it: on
    Windows ``os.kill`` would terminate the process, so the process table is asked instead."""
    if pid <= 0:
        return False
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists but belongs to another user
        return True
    return True


# -- helpers ----------------------------------------------------------------------------------
def _pid_alive_windows(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32.OpenProcess.restype = wintypes.HANDLE
    handle = kernel32.OpenProcess(0x1000, False, wintypes.DWORD(pid))  # QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # type: ignore[attr-defined,unused-ignore]  # access denied: it exists
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _host_tag() -> str:
    """8 hex digits naming this machine in partial-file names (short, filename-safe)."""
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_output_path(out: Output) -> None:
    text = str(out.path)
    if text in ("", "."):
        raise OutputError(f"no path given for the {out.role}")
    if text.startswith("/vsi"):
        raise OutputError(f"the {out.role} {text} is a GDAL virtual path: give a file path on disk")
    for written in out.files():
        try:
            mode = os.stat(written).st_mode  # follows links: what the rename would replace
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot check the {out.role} {written} ({exc.strerror or exc})") from None
        if stat.S_ISREG(mode):
            continue
        kind = next((label for test, label in _KINDS if test(mode)), "not a regular file")
        raise OutputError(f"the {out.role} {written} is {kind}, not a file: choose a file path")
    folder = out.path.parent
    if not folder.is_dir():
        raise OutputError(
            f"output folder does not exist: {folder}"
            if not folder.exists()
            else f"output folder {folder} is not a folder"
        )


def _probe_writable(folder: Path) -> None:
    """Create and remove a file named like a partial, so a crash in between is swept later."""
    try:
        fd, probe = tempfile.mkstemp(
            prefix=partial_prefix(folder / "write-test"), suffix=".probe", dir=str(folder)
        )
    except OSError as exc:
        raise OutputError(f"cannot write in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass


def _input_files(inputs: Iterable) -> List[Tuple[Path, Path]]:
    """``(main file, file)`` for every file that belongs to an input."""
    out: List[Tuple[Path, Path]] = []
    for item in inputs:
        if item is None:
            continue
        paths: List[Path] = []
        info = getattr(item, "info", None)
        if info is not None:  # an opened Scene
            paths.append(Path(info.path))
            paths.extend(Path(f) for f in (getattr(item, "files", None) or []))
        else:
            paths.append(Path(item).expanduser())
        main = paths[0]
        for p in paths:
            for f in _with_partners(p):
                out.append((main, f))
    return out


def _with_partners(p: Path) -> List[Path]:
    """The file, and those of its partners that exist: ``.aux.xml``, the ENVI header beside
    the data, the data beside the header."""
    partners = [Path(str(p) + ".aux.xml")]
    if p.suffix.lower() == ".hdr":
        stem = str(p.with_suffix(""))
        partners.extend(
            Path(stem + s) for s in _ENVI_DATA_SUFFIXES + tuple(s.upper() for s in _ENVI_DATA_SUFFIXES[1:])
        )
    else:
        partners.extend([Path(str(p) + ".hdr"), p.with_suffix(".hdr"), p.with_suffix(".HDR")])
    return [p] + [f for f in partners if f != p and f.exists()]


def _file_keys(p: Path) -> Tuple[Tuple, ...]:
    """What makes two paths one file, as dictionary keys: the path once links are resolved,
    and the device and inode of an existing file (a hard link). Two paths share a key exactly
    when ``_same_file`` says they are one file."""
    keys: Tuple[Tuple, ...] = (("path", os.path.normcase(os.path.realpath(p))),)
    try:
        st = os.stat(p)
    except OSError:  # does not exist (yet)
        return keys
    return keys + (("inode", st.st_dev, st.st_ino),)


def _same_file(a: Path, b: Path) -> bool:
    """Same path once links are resolved, or the same inode (a hard link)."""
    if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _collision_message(out: Output, written: Path, main: Path, inp: Path) -> str:
    what = f"the {out.role} {written.name}"
    if written != out.path:
        what += f" (written with {out.path.name})"
    target = (
        f"the input {main.name}" if _same_file(inp, main) else f"{inp.name}, a file of the input {main.name}"
    )
    if os.path.abspath(written) != os.path.abspath(inp):
        target += " (through a link)"
    return f"{what} would overwrite {target}; choose another path"
