"""Install PyTorch into the plugin's private folder with the pip of QGIS's own Python.

Why this way: detection needs nothing beyond QGIS, but training and GPU runs need torch, and the
usual hints fail for QGIS users. ``pip install`` into a Debian/Ubuntu system Python is refused
(PEP 668, "externally-managed-environment"); QGIS on Windows and macOS has its own Python that
no system pip reaches; a torch wheel must never bring another numpy into the process that GDAL
was built against. So the installer

* finds QGIS's Python interpreter (inside QGIS ``sys.executable`` is QGIS itself: qgis-bin.exe
  on Windows, the QGIS.app binary on macOS, /usr/bin/qgis on Linux) and checks it is the same
  Python version;
* runs its pip with ``--target <profile>/python/fers-deps/<version>`` (PEP 668 does not apply to
  a target folder), a CPU build from the PyTorch CPU index unless ``nvidia-smi`` finds a CUDA GPU;
* pins numpy to the running version and removes anything numpy-like pip still put in the folder;
* installs into a staging folder first and swaps it in only when pip succeeded, so a failed or
  cancelled install keeps the previous one;
* imports torch in a subprocess with the private folder first on the path and reports what it
  found (version, where from, CUDA or not).

No QGIS import here: the Processing algorithm ``fers:install_pytorch`` drives it, and the tests
run it on a tiny local wheel.
"""

from __future__ import annotations

import json
import ntpath
import os
import posixpath
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

TORCH_REQUIREMENT = "torch==2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# PyPI's Linux torch wheels are CUDA builds; its Windows wheels are CPU-only, so CUDA on Windows
# comes from the PyTorch index of one CUDA release (the driver must support it; see nvidia-smi)
CUDA_INDEX_WINDOWS = "https://download.pytorch.org/whl/cu128"
NUMPY_PREFIX = "numpy"  # numpy/, numpy-X.dist-info/, numpy.libs/, numpy-X.data/ ...

LogFn = Callable[[str], None]


class InstallerError(Exception):
    """A problem the user can act on, in one line."""


@dataclass(frozen=True)
class Build:
    """Which torch build to install and why."""

    kind: str  # "cpu" or "cuda"
    index_url: Optional[str]  # None: pip's configured index (PyPI)
    reason: str


@dataclass
class Plan:
    """What pip would install: ``[(name, version, bytes or None)]`` and the total known download."""

    packages: List[tuple] = field(default_factory=list)

    @property
    def download_bytes(self) -> int:
        return sum(size for _, _, size in self.packages if size)

    @property
    def sizes_known(self) -> bool:
        return all(size for _, _, size in self.packages)

    def describe(self) -> str:
        names = ", ".join(f"{name} {version}" for name, version, _ in self.packages)
        size = human_size(self.download_bytes)
        size = (
            f"{size} to download" if self.sizes_known else f"at least {size} to download, some sizes unknown"
        )
        return f"{len(self.packages)} package{'s' if len(self.packages) != 1 else ''} ({size}): {names}"


def human_size(count: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count} bytes"


# -- where things are -------------------------------------------------------------------------
def python_candidates(
    executable: str, prefix: str, exec_prefix: str, version_info: Sequence[int], platform: str
) -> List[str]:
    """Where QGIS's Python interpreter may be, most likely first, for this platform's layouts.

    Windows (OSGeo4W and the standalone installer): ``<prefix>\\python.exe`` with
    ``prefix = ...\\apps\\Python3xx``; macOS (QGIS.app): ``<prefix>/bin/python3.x`` or
    ``Contents/MacOS/bin/python3``; Linux: ``<prefix>/bin/python3.x`` (``/usr/bin/python3.11``).
    """
    windows = platform.startswith("win")
    path = ntpath if windows else posixpath  # the layout of the platform asked about, wherever this runs
    major_minor = f"{version_info[0]}.{version_info[1]}"
    exe_dir = path.dirname(executable)
    names: List[str] = []
    if path.basename(executable).lower().startswith("python"):
        names.append(executable)  # plain Python (qgis_process wrappers, tests, the CLI)
    if windows:
        for folder in (prefix, exec_prefix, exe_dir):
            names += [path.join(folder, "python.exe"), path.join(folder, "python3.exe")]
    else:
        for folder in (prefix, exec_prefix):
            names += [path.join(folder, "bin", f"python{major_minor}"), path.join(folder, "bin", "python3")]
        names += [
            path.join(exe_dir, "bin", f"python{major_minor}"),
            path.join(exe_dir, "bin", "python3"),
            path.join(exe_dir, f"python{major_minor}"),
            path.join(exe_dir, "python3"),
        ]
    return list(dict.fromkeys(names))


def _run(cmd: Sequence[str], timeout: float = 60, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    kwargs = {}
    if sys.platform.startswith("win"):
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    return subprocess.run(
        list(cmd), capture_output=True, text=True, timeout=timeout, env=env or child_env(), **kwargs
    )


def child_env() -> Dict[str, str]:
    """The environment for QGIS's Python and its pip: no user site, no venv requirement."""
    env = dict(os.environ)
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_REQUIRE_VIRTUALENV"] = "0"
    env.pop("PIP_USER", None)
    return env


def find_python(
    executable: str = sys.executable,
    prefix: str = sys.prefix,
    exec_prefix: str = sys.exec_prefix,
    version_info: Sequence[int] = sys.version_info,
    platform: str = sys.platform,
) -> str:
    """The interpreter of the running Python version (what QGIS embeds); InstallerError if none."""
    wanted = f"{version_info[0]}.{version_info[1]}"
    tried = []
    for candidate in python_candidates(executable, prefix, exec_prefix, version_info, platform):
        if not os.path.isfile(candidate):
            continue
        try:
            proc = _run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        found = proc.stdout.strip()
        if proc.returncode == 0 and found == wanted:
            return candidate
        tried.append(f"{candidate} ({found or 'does not run'})")
    raise InstallerError(
        f"cannot find the Python {wanted} interpreter QGIS runs on (looked beside {executable} and in "
        f"{prefix}{'; found ' + ', '.join(tried) if tried else ''})"
    )


def pip_version(python: str) -> Optional[str]:
    """pip's version in ``python``, or None when that Python has no pip."""
    try:
        proc = _run([python, "-m", "pip", "--version"], timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    parts = proc.stdout.split()
    return parts[1] if len(parts) > 1 else proc.stdout.strip()


def _os_release(path: str = "/etc/os-release") -> Dict[str, str]:
    values = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.strip().partition("=")
                values[key] = value.strip('"')
    except OSError:
        pass
    return values


def missing_pip_message(
    python: str, platform: str = sys.platform, os_release: Optional[Dict[str, str]] = None
) -> str:
    """Exactly what to install when QGIS's Python has no pip, for this system."""
    head = f"QGIS's Python ({python}) has no pip, which installing PyTorch needs: "
    tail = "; then run Install PyTorch for FERS again"
    if platform.startswith("win"):
        if "osgeo4w" in python.lower():
            return (
                head + "run the OSGeo4W Network Installer, choose Advanced Install and add the package "
                "python3-pip" + tail
            )
        return head + "open the OSGeo4W Shell of your QGIS and run: python -m ensurepip" + tail
    if platform == "darwin":
        return head + f'run in Terminal: "{python}" -m ensurepip' + tail
    release = _os_release() if os_release is None else os_release
    family = " ".join((release.get("ID", ""), release.get("ID_LIKE", ""))).lower()
    if any(name in family for name in ("debian", "ubuntu")):
        return head + "run: sudo apt install python3-pip" + tail
    if any(name in family for name in ("fedora", "rhel", "centos")):
        return head + "run: sudo dnf install python3-pip" + tail
    if "arch" in family:
        return head + "run: sudo pacman -S python-pip" + tail
    if "suse" in family:
        return head + "run: sudo zypper install python3-pip" + tail
    return head + "install your distribution's python3-pip package" + tail


def find_gpus(nvidia_smi: Optional[str] = None) -> List[str]:
    """Names of the CUDA GPUs ``nvidia-smi`` lists (empty without a driver)."""
    exe = nvidia_smi or shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        proc = _run([exe, "--query-gpu=name", "--format=csv,noheader"], timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if proc.returncode != 0:
        return []
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def choose_build(requested: str, platform: str, gpus: Sequence[str]) -> Build:
    """CPU unless a CUDA GPU was found (or CUDA was asked for); macOS wheels have no CUDA."""
    if requested not in ("auto", "cpu", "cuda"):
        raise InstallerError(f"unknown build {requested!r}: choose auto, cpu or cuda")
    if platform == "darwin":
        if requested == "cuda":
            raise InstallerError("PyTorch has no CUDA build for macOS; choose auto or cpu")
        return Build("cpu", CPU_INDEX, "macOS: the CPU build (it also drives Apple GPUs through MPS)")
    if requested == "cpu" or (requested == "auto" and not gpus):
        why = "asked for" if requested == "cpu" else "nvidia-smi found no CUDA GPU"
        return Build("cpu", CPU_INDEX, f"the CPU build ({why})")
    why = f"nvidia-smi found {', '.join(gpus)}" if gpus else "asked for, although nvidia-smi found no GPU"
    if platform.startswith("win"):
        return Build("cuda", CUDA_INDEX_WINDOWS, f"a CUDA build ({why})")
    return Build("cuda", None, f"the CUDA build from PyPI ({why})")


# -- pip --------------------------------------------------------------------------------------
def numpy_constraints(numpy_version: str) -> str:
    """pip constraints that keep every resolution on the numpy QGIS already runs."""
    return f"numpy=={numpy_version}\n"


def pip_command(
    python: str,
    target: str,
    requirements: Sequence[str],
    build: Build,
    constraints: str,
    source: Optional[str] = None,
) -> List[str]:
    """The pip command line: a target folder (not the system site), wheels only, numpy pinned.

    ``source`` replaces the build's index: another index URL, or a local folder of wheels.
    """
    cmd = [
        python,
        "-m",
        "pip",
        "install",
        "--target",
        target,
        "--upgrade",
        "--only-binary",
        ":all:",
        "--constraint",
        constraints,
        "--no-warn-script-location",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
    ]
    return cmd + source_options(source or build.index_url or "") + list(requirements)


def numpy_like(folder: str) -> List[str]:
    """Entries of ``folder`` that are numpy or its metadata and libraries."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names if n.lower().startswith(NUMPY_PREFIX))


def remove_numpy_like(folder: str) -> List[str]:
    """Delete numpy copies pip put in ``folder`` (QGIS's own numpy must stay the only one)."""
    removed = numpy_like(folder)
    for name in removed:
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    return removed


def _download_size(url: str) -> Optional[int]:
    if url.startswith("file://"):
        try:
            return os.path.getsize(urllib.request.url2pathname(url[len("file://") :]))
        except OSError:
            return None
    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=20) as response:
            length = response.headers.get("Content-Length")
        return int(length) if length else None
    except Exception:  # offline, proxy, an index without HEAD: the size stays unknown
        return None


def source_options(source: str) -> List[str]:
    """``--index-url URL``, or for a local folder of wheels (offline installs) ``--no-index --find-links``."""
    if not source:
        return []
    if os.path.isdir(source):
        return ["--no-index", "--find-links", os.path.abspath(source)]
    return ["--index-url", source]


def plan(
    python: str,
    requirements: Sequence[str],
    build: Build,
    numpy_version: str,
    source: Optional[str] = None,
    timeout: float = 600,
) -> Plan:
    """What pip would install (``--dry-run --report``), with download sizes where the index says."""
    with tempfile.TemporaryDirectory(prefix="fers-pip-plan-") as tmp:
        report = os.path.join(tmp, "report.json")
        constraints = os.path.join(tmp, "constraints.txt")
        with open(constraints, "w", encoding="utf-8") as fh:
            fh.write(numpy_constraints(numpy_version))
        cmd = pip_command(python, os.path.join(tmp, "target"), requirements, build, constraints, source)
        at = cmd.index("install") + 1
        cmd[at:at] = ["--dry-run", "--quiet", "--report", report]
        proc = _run(cmd, timeout=timeout)
        if proc.returncode != 0:
            raise InstallerError("pip cannot resolve the install: " + _last_error(proc.stdout + proc.stderr))
        with open(report, encoding="utf-8") as fh:
            data = json.load(fh)
    packages = []
    for item in data.get("install", []):
        meta = item.get("metadata", {})
        url = item.get("download_info", {}).get("url", "")
        packages.append(
            (meta.get("name", "?"), meta.get("version", "?"), _download_size(url) if url else None)
        )
    return Plan(packages)


def _last_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines or ["no output"])[-1]


def run_pip(command: Sequence[str], log: LogFn, should_stop: Callable[[], bool] = lambda: False) -> None:
    """Run pip, passing each output line to ``log``; InstallerError on failure or cancel."""
    kwargs = {}
    if sys.platform.startswith("win"):
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    proc = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=child_env(),
        **kwargs,
    )
    tail: List[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                log(line)
                tail = (tail + [line])[-30:]
            if should_stop():
                proc.terminate()
                proc.wait(timeout=60)
                raise InstallerError("the installation was cancelled; nothing was changed")
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    if code != 0:
        raise InstallerError(f"pip failed (exit code {code}): {_last_error(chr(10).join(tail))}")


def install(
    python: str,
    target: str,
    requirements: Sequence[str],
    build: Build,
    numpy_version: str,
    log: LogFn,
    should_stop: Callable[[], bool] = lambda: False,
    source: Optional[str] = None,
) -> List[str]:
    """Install into a staging folder beside ``target`` and swap it in; returns numpy entries removed."""
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=os.path.basename(target) + ".partial-", dir=parent)
    try:
        with tempfile.TemporaryDirectory(prefix="fers-pip-") as tmp:
            constraints = os.path.join(tmp, "constraints.txt")
            with open(constraints, "w", encoding="utf-8") as fh:
                fh.write(numpy_constraints(numpy_version))
            command = pip_command(python, staging, requirements, build, constraints, source)
            run_pip(command, log, should_stop)
        removed = remove_numpy_like(staging)
        _swap_in(staging, target)
        return removed
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: str, target: str) -> None:
    old = None
    if os.path.exists(target):
        old = tempfile.mkdtemp(prefix=os.path.basename(target) + ".old-", dir=os.path.dirname(target))
        os.rmdir(old)
        try:
            os.rename(target, old)
        except OSError as exc:  # Windows: the old torch is loaded in this QGIS session
            raise InstallerError(
                f"cannot replace {target} ({exc.strerror}): PyTorch from it is in use; "
                "restart QGIS and run the installer again before using FERS"
            ) from None
    os.rename(staging, target)
    if old:
        shutil.rmtree(old, ignore_errors=True)


VERIFY = r"""
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
out = {}
try:
    mod = importlib.import_module(sys.argv[2])
    out["version"] = getattr(mod, "__version__", None)
    out["file"] = mod.__file__
    if sys.argv[2] == "torch":
        out["cuda"] = bool(mod.cuda.is_available())
        devices = range(mod.cuda.device_count()) if out["cuda"] else range(0)
        out["cuda_devices"] = [mod.cuda.get_device_name(i) for i in devices]
        out["cuda_build"] = mod.version.cuda
except Exception as exc:
    out["error"] = "%s: %s" % (type(exc).__name__, exc)
try:
    import numpy
    out["numpy"] = numpy.__version__
    out["numpy_file"] = numpy.__file__
except Exception as exc:
    out["numpy_error"] = str(exc)
print("FERS-VERIFY " + json.dumps(out))
"""


def verify(python: str, folder: str, module: str = "torch") -> Dict:
    """Import ``module`` in a fresh QGIS Python with ``folder`` first on the path; what it found.

    Also reports which numpy that Python imports, so a numpy from the folder would show.
    """
    proc = _run([python, "-c", VERIFY, folder, module], timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FERS-VERIFY ")]
    if not lines:
        raise InstallerError(f"{module} could not be checked: {_last_error(proc.stdout + proc.stderr)}")
    found = json.loads(lines[-1][len("FERS-VERIFY ") :])
    if "error" in found:
        raise InstallerError(f"{module} was installed into {folder} but does not import: {found['error']}")
    return found


def inside(path: Optional[str], folder: str) -> bool:
    if not path:
        return False
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([path, folder]) == folder


def describe_found(found: Dict, folder: str) -> str:
    """One line for the log: version, where from, and the GPU situation."""
    where = "from the private folder" if inside(found.get("file"), folder) else f"from {found.get('file')}"
    if found.get("cuda"):
        gpu = "CUDA available: " + ", ".join(found.get("cuda_devices") or ["a GPU"])
    elif found.get("cuda_build"):
        gpu = f"a CUDA {found['cuda_build']} build, but torch sees no usable GPU (check the NVIDIA driver)"
    else:
        gpu = "CPU build (no CUDA)"
    return f"PyTorch {found.get('version')} imports {where}; {gpu}"
