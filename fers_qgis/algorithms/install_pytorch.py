"""fers:install_pytorch - PyTorch for training and GPU runs, in the plugin's private folder."""

from __future__ import annotations

import importlib.util
import sys

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterString,
)

from .. import deps, torch_installer
from .base import FersAlgorithm


class InstallPytorchAlgorithm(FersAlgorithm):
    BUILD = "BUILD"
    ONLY_PLAN = "ONLY_PLAN"
    REINSTALL = "REINSTALL"
    SOURCE = "SOURCE"
    FOLDER = "FOLDER"
    TORCH_VERSION = "TORCH_VERSION"
    CUDA = "CUDA"

    NAME = "install_pytorch"
    DISPLAY = "Install PyTorch for FERS"
    GROUP = "Set-up"
    GROUP_ID = "setup"
    HELP = f"""
Installs PyTorch ({torch_installer.TORCH_REQUIREMENT}), which Train enhancer and runs on a CUDA GPU need. Detection on the CPU does not need it.
It goes into a private folder of your QGIS profile (python/fers-deps/<Python version>), outside the plugin folder so plugin updates keep it, and FERS puts that folder on its path when QGIS starts. QGIS's own Python packages are left alone: numpy stays the version QGIS runs, and pip never writes to the system Python (so the Debian and Ubuntu "externally-managed-environment" refusal does not apply).
Build: auto installs the CPU build unless nvidia-smi finds an NVIDIA GPU, then the CUDA build; cpu and cuda force one.
First the log lists the packages pip will install and their download size, then pip's progress; tick Only show what would be installed to stop there. Afterwards PyTorch is imported in a separate Python to report its version and whether it sees a CUDA GPU. A failed or cancelled install keeps the previous one.
Needs pip in QGIS's Python and access to the package index (or a folder of downloaded wheels as the package source); if pip is missing the log says what to install.
"""

    def define(self, config=None):
        self.enum(
            self.BUILD,
            "Build",
            ("auto", "cpu", "cuda"),
            "auto",
            "Which PyTorch build: auto = CUDA when nvidia-smi finds an NVIDIA GPU, else CPU; cpu or "
            "cuda force one (macOS has only the CPU build).",
        )
        self.add(
            QgsProcessingParameterBoolean(
                self.ONLY_PLAN, self.tr("Only show what would be installed"), defaultValue=False
            ),
            "List the packages and the download size, and install nothing.",
        )
        self.add(
            QgsProcessingParameterBoolean(
                self.REINSTALL, self.tr("Install even if PyTorch already imports"), defaultValue=False
            ),
            "Install the private copy even when QGIS's Python can already import PyTorch from "
            "elsewhere (that copy then comes second).",
            advanced=True,
        )
        self.add(
            QgsProcessingParameterString(
                self.SOURCE, self.tr("Package source (empty = PyTorch's index)"), optional=True
            ),
            "Another package index URL (a company mirror), or a local folder of downloaded wheels for "
            "an offline install. Empty uses PyTorch's index for the chosen build.",
            advanced=True,
        )
        self.addOutput(QgsProcessingOutputString(self.FOLDER, self.tr("Private package folder")))
        self.addOutput(QgsProcessingOutputString(self.TORCH_VERSION, self.tr("PyTorch version found")))
        self.addOutput(QgsProcessingOutputString(self.CUDA, self.tr("CUDA GPUs PyTorch sees (empty = none)")))

    def process(self, parameters, context, feedback, reporter):
        import numpy

        folder = deps.deps_dir()
        outputs = {self.FOLDER: folder, self.TORCH_VERSION: "", self.CUDA: ""}
        try:
            return self._install(parameters, context, feedback, folder, numpy.__version__, outputs)
        except torch_installer.InstallerError as exc:
            raise QgsProcessingException(str(exc)) from None

    def _install(self, parameters, context, feedback, folder, numpy_version, outputs):
        try:
            spec = importlib.util.find_spec("torch")
        except (ImportError, ValueError):  # a broken or blocked torch counts as missing
            spec = None
        elsewhere = spec is not None and not torch_installer.inside(spec.origin, folder)
        if elsewhere and not self.parameterAsBool(parameters, self.REINSTALL, context):
            feedback.pushInfo(
                f"PyTorch already imports in QGIS's Python from {spec.origin}; nothing to install "
                "(tick 'Install even if PyTorch already imports' to add the private copy)"
            )
            return outputs
        python = torch_installer.find_python()
        pip = torch_installer.pip_version(python)
        if pip is None:
            raise QgsProcessingException(torch_installer.missing_pip_message(python))
        build = torch_installer.choose_build(
            self.enum_value(parameters, self.BUILD, context) or "auto",
            sys.platform,
            torch_installer.find_gpus(),
        )
        source = (self.parameterAsString(parameters, self.SOURCE, context) or "").strip() or None
        requirement = [torch_installer.TORCH_REQUIREMENT]
        feedback.pushInfo(f"QGIS's Python: {python} (pip {pip}); numpy {numpy_version} stays as it is")
        feedback.pushInfo(
            f"Build: {build.reason}; from {source or build.index_url or 'the default index (PyPI)'}"
        )
        feedback.pushInfo(f"Into: {folder}")
        feedback.setProgress(5)
        plan = torch_installer.plan(python, requirement, build, numpy_version, source)
        feedback.pushInfo("Will install " + plan.describe())
        feedback.setProgress(10)
        if self.parameterAsBool(parameters, self.ONLY_PLAN, context):
            return outputs

        lines = [0]

        def log(line):
            feedback.pushInfo(line)
            lines[0] += 1
            feedback.setProgress(min(85.0, 10.0 + lines[0]))

        removed = torch_installer.install(
            python, folder, requirement, build, numpy_version, log, feedback.isCanceled, source
        )
        if removed:
            feedback.pushWarning(
                "Warning: pip also put numpy into the folder; removed it so QGIS keeps numpy "
                f"{numpy_version}: {', '.join(removed)}"
            )
        feedback.setProgress(90)
        found = torch_installer.verify(python, folder)
        feedback.pushInfo(torch_installer.describe_found(found, folder))
        if torch_installer.inside(found.get("numpy_file"), folder):  # the guard above makes this impossible
            raise QgsProcessingException(f"numpy would load from {folder}; remove it from there")
        deps.activate(folder)
        feedback.pushInfo(
            "FERS uses this PyTorch from now on (restart QGIS if Train enhancer still says "
            "PyTorch is missing)."
        )
        feedback.setProgress(100)
        outputs[self.TORCH_VERSION] = found.get("version") or ""
        outputs[self.CUDA] = ", ".join(found.get("cuda_devices") or [])
        return outputs
