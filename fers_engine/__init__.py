"""FERS engine: hyperspectral anomaly detection without QGIS."""
__version__ = "0.1.0"
