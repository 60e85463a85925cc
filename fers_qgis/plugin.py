"""The QGIS plugin object: registers the Processing provider (GUI or headless) and the menu entry."""

from qgis.core import QgsApplication

MENU = "&FERS"
INSTALL_PYTORCH = "fers:install_pytorch"


class FersPlugin:
    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None
        self.actions = []

    def initProcessing(self):  # noqa: N802 (QGIS API name); qgis_process calls only this
        if self.provider is not None:
            return
        from .provider import FersProvider

        self.provider = FersProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is None:
            return
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        from .algorithms.base import ICON_PATH

        action = QAction(QIcon(ICON_PATH), "Install PyTorch for FERS…", self.iface.mainWindow())
        action.setToolTip("PyTorch for training and GPU runs, installed into a folder of the QGIS profile")
        action.triggered.connect(self.open_installer)
        self.iface.addPluginToMenu(MENU, action)
        self.actions.append(action)

    def open_installer(self):
        import processing

        processing.execAlgorithmDialog(INSTALL_PYTORCH, {})

    def unload(self):
        for action in self.actions:
            if self.iface is not None:
                self.iface.removePluginMenu(MENU, action)
        self.actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
