"""The provider registers, lists its algorithms and model, and every algorithm is well-formed."""

from __future__ import annotations

import re

from qgis_helpers import REPO

from fers_engine.choices import DEFAULT_DETECTOR, DEFAULT_ENHANCER

EXPECTED = {
    "fers:detect",
    "fers:train",
    "fers:evaluate",
    "fers:threshold",
    "fers:install_pytorch",
    "fers:detect_threshold_polygonize",
}
# real HTML elements (qgis_process itself prints type markers such as <outputRaster>)
HTML_TAG = re.compile(
    r"</?(p|br|b|i|u|a|em|strong|code|pre|h[1-6]|ul|ol|li|div|span|table|tr|td|th|img|"
    r"font|hr|html|body|dl|dt|dd|sub|sup)(\s[^<>]*)?/?>",
    re.IGNORECASE,
)


def test_provider_registers_algorithms_and_model(provider):
    from qgis.core import QgsApplication

    assert provider.id() == "fers" and provider.name() == "FERS"
    ids = {alg.id() for alg in provider.algorithms()}
    assert ids == EXPECTED
    registry = QgsApplication.processingRegistry()
    for alg_id in EXPECTED:
        assert registry.algorithmById(alg_id) is not None, alg_id
        assert registry.createAlgorithmById(alg_id) is not None, alg_id


def test_algorithms_are_compliant(provider):
    algorithms = provider.algorithms()
    assert len(algorithms) == len(EXPECTED)
    for alg in algorithms:
        assert re.fullmatch(r"[a-z0-9_]+", alg.name()), alg.id()
        assert re.fullmatch(r"[a-z0-9_]+", alg.groupId()), alg.id()
        assert alg.displayName().strip(), alg.id()
        text = alg.shortHelpString()
        assert text and text.strip(), f"{alg.id()} has no help"
        assert not HTML_TAG.search(text), f"{alg.id()} help contains HTML: {HTML_TAG.search(text).group(0)}"
        for param in alg.parameterDefinitions():
            help_text = param.help()
            assert help_text and help_text.strip(), f"{alg.id()} parameter {param.name()} has no help"
            assert not HTML_TAG.search(help_text), f"{alg.id()} {param.name()} help has HTML"
            # QGIS names a model's output parameters childId:OUTPUT; everything else is upper case
            assert re.fullmatch(r"([a-z0-9_]+:)?[A-Z0-9_]+", param.name()), f"{alg.id()} key {param.name()}"


def test_compliance_check_can_fail(provider):
    """The HTML detector really catches tags (guards the compliance test itself)."""
    assert HTML_TAG.search("Finds <b>anomalies</b>")
    assert HTML_TAG.search("line<br>break")
    assert HTML_TAG.search('<a href="x">link</a>')
    assert not HTML_TAG.search("a < b and c > d; inner < outer; <outputRaster>")


def test_detect_parameters_and_outputs(provider):
    alg = provider.algorithm("detect")
    keys = [p.name() for p in alg.parameterDefinitions()]
    for key in (
        "INPUT",
        "BANDS",
        "MODEL",
        "MODEL_FILE",
        "ENHANCER",
        "DETECTOR",
        "WINDOW_INNER",
        "WINDOW_OUTER",
        "LOCAL_COVARIANCE",
        "FUSION",
        "DEVICE",
        "BLOCK_SIZE",
        "OUTPUT",
        "OUTPUT_MASK",
        "THRESHOLD_METHOD",
        "THRESHOLD_VALUE",
    ):
        assert key in keys, key
    mask = alg.parameterDefinition("OUTPUT_MASK")
    assert mask.createByDefault() is False
    from qgis.core import QgsProcessingParameterDefinition

    assert alg.parameterDefinition("BLOCK_SIZE").flags() & QgsProcessingParameterDefinition.FlagAdvanced
    outs = {o.name() for o in alg.outputDefinitions()}
    assert {"OUTPUT", "OUTPUT_MASK", "DEVICE", "THRESHOLD"} <= outs
    assert alg.parameterDefinition("ENHANCER").defaultValue() == DEFAULT_ENHANCER
    assert alg.parameterDefinition("DETECTOR").defaultValue() == DEFAULT_DETECTOR
    assert alg.parameterDefinition("LOCAL_COVARIANCE").defaultValue() == "auto"
    ev = provider.algorithm("evaluate")
    assert {"AUC", "AUC_PD_PF", "AUC_PD_TAU", "AUC_PF_TAU", "OUTPUT_HTML"} <= {
        o.name() for o in ev.outputDefinitions()
    }


def test_unload_removes_provider_and_reload_restores(fers_plugin):
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    fers_plugin.unload()
    try:
        assert registry.providerById("fers") is None
        assert registry.algorithmById("fers:detect") is None
    finally:
        fers_plugin.initProcessing()
    assert registry.algorithmById("fers:detect") is not None


def test_metadata_as_qgis_reads_it():
    """The plugin's one metadata.txt, read by QGIS's own plugin finder, is complete and in step
    with the engine."""
    import tomllib
    from qgis.utils import findPlugins

    import fers_engine

    found = dict(findPlugins(str(REPO)))
    assert list(found) == ["fers_qgis"], found
    parser = found["fers_qgis"]
    assert parser is not None, "QGIS cannot parse fers_qgis/metadata.txt"
    meta = dict(parser["general"])
    for key in (
        "name",
        "qgisminimumversion",
        "description",
        "about",
        "version",
        "author",
        "email",
        "repository",
        "tracker",
        "homepage",
        "tags",
        "category",
        "hasprocessingprovider",
        "experimental",
        "icon",
    ):
        assert meta.get(key, "").strip(), f"metadata.txt lacks {key}"
    assert meta["qgisminimumversion"] == "3.22"
    assert meta["category"] == "Raster"
    assert meta["hasprocessingprovider"] == "yes"
    assert not HTML_TAG.search(meta["about"])
    assert (REPO / "fers_qgis" / meta["icon"]).is_file()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["version"] == fers_engine.__version__ == pyproject["project"]["version"]


def test_one_metadata_file():
    """fers_qgis/metadata.txt is the only copy (QGIS and scripts/package.py read it); a second one drifts."""
    copies = sorted(
        str(p.relative_to(REPO))
        for p in REPO.rglob("metadata.txt")
        if not p.relative_to(REPO).parts[0].startswith(".")
    )
    assert copies == ["fers_qgis/metadata.txt"]
