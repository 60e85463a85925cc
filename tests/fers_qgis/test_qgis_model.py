"""The shipped graphical model: valid in the modeler, input first, and detect's own defaults."""

from __future__ import annotations

import sys
from xml.etree.ElementTree import canonicalize

import pytest
from qgis_helpers import REPO

MODEL_FILE = REPO / "fers_qgis" / "models" / "detect_threshold_polygonize.model3"


@pytest.fixture
def builder():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_graphical_model
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return build_graphical_model


@pytest.fixture
def toolbox_model(provider):
    """The model as the Toolbox runs it (a fresh instance from the registry)."""
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().createAlgorithmById("fers:detect_threshold_polygonize")


def test_model_validates_as_the_modeler_opens_it(provider, toolbox_model):
    from qgis.core import QgsProcessingModelAlgorithm

    assert toolbox_model.validate() == (True, [])
    opened = QgsProcessingModelAlgorithm()  # what Graphical Modeler > Open Model does
    assert opened.fromFile(str(MODEL_FILE))
    assert opened.validate() == (True, [])


def test_model_asks_for_the_input_first(toolbox_model):
    names = [p.name() for p in toolbox_model.parameterDefinitions() if not p.isDestination()]
    assert names[:2] == ["INPUT", "INPUT_FILE"], names


def test_detect_step_runs_with_detect_defaults(provider, toolbox_model):
    """Every detect parameter the model does not fix by hand gets exactly fers:detect's default."""
    from qgis.core import QgsProcessingModelChildParameterSource as Src

    detect = provider.algorithm("detect")
    child = toolbox_model.childAlgorithm("fers_detect_1")
    sources = child.parameterSources()
    for param in detect.parameterDefinitions():
        if param.isDestination():
            continue
        name = param.name()
        if name not in sources:
            assert param.defaultValue() is None, (
                f"{name}: detect's default {param.defaultValue()!r} is not used"
            )
            continue
        (source,) = sources[name]
        if source.source() == Src.ModelParameter:
            used = toolbox_model.parameterDefinition(source.parameterName())
            assert used.type() == param.type(), name
            assert used.defaultValue() == param.defaultValue(), name
            if param.type() == "enum":
                assert used.options() == param.options(), name
        else:
            assert source.source() == Src.StaticValue, name
            assert source.staticValue() == param.defaultValue(), name


def test_committed_model_is_a_fresh_build(provider, builder, tmp_path):
    """The .model3 is generated: a change to an algorithm's parameters shows up here until rebuilt."""
    out = tmp_path / "fresh.model3"
    assert builder.main([str(out)]) == 0
    # canonical XML: Qt writes attributes in a per-process hash order
    assert canonicalize(from_file=str(out)) == canonicalize(from_file=str(MODEL_FILE))
