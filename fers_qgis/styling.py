"""Styles for the rasters FERS writes, applied by Processing after the run.

Algorithms never touch the project (``addMapLayer`` inside ``processAlgorithm`` is not thread
safe, QGIS #59737). Instead they attach a ``QgsProcessingLayerPostProcessorInterface`` to the
output's "load on completion" details; Processing calls it on the main thread once the layer is
loaded (GUI runs, batch runs, models, ``processing.runAndLoadResults``).

The score style is a pseudocolour ramp (``styles/score.qml``, Inferno) whose limits are reset
to the layer's 2 %-99.5 % cumulative cut, because scores have no fixed range.
"""
from __future__ import annotations

import math
import os

from qgis.core import QgsProcessingLayerPostProcessorInterface, QgsRasterLayer

STYLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "styles")
STYLES = {"score": os.path.join(STYLE_DIR, "score.qml"), "mask": os.path.join(STYLE_DIR, "mask.qml")}


def stretch_to_data(layer, lower: float = 0.02, upper: float = 0.995) -> None:
    """Reset a single-band pseudocolour renderer's limits to the layer's cumulative cut."""
    renderer = layer.renderer()
    if renderer is None or renderer.type() != "singlebandpseudocolor":
        return
    provider = layer.dataProvider()
    lo, hi = provider.cumulativeCut(1, lower, upper)
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return
    shader_fn = renderer.shader().rasterShaderFunction()
    shader_fn.setMinimumValue(lo)
    shader_fn.setMaximumValue(hi)
    if hasattr(shader_fn, "classifyColorRamp") and shader_fn.sourceColorRamp() is not None:
        shader_fn.classifyColorRamp(len(shader_fn.colorRampItemList()) or 16, -1)
    renderer.setClassificationMin(lo)
    renderer.setClassificationMax(hi)


def apply_style(layer, kind: str) -> bool:
    """Load the named .qml onto ``layer`` (and stretch score ramps); True when it worked."""
    if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
        return False
    _, ok = layer.loadNamedStyle(STYLES[kind])
    if ok and kind == "score":
        stretch_to_data(layer)
    layer.triggerRepaint()
    return bool(ok)


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies one of the FERS styles to a layer Processing loaded on completion."""

    # Processing takes ownership of each post-processor and deletes it after use, so every
    # output gets a new one; the Python side is kept referenced until then (QGIS crashes or
    # reports "wrapped C/C++ object ... has been deleted" when the wrapper is collected early)
    _alive = []

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API)
        if apply_style(layer, self.kind) and feedback is not None:
            feedback.pushInfo(f"Applied the FERS {self.kind} style to {layer.name()}")

    @classmethod
    def create(cls, kind: str) -> "StylePostProcessor":
        instance = cls(kind)
        cls._alive = cls._alive[-63:] + [instance]
        return instance


def attach_style(context, output_path: str, kind: str) -> bool:
    """Ask Processing to style ``output_path`` when it loads it; nothing happens headless."""
    if not output_path or not context.willLoadLayerOnCompletion(output_path):
        return False
    details = context.layerToLoadOnCompletionDetails(output_path)
    details.setPostProcessor(StylePostProcessor.create(kind))
    return True
