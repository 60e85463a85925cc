"""fers:train - train background-feature enhancers on background scenes (needs PyTorch)."""

from __future__ import annotations

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

from fers_engine.choices import DEVICES, TRAINING_RECIPES
from fers_engine.nets.checkpoint import checkpoint_paths

from .base import FersAlgorithm, missing_torch_message, require_torch

# Processing names -> the engine's stage ids (fers_engine.nets.stages.STAGES); empty = the recipe's
STAGES = {"pretrain": "0", "spectral": "1", "spatial": "2", "separation": "sep"}


class TrainAlgorithm(FersAlgorithm):
    INPUTS = "INPUTS"
    EXCLUDE_MASKS = "EXCLUDE_MASKS"
    RECIPE = "RECIPE"
    USE_TRUTH = "USE_TRUTH"
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
Recipe: default is the recipe of the shipped default model, so training on the files listed in its card reproduces it. separation trains the spectral and spatial enhancers so that small targets implanted into the background stand out under RX while material boundaries stay quiet; separation-spectral does the same with the spectral enhancer only; published runs the paper's objectives (pretrain: trunk pre-training, spectral: reverse distillation, spatial: the rebellious student). Each recipe trains its candidates (seeds) and keeps the best.
Known anomalies must be left out of training: give one exclusion mask per scene (non-zero = exclude), in the same order, or none. With Use ground truth found with the scenes, the truth stored in a MATLAB .mat scene or found beside a scene (for example SDDataGt.bmp beside SDData) excludes its anomaly pixels and chooses the epochs and candidates: the epoch (the untrained start included) and candidate whose features give the best mean RX AUC on those scenes. The log names every truth file used. Without any truth, each stage keeps the epoch with the lowest validation loss on held-back background patches.
Needs PyTorch: if QGIS's Python lacks it, run Install PyTorch for FERS first. Progress follows the training steps and the log shows the losses after every epoch. Cancel stops after the current step; the last good checkpoint (written after every completed epoch, beside the model as .ckpt.safetensors) is kept, and a run with Resume from checkpoint continues from it. A finished run leaves only the model and its card.
"""

    def define(self, config=None):
        self.add(
            QgsProcessingParameterMultipleLayers(
                self.INPUTS, self.tr("Training scenes"), layerType=QgsProcessing.TypeFile
            ),
            "One or more hyperspectral scenes whose pixels are mostly background, as files: any "
            "GDAL raster (GeoTIFF, ENVI...), a MATLAB .mat cube or a sensor product FERS reads.",
        )
        self.add(
            QgsProcessingParameterMultipleLayers(
                self.EXCLUDE_MASKS,
                self.tr("Exclusion masks (optional)"),
                layerType=QgsProcessing.TypeFile,
                optional=True,
            ),
            "Optional masks, one per training scene in the same order: non-zero pixels (known "
            "anomalies) are left out of training.",
        )
        self.enum(
            self.RECIPE,
            "Training recipe",
            TRAINING_RECIPES,
            "default",
            "default: the recipe of the shipped default model; separation, separation-spectral: "
            "implanted-target separation under RX (with and without the spatial enhancer); "
            "published: the paper's FERD / FERS objectives.",
        )
        self.add(
            QgsProcessingParameterBoolean(
                self.USE_TRUTH, self.tr("Use ground truth found with the scenes"), defaultValue=True
            ),
            "Use the anomaly truth stored in a .mat scene or found beside a scene (e.g. SDDataGt.bmp) "
            "to leave its anomalies out of training and to choose epochs and candidates; the log names "
            "each truth file used. Off: no label is used.",
        )
        param = QgsProcessingParameterEnum(
            self.STAGES,
            self.tr("Stages to train (empty = the recipe's)"),
            options=list(STAGES),
            allowMultiple=True,
            optional=True,
            usesStaticStrings=True,
        )
        self.add(
            param,
            "A subset of the recipe's stages: pretrain, spectral and spatial (published recipe) "
            "or separation (separation recipes). Empty trains all of the recipe's stages. "
            "Choices: " + ", ".join(STAGES) + ".",
            advanced=True,
        )
        self.add(
            QgsProcessingParameterNumber(
                self.EPOCHS,
                self.tr("Epochs per stage (0 = the recipe's)"),
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=0,
                minValue=0,
                maxValue=100000,
            ),
            "Number of epochs for every stage; 0 keeps the recipe's.",
        )
        self.enum(
            self.DEVICE,
            "Device",
            DEVICES,
            "auto",
            "Where training runs: auto picks cuda when PyTorch sees a usable GPU, otherwise "
            "cpu. A requested cuda device that cannot be used gives a warning; the device "
            "that actually ran is logged and returned as DEVICE.",
        )
        self.add(
            QgsProcessingParameterBoolean(self.RESUME, self.tr("Resume from checkpoint"), defaultValue=False),
            "Continue a cancelled or interrupted training from the checkpoint beside the model "
            "file (same scenes and settings).",
        )
        self.add(
            QgsProcessingParameterNumber(
                self.SEED,
                self.tr("Random seed (-1 = the recipe's candidates)"),
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=-1,
                minValue=-1,
            ),
            "-1 trains every candidate seed of the recipe and keeps the best; a seed trains only "
            "that one. The same seed and inputs give the same model.",
            advanced=True,
        )
        self.add(
            QgsProcessingParameterNumber(
                self.STEPS_PER_EPOCH,
                self.tr("Steps per epoch (0 = engine default)"),
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=0,
                minValue=0,
            ),
            "Number of training batches per epoch; 0 keeps the recipe's (40). Fewer "
            "steps give quicker, rougher models.",
            advanced=True,
        )
        self.add(
            QgsProcessingParameterFileDestination(
                self.OUTPUT, self.tr("Model file"), fileFilter="Model files (*.safetensors)"
            ),
            "Where to write the trained model (.safetensors); its model card is written beside "
            "it with the extension .json.",
        )
        self.addOutput(QgsProcessingOutputFile("MODEL_CARD", self.tr("Model card (.json)")))
        self.addOutput(QgsProcessingOutputString("DEVICE", self.tr("Device that ran")))
        self.addOutput(
            QgsProcessingOutputNumber("LOSS", self.tr("Validation loss of the kept epoch (last stage)"))
        )
        self.addOutput(
            QgsProcessingOutputNumber(
                "VALIDATION_AUC", self.tr("Mean RX AUC of the kept model on the scenes' own truth")
            )
        )

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
                "in the same order, or none"
            )
        names = [n for n in self.parameterAsEnumStrings(parameters, self.STAGES, context) if n]
        stages = [STAGES[n] for n in names] or None
        recipe = self.enum_value(parameters, self.RECIPE, context) or "default"
        truth = "found" if self.parameterAsBool(parameters, self.USE_TRUTH, context) else "none"
        device = self.enum_value(parameters, self.DEVICE, context) or "auto"
        epochs = self.parameterAsInt(parameters, self.EPOCHS, context)
        steps = self.parameterAsInt(parameters, self.STEPS_PER_EPOCH, context)
        seed = self.parameterAsInt(parameters, self.SEED, context)
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if not out.lower().endswith(".safetensors"):
            out += ".safetensors"

        # the engine's lines go to the log once (through the bridge): a progress text would print
        # every epoch line a second time, since the Processing dialog logs progress texts too
        try:
            res = train(
                inputs,
                out,
                recipe=recipe,
                exclude=masks or None,
                truth=truth,
                stages=stages,
                epochs=epochs or None,
                steps_per_epoch=steps or None,
                seed=None if seed < 0 else seed,
                device=device,
                resume=self.parameterAsBool(parameters, self.RESUME, context),
                reporter=reporter,
            )
        except Cancelled:
            ckpt = checkpoint_paths(out)[0]
            if ckpt.exists():
                raise QgsProcessingException(
                    f"training was cancelled by the user; the last good checkpoint is kept at {ckpt} "
                    "(run again with RESUME=true to continue)"
                ) from None
            raise
        feedback.pushInfo(f"Device used: {res.device}; kept candidate {res.chosen}")
        if device == "cuda" and not res.device.startswith("cuda"):
            self.warn_once(feedback, "cuda", f"device cuda was requested but training ran on {res.device}")
        return {
            self.OUTPUT: str(res.model),
            "MODEL_CARD": str(res.card),
            "DEVICE": res.device,
            "LOSS": res.validation_loss,
            "VALIDATION_AUC": res.validation_auc,
        }
