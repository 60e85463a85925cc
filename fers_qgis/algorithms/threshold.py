"""fers:threshold - binary anomaly mask from a score raster."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..scene_input import raster_path, scene_name
from ..styling import LAYER_TITLES, attach_outputs
from .base import FersAlgorithm
from .detect import THRESHOLD_HELP, THRESHOLD_METHODS, threshold_value_or_default


class ThresholdAlgorithm(FersAlgorithm):
    INPUT = "INPUT"
    METHOD = "METHOD"
    VALUE = "VALUE"
    OUTPUT = "OUTPUT"
    THRESHOLD = "THRESHOLD"

    NAME = "threshold"
    DISPLAY = "Threshold anomaly scores"
    HELP = """
Turns an anomaly score raster (for example the output of Detect anomalies) into a binary mask: uint8 with 1 = anomaly, 0 = background and 255 = nodata (pixels that are nodata in the scores stay nodata).
Methods: percentile keeps the pixels above the given percentile of the valid scores; false_alarm_rate keeps the given fraction of valid pixels; value uses an absolute score; otsu finds the threshold automatically from the score histogram.
The mask keeps the score raster's CRS, size and geotransform. The threshold actually used is returned as THRESHOLD.
"""

    def define(self, config=None):
        self.add(
            QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Anomaly score raster")),
            "A one-band score raster (higher = more anomalous), e.g. from Detect anomalies.",
        )
        self.enum(
            self.METHOD, "Threshold method", THRESHOLD_METHODS, "percentile", "How the threshold is chosen."
        )
        self.add(
            QgsProcessingParameterNumber(
                self.VALUE,
                self.tr("Threshold value (empty = method default)"),
                type=QgsProcessingParameterNumber.Double,
                optional=True,
            ),
            THRESHOLD_HELP,
        )
        self.add(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Anomaly mask")),
            "The binary mask to write (uint8 GeoTIFF: 1 anomaly, 0 background, 255 nodata).",
        )
        self.addOutput(QgsProcessingOutputNumber(self.THRESHOLD, self.tr("Threshold used")))

    def process(self, parameters, context, feedback, reporter):
        from fers_engine.pipeline import scores_source, threshold_raster

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, self.INPUT))
        method = self.enum_value(parameters, self.METHOD, context) or "percentile"
        raw = parameters.get(self.VALUE)
        value = threshold_value_or_default(
            method, self.parameterAsDouble(parameters, self.VALUE, context) if raw not in (None, "") else None
        )
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        self.track_output(out)
        used = threshold_raster(raster_path(layer), out, method, value, reporter)
        feedback.pushInfo(f"Threshold used: {used:.6g}")
        scores = raster_path(layer)
        attach_outputs(context, self.source_name(layer, scores_source(scores)), mask=out, mask_scores=scores)
        return {self.OUTPUT: out, self.THRESHOLD: float(used)}

    @staticmethod
    def source_name(layer, recorded: str) -> str:
        """What the mask is named after: "anomaly mask - SDData" for the scores of SDData.

        A loaded score layer says it in its name; a score file handed over by a graphical model's
        detect step (OUTPUT.tif) only in the scene file name it records; anything else is named
        after its own layer name.
        """
        prefix = LAYER_TITLES["score"] + " - "
        if layer.name().startswith(prefix):
            return layer.name()[len(prefix) :]
        return scene_name(recorded) if recorded else layer.name()
