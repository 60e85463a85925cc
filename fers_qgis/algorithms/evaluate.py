"""fers:evaluate - ROC AUC and 3-D ROC measures of a score raster against ground truth."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from ..scene_input import raster_path
from .base import FersAlgorithm

METRICS = (
    ("AUC", "auc", "ROC AUC (Pd vs Pf)"),
    ("AUC_PD_PF", "auc_pd_pf", "AUC of Pd vs Pf (3-D ROC)"),
    ("AUC_PD_TAU", "auc_pd_tau", "AUC of Pd vs threshold (detectability)"),
    ("AUC_PF_TAU", "auc_pf_tau", "AUC of Pf vs threshold (false alarms, lower is better)"),
)


class EvaluateAlgorithm(FersAlgorithm):
    SCORE = "SCORE"
    GROUND_TRUTH = "GROUND_TRUTH"
    OUTPUT_HTML = "OUTPUT_HTML"

    NAME = "evaluate"
    DISPLAY = "Evaluate anomaly scores"
    HELP = """
Compares an anomaly score raster with a ground-truth mask (non-zero = anomaly) and reports the ROC AUC and the 3-D ROC measures: AUC (Pd vs Pf), AUC_PD_TAU (detection probability vs threshold, higher is better) and AUC_PF_TAU (false-alarm probability vs threshold, lower is better).
The numbers are returned as outputs that later steps of a graphical model can use, and an HTML report with a table and the ROC curve is written.
Nodata pixels of the score raster are left out. The ground truth may be a raster (GeoTIFF, ENVI, BMP...) or a MATLAB .mat file, and must have the score raster's size.
"""

    def define(self, config=None):
        self.add(
            QgsProcessingParameterRasterLayer(self.SCORE, self.tr("Anomaly score raster")),
            "A one-band score raster (higher = more anomalous), e.g. from Detect anomalies.",
        )
        self.add(
            QgsProcessingParameterFile(
                self.GROUND_TRUTH,
                self.tr("Ground truth (raster or .mat)"),
                behavior=QgsProcessingParameterFile.File,
                fileFilter="Rasters and MATLAB files (*.tif *.tiff *.bmp *.png *.img *.mat *);;All files (*)",
            ),
            "Ground-truth mask with the score raster's size: non-zero pixels are anomalies. "
            "Any GDAL raster or a MATLAB .mat file.",
        )
        self.add(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_HTML,
                self.tr("Evaluation report"),
                fileFilter="HTML files (*.html)",
                optional=True,
            ),
            "HTML report with the metrics table and the ROC curve (an inline SVG figure).",
        )
        for key, _, label in METRICS:
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def process(self, parameters, context, feedback, reporter):
        from fers_engine.pipeline import evaluate_rasters
        from fers_engine.report import write_report

        layer = self.parameterAsRasterLayer(parameters, self.SCORE, context)
        if layer is None:
            raise QgsProcessingException(self.invalidRasterError(parameters, self.SCORE))
        truth = self.parameterAsFile(parameters, self.GROUND_TRUTH, context)
        if not truth or not os.path.exists(truth):
            raise QgsProcessingException(f"ground truth file not found: {truth!r}")
        html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        score = raster_path(layer)
        result = evaluate_rasters(score, truth, reporter.stage(0.0, 0.9))
        outputs = {}
        if "auc" not in result and "auc_pd_pf" in result:
            result["auc"] = result["auc_pd_pf"]  # the usual ROC AUC is AUC(Pd, Pf)
        for key, name, _label in METRICS:
            value = result.get(name)
            outputs[key] = None if value is None else float(value)
            feedback.pushInfo(f"{key} = {outputs[key]:.6f}" if value is not None else f"{key}: n/a")
        if html:
            reporter.check()
            self.track_output(html)
            write_report(html, result, score_path=score, truth_path=truth)
            outputs[self.OUTPUT_HTML] = html
        feedback.setProgress(100)
        return outputs
