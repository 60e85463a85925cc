"""FERS engine: hyperspectral anomaly detection without QGIS.

The public API, importable from the package itself::

    import fers_engine as fe
    result = fe.detect("scene.tif", "scores.tif", fe.DetectOptions(detector=fe.Detector.LRX))
    fe.threshold_raster("scores.tif", "mask.tif", method=fe.ThresholdMethod.OTSU)

Names are resolved on first use (PEP 562), so ``import fers_engine`` loads no numpy, GDAL,
numba or torch: the QGIS plugin imports the package while it registers its algorithms, and the
CLI's ``--help`` stays instant. Only the error classes and the choices (both pure Python) load
with the package. Everything not listed in ``__all__`` is internal and may change.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

from .choices import (
    BandMode,
    CheckpointSelection,
    Detector,
    Device,
    EnhancerMode,
    Fusion,
    LocalCovariance,
    ThresholdMethod,
    TrainingRecipe,
    TruthPolicy,
)
from .errors import (
    BandIndexError,
    Cancelled,
    ClusterError,
    DependencyError,
    FersError,
    InputError,
    ModelError,
    OutputError,
)

__version__ = "0.1.0"

#: Public name -> the module (relative to this package) that defines it, imported on first use.
_LAZY: Dict[str, str] = {
    "detect": ".pipeline",
    "DetectOptions": ".pipeline",
    "DetectResult": ".pipeline",
    "threshold_raster": ".pipeline",
    "evaluate_rasters": ".pipeline",
    "open_scene": ".io.open",
    "read_ground_truth": ".io.open",
    "ReaderOptions": ".io.open",
    "train": ".nets.trainer",
    "TrainResult": ".nets.trainer",
    "load_enhancer": ".nets.enhancer",
    "Enhancer": ".nets.enhancer",
    "Reporter": ".progress",
    "SILENT": ".progress",
}

__all__ = [
    "BandIndexError",
    "BandMode",
    "Cancelled",
    "CheckpointSelection",
    "ClusterError",
    "DependencyError",
    "DetectOptions",
    "DetectResult",
    "Detector",
    "Device",
    "Enhancer",
    "EnhancerMode",
    "FersError",
    "Fusion",
    "InputError",
    "LocalCovariance",
    "ModelError",
    "OutputError",
    "ReaderOptions",
    "Reporter",
    "SILENT",
    "ThresholdMethod",
    "TrainResult",
    "TrainingRecipe",
    "TruthPolicy",
    "__version__",
    "detect",
    "evaluate_rasters",
    "load_enhancer",
    "open_scene",
    "read_ground_truth",
    "threshold_raster",
    "train",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from .io.open import ReaderOptions, open_scene, read_ground_truth
    from .nets.enhancer import Enhancer, load_enhancer
    from .nets.trainer import TrainResult, train
    from .pipeline import DetectOptions, DetectResult, detect, evaluate_rasters, threshold_raster
    from .progress import SILENT, Reporter


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
