"""What the Layers panel shows after a run: names, stacking, styles and a legend with the real range."""

from __future__ import annotations

import pytest
from qgis_helpers import synthetic_cube, write_tif


def load_results(alg_id, params, feedback):
    """Run an algorithm and load its outputs the way the Processing dialog does (handleAlgorithmResults)."""
    from processing.gui.Postprocessing import handleAlgorithmResults
    from processing.tools import dataobjects
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    params = alg.preprocessParameters(params)
    context = dataobjects.createContext(feedback)
    results, ok = alg.run(params, context, feedback)
    assert ok, feedback.log
    assert handleAlgorithmResults(alg, context, feedback, False, params), feedback.errors
    return results


@pytest.fixture
def project():
    from qgis.core import QgsProject

    project = QgsProject.instance()
    project.removeAllMapLayers()
    yield project
    project.removeAllMapLayers()


@pytest.fixture
def scene_layer(project, tmp_path):
    """A scene loaded in the project as the layer 'SDData' (the name outputs must carry)."""
    from qgis.core import QgsRasterLayer

    cube, _ = synthetic_cube(bands=6, rows=16, cols=12, seed=4)
    layer = QgsRasterLayer(write_tif(tmp_path / "scene.tif", cube), "SDData")
    project.addMapLayer(layer)
    return layer


def out(value, project):
    from qgis.core import QgsProcessingOutputLayerDefinition

    return QgsProcessingOutputLayerDefinition(str(value), project)


def tree_names(project):
    return [child.name() for child in project.layerTreeRoot().children()]


def test_temporary_outputs_say_what_they_are_and_where_from(
    provider, project, scene_layer, recording_feedback
):
    fb = recording_feedback()
    load_results(
        "fers:detect",
        {
            "INPUT": scene_layer,
            "ENHANCER": "none",
            "DETECTOR": "rx",
            "OUTPUT": out("TEMPORARY_OUTPUT", project),
            "OUTPUT_MASK": out("TEMPORARY_OUTPUT", project),
        },
        fb,
    )
    names = tree_names(project)
    assert (
        names.index("anomaly mask - SDData") < names.index("anomaly score - SDData") < names.index("SDData")
    )
    score = project.mapLayersByName("anomaly score - SDData")[0]
    load_results(
        "fers:threshold",
        {"INPUT": score, "METHOD": "otsu", "OUTPUT": out("TEMPORARY_OUTPUT", project)},
        recording_feedback(),
    )
    assert tree_names(project).count("anomaly mask - SDData") == 2


@pytest.mark.parametrize(
    "score_name, mask_name", [("a_score.tif", "b_mask.tif"), ("b_score.tif", "a_mask.tif")]
)
def test_mask_loads_above_its_score(
    provider, project, scene_layer, tmp_path, recording_feedback, score_name, mask_name
):
    """Processing loads outputs in path order and puts each on top; either order ends mask-over-score."""
    load_results(
        "fers:detect",
        {
            "INPUT": scene_layer,
            "ENHANCER": "none",
            "DETECTOR": "rx",
            "OUTPUT": out(tmp_path / score_name, project),
            "OUTPUT_MASK": out(tmp_path / mask_name, project),
        },
        recording_feedback(),
    )
    layers = [child.layer() for child in project.layerTreeRoot().children()]
    sources = [layer.source() for layer in layers]
    mask_at, score_at = sources.index(str(tmp_path / mask_name)), sources.index(str(tmp_path / score_name))
    assert score_at == mask_at + 1, [layer.name() for layer in layers]
    assert len(project.mapLayers()) == 3  # moving the node kept every layer in the project
    assert layers[mask_at].renderer().type() == "paletted"
    assert layers[score_at].renderer().type() == "singlebandpseudocolor"


def legend_ramp_image(model, layer):
    from qgis.core import QgsColorRampLegendNode
    from qgis.PyQt.QtCore import Qt

    node = model.rootGroup().findLayer(layer.id())
    ramps = [n for n in model.layerLegendNodes(node) if isinstance(n, QgsColorRampLegendNode)]
    assert len(ramps) == 1
    return ramps[0].data(Qt.DecorationRole).toImage()


def test_legend_shows_the_stretched_range(provider, project, tmp_path, recording_feedback):
    """The Layers panel's legend (a layer tree model that lives through the run) shows the stretch.

    The colour-ramp legend node draws its min and max labels into its icon; a model built after the
    run draws them from the current renderer, so the two icons agree only when the panel was told.
    """
    from qgis.core import QgsLayerTreeModel, QgsRasterLayer

    panel = QgsLayerTreeModel(project.layerTreeRoot())
    cube, _ = synthetic_cube(bands=6, rows=20, cols=20, seed=5)
    src = write_tif(tmp_path / "scene.tif", cube)
    project.addMapLayer(QgsRasterLayer(src, "scene"))
    load_results(
        "fers:detect",
        {"INPUT": src, "ENHANCER": "none", "DETECTOR": "rx", "OUTPUT": out(tmp_path / "s.tif", project)},
        recording_feedback(),
    )
    layer = [lyr for lyr in project.mapLayers().values() if lyr.source() == str(tmp_path / "s.tif")][0]
    shader = layer.renderer().shader().rasterShaderFunction()
    assert (shader.minimumValue(), shader.maximumValue()) != (0.0, 1.0)
    fresh = QgsLayerTreeModel(project.layerTreeRoot())
    assert legend_ramp_image(panel, layer) == legend_ramp_image(fresh, layer)


@pytest.mark.parametrize(
    "score_name, mask_name", [("a_score.tif", "b_mask.tif"), ("b_score.tif", "a_mask.tif")]
)
def test_layers_panel_keeps_both_legends_open(
    provider, project, tmp_path, recording_feedback, score_name, mask_name
):
    """The Layers panel (a QgsLayerTreeView) shows the score's legend open, as its node says.

    Found in QGIS desktop (scripts/desktop_smoke.py): the score layer showed collapsed, its colour
    ramp and stretched range hidden, while its node said expanded (the stretch replaces the
    renderer, which rebuilds the legend under the view).
    """
    from qgis.core import QgsLayerTreeModel, QgsRasterLayer
    from qgis.gui import QgsLayerTreeView

    model = QgsLayerTreeModel(project.layerTreeRoot())
    view = QgsLayerTreeView()
    view.setModel(model)
    view.show()
    try:
        cube, _ = synthetic_cube(bands=6, rows=20, cols=20, seed=5)
        src = write_tif(tmp_path / "scene.tif", cube)
        project.addMapLayer(QgsRasterLayer(src, "SDData"))
        load_results(
            "fers:detect",
            {
                "INPUT": src,
                "ENHANCER": "none",
                "DETECTOR": "rx",
                "OUTPUT": out(tmp_path / score_name, project),
                "OUTPUT_MASK": out(tmp_path / mask_name, project),
            },
            recording_feedback(),
        )
        shown = {
            node.name(): (node.isExpanded(), view.isExpanded(view.node2index(node)))
            for node in project.layerTreeRoot().findLayers()
        }
    finally:
        view.hide()
        del view
        del model
    assert all(state == (True, True) for state in shown.values()), shown


def test_graphical_model_names_its_layers_after_the_scene(provider, project, tmp_path, recording_feedback):
    """Found in QGIS desktop: the shipped model's mask loaded as 'anomaly mask - OUTPUT' (its threshold
    step reads the detect step's file, OUTPUT.tif); it is named after the scene, like the score."""
    from qgis.core import QgsRasterLayer

    cube, _ = synthetic_cube(bands=6, rows=16, cols=12, seed=4)
    layer = QgsRasterLayer(write_tif(tmp_path / "SDData.tif", cube), "SDData")  # named as QGIS names a file
    project.addMapLayer(layer)
    load_results(
        "fers:detect_threshold_polygonize",
        {
            "INPUT": layer,
            "ENHANCER": "none",
            "DETECTOR": "rx",
            "fers_detect_1:SCORE": out("TEMPORARY_OUTPUT", project),
            "fers_threshold_1:MASK": out("TEMPORARY_OUTPUT", project),
            "native_extractbyattribute_1:POLYGONS": out(tmp_path / "polygons.gpkg", project),
        },
        recording_feedback(),
    )
    names = tree_names(project)
    assert "anomaly score - SDData" in names and "anomaly mask - SDData" in names, names
    assert names.index("anomaly mask - SDData") < names.index("anomaly score - SDData"), names
