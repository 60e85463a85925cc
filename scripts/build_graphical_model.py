#!/usr/bin/env python3
"""Build fers_qgis/models/detect_threshold_polygonize.model3 with the QgsProcessingModelAlgorithm API.

    .venv/bin/python scripts/build_graphical_model.py [OUTPUT.model3]

The model chains fers:detect -> fers:threshold -> gdal:polygonize (QGIS's own GDAL
polygonize) -> native:extractbyattribute (keep DN = 1, the anomaly polygons). The generated
file is committed; the FERS provider loads it so it shows in the Toolbox, and it runs headless:
    qgis_process run fers_qgis/models/detect_threshold_polygonize.model3 -- INPUT=scene.tif \
        fers_detect_1:SCORE=score.tif fers_threshold_1:MASK=mask.tif \
        native_extractbyattribute_1:POLYGONS=anomalies.gpkg
(QGIS 3.22 names a model's output parameters childId:OUTPUT.)

Nothing about the detect and threshold steps is written twice: the model's inputs are clones of
the algorithms' own parameters (type, choices, default, help), and every other input of a step
gets that algorithm's own default as a fixed value, so the model validates in the Graphical
Modeler and runs what fers:detect runs by default. Rebuild after changing an algorithm's
parameters (a test compares the committed file with a fresh build).
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "fers_qgis", "models", "detect_threshold_polygonize.model3")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # fers_qgis and fers_engine from this checkout

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Qt writes XML attributes in hash order, seeded per process unless fixed: a fixed seed makes a
# rebuild that changes nothing give the same file, so its diff shows only what changed
os.environ.setdefault("QT_HASH_SEED", "0")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource as Src,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterDefinition,
)
from qgis.PyQt.QtCore import QPointF  # noqa: E402

NAME = "detect_threshold_polygonize"
DISPLAY_NAME = "Detect, threshold and polygonize anomalies"
DESCRIPTION = (
    "Detects anomalies in a hyperspectral raster or scene file (Detect anomalies, with its default "
    "method), thresholds the anomaly scores into a binary mask (Threshold anomaly scores) and turns "
    "the anomalous pixels into polygons with QGIS's GDAL Polygonize, keeping only the anomaly "
    "polygons (DN = 1).\n"
    "Outputs: the anomaly score raster (SCORE), the mask (MASK: 1 anomaly, 0 background, 255 "
    "nodata) and the anomaly polygons (POLYGONS)."
)
# The model's inputs, in the order the dialog asks for them: (model name, step, the step's parameter,
# height in the modeler's drawing: inputs in a column on the left, beside the step they feed)
MODEL_INPUTS = (
    ("INPUT", "detect", "INPUT", 60),
    ("INPUT_FILE", "detect", "INPUT_FILE", 120),
    ("ENHANCER", "detect", "ENHANCER", 180),
    ("DETECTOR", "detect", "DETECTOR", 240),
    ("MODEL_FILE", "detect", "MODEL_FILE", 300),
    ("THRESHOLD_METHOD", "threshold", "METHOD", 420),
    ("THRESHOLD_VALUE", "threshold", "VALUE", 480),
)
INPUT_X, STEP_X, OUTPUT_X = 140, 480, 760
OUTPUTS_HELP = {
    "SCORE": "The anomaly score raster (float32 GeoTIFF, higher = more anomalous).",
    "MASK": "The binary anomaly mask (uint8: 1 anomaly, 0 background, 255 nodata).",
    "POLYGONS": "The anomaly polygons (one polygon per connected group of anomalous pixels, DN = 1).",
}


def fers_algorithms():
    """Fresh, initialised instances of the steps the model wires: {'detect': ..., 'threshold': ...}."""
    from fers_qgis.algorithms.detect import DetectAlgorithm
    from fers_qgis.algorithms.threshold import ThresholdAlgorithm

    steps = {"detect": DetectAlgorithm(), "threshold": ThresholdAlgorithm()}
    for alg in steps.values():
        alg.initAlgorithm()
    return steps


def _model_input(model, definition, name, x, y):
    definition.setName(name)
    mp = QgsProcessingModelParameter(name)
    mp.setPosition(QPointF(x, y))
    model.addModelParameter(definition, mp)


def _wire(child, alg, exposed):
    """Every non-output parameter of ``alg``: from a model input when exposed, else its own default."""
    for param in alg.parameterDefinitions():
        name = param.name()
        if param.isDestination() or name in child.parameterSources():
            continue
        if name in exposed:
            child.addParameterSources(name, [Src.fromModelParameter(exposed[name])])
        elif param.defaultValue() is not None:
            child.addParameterSources(name, [Src.fromStaticValue(param.defaultValue())])
        elif not param.flags() & QgsProcessingParameterDefinition.FlagOptional:
            raise SystemExit(
                f"{alg.id()} parameter {name} is mandatory but has no default to fix in the model"
            )


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
    steps = fers_algorithms()
    model = QgsProcessingModelAlgorithm(NAME, "Hyperspectral anomaly detection")
    exposed = {"detect": {}, "threshold": {}}
    params_help = {}
    for name, step, param_name, y in MODEL_INPUTS:
        definition = steps[step].parameterDefinition(param_name).clone()
        params_help[name] = definition.help()
        _model_input(model, definition, name, INPUT_X, y)
        exposed[step][param_name] = name
    model.setParameterOrder([name for name, _, _, _ in MODEL_INPUTS])
    model.setHelpContent(
        {
            "ALG_DESC": DESCRIPTION,
            "ALG_DISPLAY_NAME": DISPLAY_NAME,
            "ALG_CREATOR": "FERS developers",
            "ALG_VERSION": "0.1.0",
            **params_help,
            **OUTPUTS_HELP,
        }
    )

    detect = QgsProcessingModelChildAlgorithm("fers:detect")
    detect.setChildId("fers_detect_1")
    detect.setDescription("Detect anomalies")
    detect.setPosition(QPointF(STEP_X, 180))
    _wire(detect, steps["detect"], exposed["detect"])
    _output(detect, "SCORE", "OUTPUT", "Anomaly score", OUTPUT_X, 230)
    model.addChildAlgorithm(detect)

    threshold = QgsProcessingModelChildAlgorithm("fers:threshold")
    threshold.setChildId("fers_threshold_1")
    threshold.setDescription("Threshold anomaly scores")
    threshold.setPosition(QPointF(STEP_X, 450))
    threshold.addParameterSources("INPUT", [Src.fromChildOutput("fers_detect_1", "OUTPUT")])
    _wire(threshold, steps["threshold"], exposed["threshold"])
    _output(threshold, "MASK", "OUTPUT", "Anomaly mask", OUTPUT_X, 500)
    model.addChildAlgorithm(threshold)

    polygonize = QgsProcessingModelChildAlgorithm("gdal:polygonize")
    polygonize.setChildId("gdal_polygonize_1")
    polygonize.setDescription("Polygonize (raster to vector)")
    polygonize.setPosition(QPointF(STEP_X, 600))
    polygonize.addParameterSources("INPUT", [Src.fromChildOutput("fers_threshold_1", "OUTPUT")])
    polygonize.addParameterSources("BAND", [Src.fromStaticValue(1)])
    polygonize.addParameterSources("FIELD", [Src.fromStaticValue("DN")])
    polygonize.addParameterSources("EIGHT_CONNECTEDNESS", [Src.fromStaticValue(True)])
    polygonize.addParameterSources("EXTRA", [Src.fromStaticValue("")])
    model.addChildAlgorithm(polygonize)

    extract = QgsProcessingModelChildAlgorithm("native:extractbyattribute")
    extract.setChildId("native_extractbyattribute_1")
    extract.setDescription("Keep the anomaly polygons (DN = 1)")
    extract.setPosition(QPointF(STEP_X, 740))
    extract.addParameterSources("INPUT", [Src.fromChildOutput("gdal_polygonize_1", "OUTPUT")])
    extract.addParameterSources("FIELD", [Src.fromStaticValue("DN")])
    extract.addParameterSources("OPERATOR", [Src.fromStaticValue(0)])
    extract.addParameterSources("VALUE", [Src.fromStaticValue("1")])
    _output(extract, "POLYGONS", "OUTPUT", "Anomaly polygons", OUTPUT_X, 790)
    model.addChildAlgorithm(extract)
    return model


_PLUGIN = None


def register_steps() -> None:
    """Processing with the FERS and GDAL providers, so the steps resolve as in the modeler.

    A model saved with its steps resolved also lists their outputs as model parameters
    (``fers_detect_1:SCORE``), exactly as the Graphical Modeler writes it.
    """
    registry = QgsApplication.processingRegistry()
    if registry.providerById("gdal") is None:
        plugins = os.path.join(QgsApplication.pkgDataPath(), "python", "plugins")
        if plugins not in sys.path:
            sys.path.append(plugins)
        from processing.core.Processing import Processing

        Processing.initialize()
    if registry.providerById("fers") is None:
        import fers_qgis

        global _PLUGIN
        _PLUGIN = fers_qgis.classFactory(
            None
        )  # kept: the registry drops a provider whose plugin is collected
        _PLUGIN.initProcessing()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = argv[0] if argv else DEFAULT_OUT
    app = QgsApplication.instance()
    own = app is None
    if own:
        app = QgsApplication([], False)
        app.initQgis()
    register_steps()
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
