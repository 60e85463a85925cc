#!/usr/bin/env python3
"""Build fers_qgis/models/detect_threshold_polygonize.model3 with the QgsProcessingModelAlgorithm API.

    .venv/bin/python scripts/build_graphical_model.py [OUTPUT.model3]

The model chains fers:detect -> fers:threshold -> gdal:polygonize (QGIS's own GDAL
polygonize) -> native:extractbyattribute (keep DN = 1, the anomaly polygons). The generated
file is committed; the FERS provider loads it so it shows in the Toolbox, and it runs headless:
    qgis_process run fers_qgis/models/detect_threshold_polygonize.model3 -- INPUT=scene.tif \
        ENHANCER=none fers_detect_1:SCORE=score.tif fers_threshold_1:MASK=mask.tif \
        native_extractbyattribute_1:POLYGONS=anomalies.gpkg
(QGIS 3.22 names a model's output parameters childId:OUTPUT.)
"""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "fers_qgis", "models", "detect_threshold_polygonize.model3")

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource as Src,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QPointF  # noqa: E402

NAME = "detect_threshold_polygonize"
DISPLAY_NAME = "Detect, threshold and polygonize anomalies"
DESCRIPTION = (
    "Detects anomalies in a hyperspectral raster (Detect anomalies), thresholds the anomaly scores "
    "into a binary mask (Threshold anomaly scores) and turns the anomalous pixels into polygons "
    "with QGIS's GDAL Polygonize, keeping only the anomaly polygons (DN = 1).\n"
    "Outputs: the anomaly score raster (SCORE), the mask (MASK: 1 anomaly, 0 background, 255 "
    "nodata) and the anomaly polygons (POLYGONS). ENHANCER=none needs no PyTorch."
)
PARAMS_HELP = {
    "INPUT": "The multi-band hyperspectral raster to search.",
    "ENHANCER": "Background-feature enhancement before detection: none (classical detector only, no "
                "PyTorch needed), spectral or full. Choices: none, spectral, full.",
    "DETECTOR": "rx: global RX; lrx: local RX with a 3 x 3 guard window and a 15 x 15 background "
                "window. Choices: rx, lrx.",
    "THRESHOLD_METHOD": "How the mask threshold is chosen. Choices: percentile, false_alarm_rate, "
                        "value, otsu.",
    "THRESHOLD_VALUE": "Percentile (default 99), false-alarm fraction (default 0.01) or absolute "
                       "score, depending on the method; ignored by otsu.",
}
OUTPUTS_HELP = {
    "SCORE": "The anomaly score raster (float32 GeoTIFF, higher = more anomalous).",
    "MASK": "The binary anomaly mask (uint8: 1 anomaly, 0 background, 255 nodata).",
    "POLYGONS": "The anomaly polygons (one polygon per connected group of anomalous pixels, DN = 1).",
}


def _param(model, definition, x, y):
    definition.setHelp(PARAMS_HELP[definition.name()])
    mp = QgsProcessingModelParameter(definition.name())
    mp.setPosition(QPointF(x, y))
    model.addModelParameter(definition, mp)


def _output(child, name, child_output, description, x, y):
    out = QgsProcessingModelOutput(name, description)
    out.setChildId(child.childId())
    out.setChildOutputName(child_output)
    out.setPosition(QPointF(x, y))
    outputs = dict(child.modelOutputs())
    outputs[name] = out
    child.setModelOutputs(outputs)


def build_model() -> QgsProcessingModelAlgorithm:
    # name() doubles as the id (fers:detect_threshold_polygonize); the FERS provider shows
    # ALG_DISPLAY_NAME as the Toolbox title
    model = QgsProcessingModelAlgorithm(NAME, "Hyperspectral anomaly detection")
    model.setHelpContent({"ALG_DESC": DESCRIPTION, "ALG_DISPLAY_NAME": DISPLAY_NAME, "ALG_CREATOR": "FERS developers",
                          "ALG_VERSION": "0.1.0", **PARAMS_HELP, **OUTPUTS_HELP})
    _param(model, QgsProcessingParameterRasterLayer("INPUT", "Hyperspectral raster"), 120, 60)
    _param(model, QgsProcessingParameterEnum("ENHANCER", "Enhancer", ["none", "spectral", "full"],
                                             defaultValue="none", usesStaticStrings=True), 320, 60)
    _param(model, QgsProcessingParameterEnum("DETECTOR", "Detector", ["rx", "lrx"],
                                             defaultValue="rx", usesStaticStrings=True), 520, 60)
    _param(model, QgsProcessingParameterEnum("THRESHOLD_METHOD", "Threshold method",
                                             ["percentile", "false_alarm_rate", "value", "otsu"],
                                             defaultValue="percentile", usesStaticStrings=True), 720, 60)
    _param(model, QgsProcessingParameterNumber("THRESHOLD_VALUE", "Threshold value (empty = method default)",
                                               type=QgsProcessingParameterNumber.Double, optional=True),
           920, 60)

    detect = QgsProcessingModelChildAlgorithm("fers:detect")
    detect.setChildId("fers_detect_1")
    detect.setDescription("Detect anomalies")
    detect.setPosition(QPointF(320, 200))
    detect.addParameterSources("INPUT", [Src.fromModelParameter("INPUT")])
    detect.addParameterSources("ENHANCER", [Src.fromModelParameter("ENHANCER")])
    detect.addParameterSources("DETECTOR", [Src.fromModelParameter("DETECTOR")])
    _output(detect, "SCORE", "OUTPUT", "Anomaly score", 520, 250)
    model.addChildAlgorithm(detect)

    threshold = QgsProcessingModelChildAlgorithm("fers:threshold")
    threshold.setChildId("fers_threshold_1")
    threshold.setDescription("Threshold anomaly scores")
    threshold.setPosition(QPointF(320, 340))
    threshold.addParameterSources("INPUT", [Src.fromChildOutput("fers_detect_1", "OUTPUT")])
    threshold.addParameterSources("METHOD", [Src.fromModelParameter("THRESHOLD_METHOD")])
    threshold.addParameterSources("VALUE", [Src.fromModelParameter("THRESHOLD_VALUE")])
    _output(threshold, "MASK", "OUTPUT", "Anomaly mask", 520, 390)
    model.addChildAlgorithm(threshold)

    polygonize = QgsProcessingModelChildAlgorithm("gdal:polygonize")
    polygonize.setChildId("gdal_polygonize_1")
    polygonize.setDescription("Polygonize (raster to vector)")
    polygonize.setPosition(QPointF(320, 480))
    polygonize.addParameterSources("INPUT", [Src.fromChildOutput("fers_threshold_1", "OUTPUT")])
    polygonize.addParameterSources("BAND", [Src.fromStaticValue(1)])
    polygonize.addParameterSources("FIELD", [Src.fromStaticValue("DN")])
    polygonize.addParameterSources("EIGHT_CONNECTEDNESS", [Src.fromStaticValue(True)])
    polygonize.addParameterSources("EXTRA", [Src.fromStaticValue("")])
    model.addChildAlgorithm(polygonize)

    extract = QgsProcessingModelChildAlgorithm("native:extractbyattribute")
    extract.setChildId("native_extractbyattribute_1")
    extract.setDescription("Keep the anomaly polygons (DN = 1)")
    extract.setPosition(QPointF(320, 620))
    extract.addParameterSources("INPUT", [Src.fromChildOutput("gdal_polygonize_1", "OUTPUT")])
    extract.addParameterSources("FIELD", [Src.fromStaticValue("DN")])
    extract.addParameterSources("OPERATOR", [Src.fromStaticValue(0)])
    extract.addParameterSources("VALUE", [Src.fromStaticValue("1")])
    _output(extract, "POLYGONS", "OUTPUT", "Anomaly polygons", 520, 670)
    model.addChildAlgorithm(extract)
    return model


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = argv[0] if argv else DEFAULT_OUT
    app = QgsApplication.instance()
    own = app is None
    if own:
        app = QgsApplication([], False)
        app.initQgis()
    model = build_model()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if not model.toFile(out):
        print(f"could not write {out}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    if own:
        app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
