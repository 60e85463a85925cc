"""fers:train - train background-feature enhancers on background scenes (needs PyTorch)."""
from __future__ import annotations

import json
import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
)

from fers_engine.choices import DEVICES

from .base import FersAlgorithm, missing_torch_message, require_torch

# Processing names -> the engine's stage ids (fers_engine.nets.trainer.STAGES)
STAGES = {"pretrain": "0", "spectral": "1", "spatial": "2"}


def model_card_path(model_path: str) -> str:
    return os.path.splitext(model_path)[0] + ".json"


def checkpoint_path(model_path: str) -> str:
    stem, _ = os.path.splitext(model_path)
    return stem + ".ckpt.safetensors"


class TrainAlgorithm(FersAlgorithm):
    INPUTS = "INPUTS"
    EXCLUDE_MASKS = "EXCLUDE_MASKS"
    STAGES = "STAGES"
    EPOCHS = "EPOCHS"
    DEVICE = "DEVICE"
    RESUME = "RESUME"
    SEED = "SEED"
    STEPS_PER_EPOCH = "STEPS_PER_EPOCH"
    OUTPUT = "OUTPUT"

    NAME = "train"
    DISPLAY = "Train enhancer"
    HELP = """
Trains the FERS background-feature enhancers on one or more hyperspectral scenes and writes a model file (.safetensors) with its model card (.json, same name) beside it. Use the model in Detect anomalies through its Model file parameter.
Stages: pretrain (self-supervised trunk pre-training), spectral (the spectral enhancer, required for a usable model) and spatial (the spatial branch). Training learns what the background looks like, so known anomalies must be left out: give one exclusion mask per scene (non-zero = exclude), in the same order, or none; MATLAB .mat benchmark scenes that carry ground truth exclude their anomaly pixels by themselves.
Which epoch is kept: when some scenes carry ground truth (benchmark .mat files), each of the spectral and spatial stages keeps the epoch, the untrained start included, whose features give the best mean RX AUC on those scenes; otherwise the epoch with the lowest validation loss on held-back background patches.
Needs PyTorch: if QGIS's Python lacks it, run Install PyTorch for FERS first. Progress follows the training steps and the log shows the training and validation loss after every epoch. Cancel stops after the current step; the last good checkpoint (written after every completed epoch, beside the model as .ckpt.safetensors) is kept, and a run with Resume from checkpoint continues from it.
"""

    def define(self, config=None):
        self.add(QgsProcessingParameterMultipleLayers(self.INPUTS, self.tr("Training scenes"),
                                                      layerType=QgsProcessing.TypeFile),
                 "One or more hyperspectral scenes whose pixels are mostly background, as files: any "
                 "GDAL raster (GeoTIFF, ENVI...), a MATLAB .mat cube or a sensor product FERS reads.")
        self.add(QgsProcessingParameterMultipleLayers(self.EXCLUDE_MASKS, self.tr("Exclusion masks (optional)"),
                                                      layerType=QgsProcessing.TypeFile, optional=True),
                 "Optional masks, one per training scene in the same order: non-zero pixels (known "
                 "anomalies) are left out of training.")
        param = QgsProcessingParameterEnum(self.STAGES, self.tr("Stages to train"), options=list(STAGES),
                                           allowMultiple=True, defaultValue=list(STAGES),
                                           usesStaticStrings=True)
        self.add(param, "Which training stages to run: pretrain, spectral and spatial (default: all "
                        "three). The spectral stage is needed to write a model. Choices: "
                        + ", ".join(STAGES) + ".")
        self.add(QgsProcessingParameterNumber(self.EPOCHS, self.tr("Epochs per stage (0 = engine default)"),
                                              type=QgsProcessingParameterNumber.Integer,
                                              defaultValue=0, minValue=0, maxValue=100000),
                 "Number of epochs for every stage; 0 keeps the engine's defaults (6, 6 and 4).")
        self.enum(self.DEVICE, "Device", DEVICES, "auto",
                  "Where training runs: auto picks cuda when PyTorch sees a usable GPU, otherwise "
                  "cpu. A requested cuda device that cannot be used gives a warning; the device "
                  "that actually ran is logged and returned as DEVICE.")
        self.add(QgsProcessingParameterBoolean(self.RESUME, self.tr("Resume from checkpoint"), defaultValue=False),
                 "Continue a cancelled or interrupted training from the checkpoint beside the model "
                 "file (same scenes and settings).")
        self.add(QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"),
                                              type=QgsProcessingParameterNumber.Integer, defaultValue=0),
                 "Seed of every random draw; the same seed and inputs give the same model.", advanced=True)
        self.add(QgsProcessingParameterNumber(self.STEPS_PER_EPOCH, self.tr("Steps per epoch (0 = engine default)"),
                                              type=QgsProcessingParameterNumber.Integer, defaultValue=0,
                                              minValue=0),
                 "Number of training batches per epoch; 0 keeps the engine's default (40). Fewer "
                 "steps give quicker, rougher models.", advanced=True)
        self.add(QgsProcessingParameterFileDestination(self.OUTPUT, self.tr("Model file"),
                                                       fileFilter="Model files (*.safetensors)"),
                 "Where to write the trained model (.safetensors); its model card is written beside "
                 "it with the extension .json.")
        self.addOutput(QgsProcessingOutputFile("MODEL_CARD", self.tr("Model card (.json)")))
        self.addOutput(QgsProcessingOutputString("DEVICE", self.tr("Device that ran")))
        self.addOutput(QgsProcessingOutputNumber("LOSS", self.tr("Best validation loss of the last stage")))

    def process(self, parameters, context, feedback, reporter):
        require_torch("Train enhancer")
        try:
            from fers_engine.nets.trainer import train
        except ImportError as exc:
            raise QgsProcessingException(missing_torch_message("Train enhancer", exc)) from None
        from fers_engine.errors import Cancelled

        inputs = [p for p in self.parameterAsFileList(parameters, self.INPUTS, context) if p]
        if not inputs:
            raise QgsProcessingException("give at least one training scene (INPUTS)")
        # an empty optional list comes back as [''] in QGIS 3.22
        masks = [p for p in self.parameterAsFileList(parameters, self.EXCLUDE_MASKS, context) if p]
        if masks and len(masks) != len(inputs):
            raise QgsProcessingException(
                f"{len(masks)} exclusion masks for {len(inputs)} training scenes: give one mask per scene, "
                "in the same order, or none")
        names = self.parameterAsEnumStrings(parameters, self.STAGES, context) or list(STAGES)
        stages = [STAGES[n] for n in names]
        device = self.enum_value(parameters, self.DEVICE, context) or "auto"
        epochs = self.parameterAsInt(parameters, self.EPOCHS, context)
        steps = self.parameterAsInt(parameters, self.STEPS_PER_EPOCH, context)
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if not out.lower().endswith(".safetensors"):
            out += ".safetensors"

        # the engine's lines go to the log once (through the bridge): a progress text would print
        # every epoch line a second time, since the Processing dialog logs progress texts too
        try:
            path = train(inputs, exclude=masks or None, stages=stages, epochs=epochs or None, device=device,
                         seed=self.parameterAsInt(parameters, self.SEED, context), out_path=out,
                         resume=self.parameterAsBool(parameters, self.RESUME, context), reporter=reporter,
                         config={"steps_per_epoch": steps} if steps > 0 else None)
        except Cancelled:
            ckpt = checkpoint_path(out)
            if os.path.exists(ckpt):
                raise QgsProcessingException(
                    f"training was cancelled by the user; the last good checkpoint is kept at {ckpt} "
                    "(run again with RESUME=true to continue)") from None
            raise
        out = str(path)
        card_path = model_card_path(out)
        used, loss = device, None
        try:
            with open(card_path, encoding="utf-8") as fh:
                card = json.load(fh)
            training = card.get("training", {})
            used = str(training.get("device", device))
            losses = training.get("validation_loss", {})
            done = training.get("stages") or []
            if done and losses.get(done[-1]):
                loss = float(min(losses[done[-1]]))
        except (OSError, ValueError):
            card_path = None
        feedback.pushInfo(f"Device used: {used}")
        if device == "cuda" and not used.startswith("cuda"):
            self.warn_once(feedback, "cuda", f"device cuda was requested but training ran on {used}")
        return {self.OUTPUT: out, "MODEL_CARD": card_path, "DEVICE": used, "LOSS": loss}

