"""One module per Processing algorithm; ``ALGORITHM_CLASSES`` lists them for the provider."""

from .detect import DetectAlgorithm
from .evaluate import EvaluateAlgorithm
from .install_pytorch import InstallPytorchAlgorithm
from .threshold import ThresholdAlgorithm
from .train import TrainAlgorithm

ALGORITHM_CLASSES = (
    DetectAlgorithm,
    TrainAlgorithm,
    EvaluateAlgorithm,
    ThresholdAlgorithm,
    InstallPytorchAlgorithm,
)
