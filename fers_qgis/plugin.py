"""The QGIS plugin object: registers the Processing provider (GUI or headless)."""
from qgis.core import QgsApplication


class FersPlugin:
    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS API name); qgis_process calls only this
        if self.provider is not None:
            return
        from .provider import FersProvider

        self.provider = FersProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
