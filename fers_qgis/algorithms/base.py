"""Thin base class shared by the FERS algorithms.

It keeps the QGIS side boring on purpose: plain-text help (no HTML, so ``qgis_process help``
stays readable), help on every parameter, the feedback bridge, and one place that turns engine
errors into ``QgsProcessingException`` with the engine's one-line message (never a traceback).
"""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProperty,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..bridge import reporter_for
from ..parameters import given

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON_PATH = os.path.join(PLUGIN_DIR, "icon.svg")
HELP_URL = "https://github.com/fers-project/fers-qgis#readme"

TORCH_INSTALL_HINT = (
    "install it with Install PyTorch for FERS (Plugins > FERS menu, or fers:install_pytorch in the "
    "Processing Toolbox, also headless: qgis_process run fers:install_pytorch), which puts it in a folder "
    "of your QGIS profile without touching QGIS's own packages"
)


def missing_torch_message(what: str, error: BaseException | None = None) -> str:
    cause = f" ({error})" if error else ""
    return f"{what} needs PyTorch (torch), which QGIS's Python cannot import{cause}; {TORCH_INSTALL_HINT}."


def missing_package_message(package: str, error: BaseException) -> str:
    """A package other than torch is missing from QGIS's Python: name it and where such packages come from."""
    return (
        f"QGIS's Python lacks {package}, which FERS needs here ({error}); install it for QGIS's Python "
        f"(Windows: the OSGeo4W installer; Debian/Ubuntu: sudo apt install python3-{package})"
    )


def torch_importable() -> bool:
    try:
        import torch  # noqa: F401
    except Exception:  # ImportError, or a broken install (DLL/ABI errors)
        return False
    return True


def require_torch(what: str) -> None:
    """Raise a QgsProcessingException naming exactly what to install when torch is missing."""
    try:
        import torch  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install (DLL/ABI errors)
        raise QgsProcessingException(missing_torch_message(what, exc)) from None


class FersAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set NAME, DISPLAY, GROUP, GROUP_ID, HELP and implement define() and run()."""

    NAME = ""
    DISPLAY = ""
    GROUP = "Hyperspectral anomaly detection"
    GROUP_ID = "anomaly"
    HELP = ""

    # -- identity -----------------------------------------------------------------------------
    def tr(self, text):
        return QCoreApplication.translate("FersAlgorithm", text)

    def createInstance(self):  # noqa: N802 (QGIS API)
        return type(self)()

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.tr(self.DISPLAY)

    def group(self):
        return self.tr(self.GROUP)

    def groupId(self):  # noqa: N802
        return self.GROUP_ID

    def shortHelpString(self):  # noqa: N802
        return self.tr(self.HELP.strip())

    def helpUrl(self):  # noqa: N802
        return HELP_URL

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802
        return ICON_PATH

    # -- parameters ---------------------------------------------------------------------------
    def add(self, param, help_text: str, advanced: bool = False):
        """addParameter with mandatory plain-text help (shown in the dialog and in the docs)."""
        param.setHelp(self.tr(help_text))
        if advanced:
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(param)
        return param

    def enum(self, name, description, options, default, help_text, optional=False, advanced=False):
        """An enum whose values are the option strings (``DETECTOR=lrx`` in qgis_process)."""
        param = QgsProcessingParameterEnum(
            name,
            self.tr(description),
            options=list(options),
            allowMultiple=False,
            defaultValue=default,
            optional=optional,
            usesStaticStrings=True,
        )
        return self.add(param, help_text + " Choices: " + ", ".join(options) + ".", advanced)

    def enum_value(self, parameters, name, context) -> str:
        value = self.parameterAsEnumString(parameters, name, context)
        return value or ""

    def initAlgorithm(self, config=None):  # noqa: N802
        self.define(config)

    def define(self, config=None):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- running ------------------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        try:
            from fers_engine.errors import BandIndexError, Cancelled, DependencyError, FersError
        except ImportError as exc:
            raise QgsProcessingException(
                f"the FERS engine (fers_engine) cannot be imported ({exc}); the plugin zip carries it in "
                "fers_qgis/ext: reinstall the plugin from its zip (Plugins > Manage and Install Plugins > "
                "Install from ZIP)"
            ) from None
        to_feedback = reporter_for(feedback)
        self._new_outputs = []
        self._warnings = []

        def warning(message):
            self._warnings.append(str(message))
            to_feedback.warning(message)

        reporter = to_feedback.replace(on_warning=warning)
        try:
            return self.process(parameters, context, feedback, reporter)
        except Cancelled:
            self._remove_new_outputs()
            raise QgsProcessingException(
                f"{self.displayName()} was cancelled by the user; no output was written."
            ) from None
        except BandIndexError as exc:  # QGIS numbers bands from 1, and so do our parameters
            raise QgsProcessingException(str(exc.one_based())) from None
        except DependencyError as exc:  # the engine's pip hint does not fit QGIS's Python; ours does
            if torch_importable():
                raise QgsProcessingException(str(exc)) from None
            raise QgsProcessingException(missing_torch_message(self.displayName(), None)) from None
        except FersError as exc:
            raise QgsProcessingException(str(exc)) from None
        except ImportError as exc:
            missing = (getattr(exc, "name", None) or "").split(".")[0]
            if missing in ("torch", "safetensors"):
                raise QgsProcessingException(missing_torch_message(self.displayName(), exc)) from None
            raise QgsProcessingException(missing_package_message(missing or "a package", exc)) from None
        except MemoryError:
            raise QgsProcessingException(
                "out of memory: set a smaller BLOCK_SIZE (rows per block) or use fewer bands"
            ) from None

    def warn_once(self, feedback, needle: str, message: str) -> None:
        """Push ``message`` as a warning unless the engine already warned about ``needle``."""
        if not any(needle in w for w in getattr(self, "_warnings", [])):
            feedback.pushWarning("Warning: " + message)

    def optional_output_layer(self, parameters, name, context):
        """An optional raster destination's path, or None when it is not set.

        ``parameterAsOutputLayer`` registers its result for loading even when it is empty, and the
        batch dialog passes unset destinations as an output definition with an empty path; Processing
        then reports a layer with no name as "not correctly generated". So look before asking.
        """
        value = parameters.get(name)
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            sink = value.sink
            if sink.propertyType() == QgsProperty.StaticProperty:
                value = sink.staticValue()
        if not given(value):
            return None
        return self.parameterAsOutputLayer(parameters, name, context) or None

    def track_output(self, path: str) -> str:
        """Remember an output this run creates, so a cancel late in the run removes it again."""
        if path and not os.path.exists(path):
            self._new_outputs.append(path)
        return path

    def _remove_new_outputs(self) -> None:
        for path in getattr(self, "_new_outputs", []):
            for candidate in (path, path + ".aux.xml"):
                try:
                    os.remove(candidate)
                except OSError:
                    pass

    def process(self, parameters, context, feedback, reporter):  # pragma: no cover - abstract
        raise NotImplementedError
