"""Styles for the rasters FERS writes, applied by Processing after the run.

Algorithms never touch the project (``addMapLayer`` inside ``processAlgorithm`` is not thread
safe, QGIS #59737). Instead they attach a ``QgsProcessingLayerPostProcessorInterface`` to the
output's "load on completion" details; Processing calls it on the main thread once the layer is
loaded (GUI runs, batch runs, models, ``processing.runAndLoadResults``).

The score style is a pseudocolour ramp (``styles/score.qml``, Inferno) whose limits are reset
to the layer's 2 %-99.5 % cumulative cut, because scores have no fixed range. The same hook
names the layers after what they are and where they came from (``anomaly score - SDData``) and
stacks each mask directly above its opaque score, also across the steps of a graphical model.
"""

from __future__ import annotations

import math
import os

from qgis.core import QgsProcessingLayerPostProcessorInterface, QgsRasterLayer

STYLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "styles")
STYLES = {"score": os.path.join(STYLE_DIR, "score.qml"), "mask": os.path.join(STYLE_DIR, "mask.qml")}


LAYER_TITLES = {"score": "anomaly score", "mask": "anomaly mask"}


def layer_name(kind: str, source_name: str) -> str:
    """What an output layer is called in the Layers panel: what it is, and which input it came from."""
    return f"{LAYER_TITLES[kind]} - {source_name}" if source_name else LAYER_TITLES[kind]


def stretch_to_data(layer, lower: float = 0.02, upper: float = 0.995) -> None:
    """Reset a single-band pseudocolour renderer's limits to the layer's cumulative cut.

    The stretched renderer is set anew rather than edited in place: ``setRenderer`` is what tells
    the Layers panel to rebuild the legend, which otherwise keeps showing the style file's 0..1.
    """
    current = layer.renderer()
    if current is None or current.type() != "singlebandpseudocolor":
        return
    lo, hi = layer.dataProvider().cumulativeCut(1, lower, upper)
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return
    renderer = current.clone()
    shader_fn = renderer.shader().rasterShaderFunction()
    shader_fn.setMinimumValue(lo)
    shader_fn.setMaximumValue(hi)
    if hasattr(shader_fn, "classifyColorRamp") and shader_fn.sourceColorRamp() is not None:
        shader_fn.classifyColorRamp(len(shader_fn.colorRampItemList()) or 16, -1)
    renderer.setClassificationMin(lo)
    renderer.setClassificationMax(hi)
    layer.setRenderer(renderer)


def apply_style(layer, kind: str) -> bool:
    """Load the named .qml onto ``layer`` (and stretch score ramps); True when it worked."""
    if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
        return False
    _, ok = layer.loadNamedStyle(STYLES[kind])
    if ok and kind == "score":
        stretch_to_data(layer)
    layer.triggerRepaint()
    return bool(ok)


#: Custom property of a mask layer: the score raster it was thresholded from, so that the mask can be
#: stacked above that score whichever algorithm wrote each and whichever loads first.
SCORES_PROPERTY = "fers/scores"


def _same_file(a: str, b: str) -> bool:
    return bool(a and b) and os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def stack_mask_over_scores(layer) -> None:
    """Put every mask directly above the score layer it was made from, once both are loaded.

    Processing loads a run's outputs in the order of their paths, each new layer going on top (or
    above the selected layer), so an opaque score can hide its mask; in a graphical model the score
    and the mask even come from two algorithms. Each mask names its score (``SCORES_PROPERTY``), so
    whichever of the two loads second finds the other in the project.
    """
    project = layer.project()
    if project is None:
        return
    others = [other for other in project.mapLayers().values() if other is not layer]
    scores = layer.customProperty(SCORES_PROPERTY, "")
    if scores:  # a mask: above its score
        for other in others:
            if _same_file(other.source(), scores):
                place_above(layer, other)
                show_legend_state(other)
    else:  # a score: its masks above it
        for other in others:
            if _same_file(other.customProperty(SCORES_PROPERTY, ""), layer.source()):
                place_above(other, layer)
                show_legend_state(other)
    show_legend_state(layer)


def place_above(upper, lower) -> None:
    """Move ``upper``'s layer-tree node directly above ``lower``'s when both sit in one group."""
    project = lower.project()
    if project is None:
        return
    root = project.layerTreeRoot()
    upper_node, lower_node = root.findLayer(upper.id()), root.findLayer(lower.id())
    if upper_node is None or lower_node is None or upper_node.parent() is not lower_node.parent():
        return
    group = lower_node.parent()
    children = group.children()
    upper_at, lower_at = children.index(upper_node), children.index(lower_node)
    if upper_at < lower_at:
        return  # already above
    group.insertChildNode(lower_at, upper_node.clone())
    group.removeChildNode(upper_node)


def show_legend_state(layer) -> None:
    """Make the Layers panel show ``layer``'s legend open or closed as its layer-tree node says.

    The stretch replaces the score's renderer, which rebuilds its legend; QGIS's Layers panel
    (a tree view) then showed the score collapsed, its colour ramp and range hidden, although the
    node still said expanded. The view follows a node only when the node's state changes, so
    change it and change it back.
    """
    project = layer.project()
    node = project.layerTreeRoot().findLayer(layer.id()) if project is not None else None
    if node is None:
        return
    expanded = node.isExpanded()
    node.setExpanded(not expanded)
    node.setExpanded(expanded)


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies one of the FERS styles to a layer Processing loaded on completion, and stacks it."""

    # Processing takes ownership of each post-processor and deletes it after use, so every
    # output gets a new one; the Python side is kept referenced until then (QGIS crashes or
    # reports "wrapped C/C++ object ... has been deleted" when the wrapper is collected early)
    _alive = []

    def __init__(self, kind: str, scores: str = ""):
        super().__init__()
        self.kind = kind
        self.scores = scores

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        if apply_style(layer, self.kind) and feedback is not None:
            feedback.pushInfo(f"Applied the FERS {self.kind} style to {layer.name()}")
        if self.scores:
            layer.setCustomProperty(SCORES_PROPERTY, self.scores)
        stack_mask_over_scores(layer)

    @classmethod
    def create(cls, kind: str, scores: str = "") -> StylePostProcessor:
        instance = cls(kind, scores)
        cls._alive = cls._alive[-63:] + [instance]
        return instance


def attach_outputs(context, source_name: str, score: str = "", mask: str = "", mask_scores: str = "") -> None:
    """Name, style and stack the outputs Processing will load; nothing happens headless.

    ``source_name`` is the input the outputs came from (``anomaly score - SDData``); ``mask_scores``
    the score raster the mask was thresholded from (default: ``score``). QGIS keeps its own rule
    for files the user named: with "prefer file name as layer name" on, a saved output is called
    after its file, and a temporary one gets this name.
    """
    for kind, path in (("score", score), ("mask", mask)):
        if not path or not context.willLoadLayerOnCompletion(path):
            continue
        details = context.layerToLoadOnCompletionDetails(path)
        details.name = layer_name(kind, source_name)
        details.setPostProcessor(
            StylePostProcessor.create(kind, (mask_scores or score) if kind == "mask" else "")
        )
