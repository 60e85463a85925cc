"""The FERS Processing provider: the four algorithms plus the shipped graphical model(s)."""

from __future__ import annotations

import glob
import os

from qgis.core import Qgis, QgsMessageLog, QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ALGORITHM_CLASSES
from .algorithms.base import ICON_PATH, FersAlgorithm

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
MODELS_DIR = os.path.join(PLUGIN_DIR, "models")


def _plain_help(help_content: dict) -> str:
    """The model's description as plain text (QGIS formats model help as HTML by default)."""
    parts = [help_content.get("ALG_DESC", "").strip()]
    return "\n".join(p for p in parts if p)


class FersModelAlgorithm(QgsProcessingModelAlgorithm):
    """A shipped .model3 with plain-text help (so ``qgis_process help`` stays readable)."""

    def displayName(self):  # noqa: N802 (QGIS API)
        return self.helpContent().get("ALG_DISPLAY_NAME") or self.name()

    def group(self):
        return FersAlgorithm.GROUP

    def groupId(self):  # noqa: N802 (a .model3 stores only the group title)
        return FersAlgorithm.GROUP_ID

    def shortHelpString(self):  # noqa: N802
        return _plain_help(self.helpContent())

    def helpString(self):  # noqa: N802
        return None

    def svgIconPath(self):  # noqa: N802
        return ICON_PATH

    def icon(self):
        return QIcon(ICON_PATH)

    def createInstance(self):  # noqa: N802
        clone = FersModelAlgorithm()
        clone.loadVariant(self.toVariant())
        clone.setSourceFilePath(self.sourceFilePath())
        add_output_help(clone)
        return clone


def add_output_help(model) -> None:
    """Give the model's output parameters (QGIS names them ``childId:OUTPUT``) their help text.

    QGIS builds these destination parameters from the model outputs and does not store a help
    for them; the help comes from the model's help content under the output's name.
    """
    content = model.helpContent()
    for param in model.parameterDefinitions():
        if not param.help():
            key = param.name().split(":")[-1]
            param.setHelp(content.get(key) or param.description())


def load_models(folder: str = MODELS_DIR):
    """Every ``*.model3`` of the plugin's models folder as a model algorithm."""
    models = []
    for path in sorted(glob.glob(os.path.join(folder, "*.model3"))):
        model = FersModelAlgorithm()
        if model.fromFile(path):
            model.setSourceFilePath(path)
            add_output_help(model)
            models.append(model)
        else:
            QgsMessageLog.logMessage(f"could not load the graphical model {path}", "FERS", Qgis.Warning)
    return models


class FersProvider(QgsProcessingProvider):
    def id(self):
        return "fers"

    def name(self):
        return "FERS"

    def longName(self):  # noqa: N802
        return "FERS hyperspectral anomaly detection"

    def icon(self):
        return QIcon(ICON_PATH)

    def svgIconPath(self):  # noqa: N802
        return ICON_PATH

    def loadAlgorithms(self):  # noqa: N802
        # fresh instances every time: Processing owns them and deletes them on refresh
        for cls in ALGORITHM_CLASSES:
            self.addAlgorithm(cls())
        for model in load_models():
            self.addAlgorithm(model)
