"""Install PyTorch for FERS: the command per platform, the numpy guard, and real --target installs.

The real installs use tiny wheels built here (a probe package, a fake numpy of the running
version, a fake torch) from a local folder, so nothing is downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import pytest
from qgis_helpers import REPO
from qgis_runner import qgis_env

from fers_qgis import deps, torch_installer as ti

RUNNING_NUMPY = __import__("numpy").__version__
DEBIAN_PYTHON = "/usr/bin/python3"  # QGIS's Python on Debian: PEP 668 "externally managed", pip 23


def make_wheel(folder, name, version, files, requires=()):
    """A minimal pure-Python wheel (METADATA, WHEEL, RECORD with hashes) written into ``folder``."""
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    entries = dict(files)
    entries[f"{dist}/METADATA"] = meta
    entries[f"{dist}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: fers-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = []
    for path, text in entries.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    entries[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as zf:
        for name_in_zip, text in entries.items():
            zf.writestr(name_in_zip, text)
    return path


@pytest.fixture
def wheels(tmp_path):
    """A local wheel folder: probe 1.0 (needs numpy), probe 2.0 (needs numpy>=99), fake numpys (the running
    version and a newer 99.0 that pip would pick unless pinned) and a fake torch."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "fers_probe", "1.0", {"fers_probe/__init__.py": "__version__ = '1.0'\n"}, ["numpy"])
    make_wheel(
        folder, "fers_probe", "2.0", {"fers_probe/__init__.py": "__version__ = '2.0'\n"}, ["numpy>=99"]
    )
    make_wheel(
        folder, "numpy", RUNNING_NUMPY, {"numpy/__init__.py": "raise ImportError('the fake numpy loaded')\n"}
    )
    make_wheel(folder, "numpy", "99.0", {"numpy/__init__.py": "raise ImportError('a newer numpy loaded')\n"})
    make_wheel(
        folder,
        "torch",
        "2.13.0",
        {
            "torch/__init__.py": "__version__ = '2.13.0'\nfrom . import cuda, version\n",
            "torch/cuda/__init__.py": (
                "def is_available():\n    return False\n\ndef device_count():\n    return 0\n"
            ),
            "torch/version.py": "cuda = None\n",
        },
    )
    return str(folder)


def pythons():
    found = [sys.executable]
    if os.path.isfile(DEBIAN_PYTHON) and ti.pip_version(DEBIAN_PYTHON):
        found.append(DEBIAN_PYTHON)
    return found


LOCAL = ti.Build("cpu", None, "test")


# -- where QGIS's Python is --------------------------------------------------------------------
@pytest.mark.parametrize(
    "platform, executable, prefix, expected",
    [
        (
            "win32",
            r"C:\OSGeo4W\bin\qgis-bin.exe",
            r"C:\OSGeo4W\apps\Python312",
            r"C:\OSGeo4W\apps\Python312\python.exe",
        ),
        (
            "win32",
            r"C:\Program Files\QGIS 3.34.4\bin\qgis-bin.exe",
            r"C:\Program Files\QGIS 3.34.4\apps\Python312",
            r"C:\Program Files\QGIS 3.34.4\apps\Python312\python.exe",
        ),
        (
            "darwin",
            "/Applications/QGIS-LTR.app/Contents/MacOS/QGIS",
            "/Applications/QGIS-LTR.app/Contents/Frameworks/Python.framework/Versions/3.12",
            "/Applications/QGIS-LTR.app/Contents/Frameworks/Python.framework/Versions/3.12/bin/python3.12",
        ),
        ("linux", "/usr/bin/qgis", "/usr", "/usr/bin/python3.12"),
    ],
)
def test_python_candidates_per_platform(platform, executable, prefix, expected):
    candidates = ti.python_candidates(executable, prefix, prefix, (3, 12), platform)
    assert candidates[0] == expected
    assert executable not in candidates  # QGIS's own binary is never run as Python
    if platform == "darwin":
        assert "/Applications/QGIS-LTR.app/Contents/MacOS/bin/python3" in candidates


def test_find_python_checks_the_version(tmp_path):
    """Inside QGIS sys.executable is QGIS: the interpreter beside it is found, a wrong version is skipped."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "qgis").write_text("")
    wrong = bin_dir / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    wrong.write_text("#!/bin/sh\necho 3.2\n")
    wrong.chmod(0o755)
    right = bin_dir / "python3"
    right.symlink_to(sys.executable)
    found = ti.find_python(str(bin_dir / "qgis"), str(tmp_path), str(tmp_path), sys.version_info, "linux")
    assert found == str(right)
    right.unlink()
    with pytest.raises(ti.InstallerError, match="3.2"):
        ti.find_python(str(bin_dir / "qgis"), str(tmp_path), str(tmp_path), sys.version_info, "linux")


# -- which build, which command ---------------------------------------------------------------
def test_build_choice():
    assert ti.choose_build("auto", "linux", []).index_url == ti.CPU_INDEX
    cuda = ti.choose_build("auto", "linux", ["NVIDIA H200"])
    assert cuda.kind == "cuda" and cuda.index_url is None and "NVIDIA H200" in cuda.reason
    assert ti.choose_build("auto", "win32", ["RTX 4090"]).index_url == ti.CUDA_INDEX_WINDOWS
    assert ti.choose_build("cpu", "win32", ["RTX 4090"]).kind == "cpu"
    assert ti.choose_build("auto", "darwin", []).kind == "cpu"
    with pytest.raises(ti.InstallerError, match="macOS"):
        ti.choose_build("cuda", "darwin", [])


def test_pip_command_targets_a_folder_and_pins_numpy(tmp_path):
    build = ti.choose_build("auto", "linux", [])
    cmd = ti.pip_command("/usr/bin/python3.11", "/p/fers-deps/3.11", [ti.TORCH_REQUIREMENT], build, "/c.txt")
    assert cmd[:4] == ["/usr/bin/python3.11", "-m", "pip", "install"]
    assert cmd[cmd.index("--target") + 1] == "/p/fers-deps/3.11"
    assert cmd[cmd.index("--constraint") + 1] == "/c.txt"
    assert cmd[cmd.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert cmd[cmd.index("--only-binary") + 1] == ":all:"
    assert cmd[-1] == "torch==2.13.0"
    for forbidden in ("--user", "--break-system-packages", "--no-deps"):
        assert forbidden not in cmd
    local = ti.pip_command("py", "t", ["x"], build, "c", str(tmp_path))
    assert local[local.index("--find-links") + 1] == str(tmp_path) and "--no-index" in local
    assert "--index-url" not in local
    assert ti.numpy_constraints(RUNNING_NUMPY) == f"numpy=={RUNNING_NUMPY}\n"


@pytest.mark.parametrize(
    "platform, release, expected",
    [
        ("linux", {"ID": "debian"}, "sudo apt install python3-pip"),
        ("linux", {"ID": "ubuntu", "ID_LIKE": "debian"}, "sudo apt install python3-pip"),
        ("linux", {"ID": "fedora"}, "sudo dnf install python3-pip"),
        ("win32", {}, "python3-pip"),
        ("darwin", {}, "-m ensurepip"),
    ],
)
def test_missing_pip_says_what_to_install(platform, release, expected):
    python = r"C:\OSGeo4W\apps\Python312\python.exe" if platform == "win32" else "/usr/bin/python3"
    message = ti.missing_pip_message(python, platform, release)
    assert expected in message and "Install PyTorch for FERS" in message


# -- real installs into a private folder ------------------------------------------------------
@pytest.mark.parametrize("python", pythons())
def test_real_install_imports_from_the_private_folder(python, wheels, tmp_path):
    target = str(tmp_path / "fers-deps" / "3.x")
    lines = []
    numpy_version = subprocess.run(
        [python, "-c", "import numpy; print(numpy.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    make_wheel(wheels, "numpy", numpy_version, {"numpy/__init__.py": "raise ImportError('fake numpy')\n"})
    plan = ti.plan(python, ["fers_probe==1.0"], LOCAL, numpy_version, wheels)
    assert [(name, version) for name, version, _ in plan.packages] == [
        ("fers_probe", "1.0"),
        ("numpy", numpy_version),
    ]
    assert plan.sizes_known and "2 packages" in plan.describe()
    removed = ti.install(
        python, target, ["fers_probe==1.0"], LOCAL, numpy_version, lines.append, source=wheels
    )
    assert any("Successfully installed" in line for line in lines), lines
    # the numpy guard: pip brought the numpy the probe asks for; it was removed, QGIS's numpy is used
    assert removed and all(name.startswith("numpy") for name in removed)
    assert ti.numpy_like(target) == []
    found = ti.verify(python, target, "fers_probe")
    assert found["version"] == "1.0" and ti.inside(found["file"], target)
    assert found["numpy"] == numpy_version and not ti.inside(found["numpy_file"], target)
    assert sorted(os.listdir(tmp_path / "fers-deps")) == ["3.x"]  # no staging folder left


def test_numpy_is_never_upgraded_and_a_failed_install_keeps_the_previous(wheels, tmp_path):
    target = str(tmp_path / "profile" / "deps")
    ti.install(
        sys.executable, target, ["fers_probe==1.0"], LOCAL, RUNNING_NUMPY, lambda line: None, source=wheels
    )
    with pytest.raises(ti.InstallerError, match="pip"):  # probe 2.0 needs numpy>=99: refused, not upgraded
        ti.install(
            sys.executable,
            target,
            ["fers_probe==2.0"],
            LOCAL,
            RUNNING_NUMPY,
            lambda line: None,
            source=wheels,
        )
    assert ti.verify(sys.executable, target, "fers_probe")["version"] == "1.0"
    assert sorted(os.listdir(tmp_path / "profile")) == ["deps"]  # no staging folder left


def test_cancel_stops_pip_and_keeps_the_previous(wheels, tmp_path):
    target = str(tmp_path / "profile" / "deps")
    with pytest.raises(ti.InstallerError, match="cancelled"):
        ti.install(
            sys.executable,
            target,
            ["fers_probe==1.0"],
            LOCAL,
            RUNNING_NUMPY,
            lambda line: None,
            should_stop=lambda: True,
            source=wheels,
        )
    assert os.listdir(tmp_path / "profile") == []


# -- the plugin side: folder, activation, the algorithm ---------------------------------------
def test_private_folder_is_in_the_profile_per_python(monkeypatch, tmp_path):
    monkeypatch.delenv(deps.ENV_OVERRIDE, raising=False)
    folder = deps.deps_dir(str(tmp_path), (3, 12))
    assert folder == os.path.join(str(tmp_path), "python", "fers-deps", "3.12")
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert not deps.activate(folder)  # absent: nothing added
    os.makedirs(folder)
    assert deps.activate(folder) and sys.path[0] == folder
    monkeypatch.setenv(deps.ENV_OVERRIDE, str(tmp_path / "shared"))
    assert deps.deps_dir() == str(tmp_path / "shared")


ALGORITHM_RUN = textwrap.dedent(r"""
    import json, sys
    sys.path.insert(0, {repo!r}); sys.path.append("/usr/share/qgis/python/plugins")
    from qgis.core import QgsApplication, QgsProcessingFeedback
    app = QgsApplication([], False); app.initQgis()
    from processing.core.Processing import Processing
    Processing.initialize()
    import fers_qgis
    plugin = fers_qgis.classFactory(None); plugin.initProcessing()
    import processing
    feedback = QgsProcessingFeedback()
    res = processing.run("fers:install_pytorch", {params}, feedback=feedback)
    print("RESULT " + json.dumps({{"res": res, "log": feedback.textLog(), "path0": sys.path[0]}}))
""")


def run_algorithm(params, env):
    proc = subprocess.run(
        [sys.executable, "-c", ALGORITHM_RUN.format(repo=str(REPO), params=params)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_install_pytorch_algorithm_end_to_end(wheels, tmp_path):
    """fers:install_pytorch with a local wheel folder as the source (a fake torch 2.13.0)."""
    env = qgis_env()
    env[deps.ENV_OVERRIDE] = str(tmp_path / "fers-deps")
    planned = run_algorithm({"SOURCE": wheels, "REINSTALL": True, "ONLY_PLAN": True}, env)
    assert "Will install 1 package" in planned["log"] and "torch 2.13.0" in planned["log"]
    assert not (tmp_path / "fers-deps").exists()
    out = run_algorithm({"SOURCE": wheels, "REINSTALL": True}, env)
    assert out["res"]["TORCH_VERSION"] == "2.13.0" and out["res"]["CUDA"] == ""
    assert out["res"]["FOLDER"] == str(tmp_path / "fers-deps")
    assert "PyTorch 2.13.0 imports from the private folder; CPU build (no CUDA)" in out["log"]
    assert f"numpy {RUNNING_NUMPY} stays as it is" in out["log"]
    assert out["path0"] == str(tmp_path / "fers-deps")  # usable in this session without a restart
