"""fers:detect - anomaly score raster (and optional binary mask) from a hyperspectral raster."""

from __future__ import annotations

import glob
import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from fers_engine.choices import (
    BAND_MODES,
    DEFAULT_CRD_LAMBDA,
    DEFAULT_DETECTOR,
    DEFAULT_ENHANCER,
    DETECTORS,
    DEVICES,
    ENHANCERS,
    FUSIONS,
    LOCAL_COVARIANCES,
    THRESHOLD_METHODS,
)

from ..scene_input import active_raster_layer_id, scene_file_filter, scene_input, scene_input_problem
from ..styling import attach_outputs
from ..threads import workers_for
from .base import FersAlgorithm

DEFAULT_MODEL = "default"
THRESHOLD_DEFAULTS = {"percentile": 99.0, "false_alarm_rate": 0.01, "otsu": 0.0}


def bundled_models():
    """Names of the models shipped with the engine: ``<repo>/models/*.safetensors``, the folder
    ``fers_engine.nets.enhancer`` resolves names from (read here without importing torch)."""
    try:
        import fers_engine

        root = os.path.dirname(os.path.dirname(os.path.abspath(fers_engine.__file__)))
    except ImportError:
        return []
    paths = sorted(glob.glob(os.path.join(root, "models", "*.safetensors")))
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    # training checkpoints (<name>.ckpt.safetensors) are not models
    return [n for n in dict.fromkeys(names) if n and n != DEFAULT_MODEL and not n.endswith(".ckpt")]


def threshold_value_or_default(method: str, value):
    """THRESHOLD_VALUE / VALUE may be left empty: each method has a sensible default."""
    if value is not None:
        return float(value)
    if method == "value":
        raise QgsProcessingException(
            "the 'value' threshold method needs a threshold value (VALUE / THRESHOLD_VALUE)"
        )
    return THRESHOLD_DEFAULTS[method]


THRESHOLD_HELP = (
    "What the threshold value means depends on the method: percentile = the percentile of the "
    "valid scores above which a pixel is an anomaly (default 99); false_alarm_rate = the "
    "fraction of valid pixels allowed above the threshold (default 0.01); value = an absolute "
    "score; otsu = ignored (the threshold is found automatically)."
)


def detect_on_cluster(src, out, options, address, reporter, **outputs):
    """The engine's split detect on the scheduler at ``address`` (never a local cluster: QGIS's
    executable cannot start Python worker processes)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise QgsProcessingException(
            "CLUSTER needs the dask and distributed packages in QGIS's Python (the versions the "
            "cluster's workers run); leave CLUSTER empty to run in QGIS"
        ) from None
    from fers_engine.cluster import detect_split

    return detect_split(src, out, options, scheduler=address, reporter=reporter, **outputs)


class DetectAlgorithm(FersAlgorithm):
    INPUT = "INPUT"
    INPUT_FILE = "INPUT_FILE"
    BANDS = "BANDS"
    WAVELENGTHS = "WAVELENGTHS"
    KEEP_BAD_BANDS = "KEEP_BAD_BANDS"
    MODEL = "MODEL"
    MODEL_FILE = "MODEL_FILE"
    ENHANCER = "ENHANCER"
    DETECTOR = "DETECTOR"
    WINDOW_INNER = "WINDOW_INNER"
    WINDOW_OUTER = "WINDOW_OUTER"
    LOCAL_COVARIANCE = "LOCAL_COVARIANCE"
    CRD_LAMBDA = "CRD_LAMBDA"
    THREADS = "THREADS"
    NO_ORTHO = "NO_ORTHO"
    NORTH_UP = "NORTH_UP"
    FUSION = "FUSION"
    BAND_MODE = "BAND_MODE"
    DEVICE = "DEVICE"
    BLOCK_SIZE = "BLOCK_SIZE"
    OUTPUT = "OUTPUT"
    OUTPUT_MASK = "OUTPUT_MASK"
    THRESHOLD_METHOD = "THRESHOLD_METHOD"
    THRESHOLD_VALUE = "THRESHOLD_VALUE"
    THRESHOLD = "THRESHOLD"
    CLUSTER = "CLUSTER"

    NAME = "detect"
    DISPLAY = "Detect anomalies"
    HELP = """
Finds pixels whose spectrum does not fit the background of a hyperspectral raster and writes an anomaly score raster (float32, one band, higher = more anomalous, nodata where the input is nodata). The output keeps the input's CRS, size and geotransform.
Method: optional background-feature enhancers (a trained network, see Train enhancer) transform the spectra, then a detector scores every pixel against its background: CRD (crd) represents each pixel by the pixels of a ring window around it (its regularisation is CRD_LAMBDA, advanced), global RX (rx) uses the statistics of the whole scene, local RX (lrx) those of the same ring, and crd+rx is the geometric mean of CRD and global RX: high only where a pixel is unusual both locally and in the whole scene. The default is the spectral enhancer with crd+rx: the detector chosen on training labels, and the enhancer the benchmark's ablation favours; the paper's full method is ENHANCER=full with DETECTOR=rx, several times faster. The windowed detectors use as many threads as QGIS's Processing setting allows (THREADS, advanced).
Sensor products given as a scene file are read with their wavelengths, good bands, scale and georeference; EMIT is written on its north-up map grid unless NO_ORTHO is set, and rotated AVIRIS lines keep their rotated grid unless NORTH_UP is set (both advanced).
ENHANCER=none runs the classical detector alone; spectral and full run the enhancers of a model (the bundled one or a model file). A CUDA GPU (DEVICE=auto or cuda) needs PyTorch: see Install PyTorch for FERS.
The raster is processed in row blocks, so large scenes fit in memory; the log says which device (cpu or cuda) actually ran. Cancel stops after the current block and leaves no partial output.
Optionally a binary mask (1 = anomaly, 0 = background, 255 = nodata) is written with the chosen threshold method.
With a Dask scheduler address (CLUSTER, advanced) the row blocks are computed by the cluster's workers instead of in QGIS.
"""

    def define(self, config=None):
        layer = self.add(
            QgsProcessingParameterRasterLayer(
                self.INPUT, self.tr("Hyperspectral raster layer"), optional=True
            ),
            "The multi-band raster to search (GeoTIFF, ENVI or any raster GDAL reads), from the "
            "project or a file. Nodata pixels are ignored and stay nodata in the output. Give either "
            "this or a scene file (a scene file, when given, is read instead).",
        )
        active = active_raster_layer_id()
        if active:  # the dialog offers the selected layer first, as QGIS does for mandatory layers
            layer.setGuiDefaultValueOverride(active)
        self.add(
            QgsProcessingParameterFile(
                self.INPUT_FILE,
                self.tr("…or a scene file (.mat, sensor product)"),
                behavior=QgsProcessingParameterFile.File,
                fileFilter=scene_file_filter(),
                optional=True,
            ),
            "A scene that QGIS cannot open as a layer, read by FERS itself: a MATLAB .mat cube or a "
            "sensor product as delivered (EMIT .nc, PRISMA or Tanager .he5, EnMAP METADATA.XML or "
            "its ZIP, ...). The output lies where the product lies on the map. Give either this or "
            "a raster layer.",
        )
        self.add(
            QgsProcessingParameterBand(
                self.BANDS,
                self.tr("Bands to use (empty = all good bands)"),
                parentLayerParameterName=self.INPUT,
                optional=True,
                allowMultiple=True,
            ),
            "Optional subset of bands (1-based band numbers as in QGIS). Empty uses every band "
            "except those flagged bad in the raster's metadata.",
        )
        self.add(
            QgsProcessingParameterString(
                self.WAVELENGTHS, self.tr("Wavelength ranges to use, nm (empty = all)"), optional=True
            ),
            "Optional wavelength ranges in nanometres, e.g. 400-1340,1450-1800: only bands whose "
            "centre lies inside are used. Works for raster layers and scene files alike (sensor "
            "products carry their wavelengths), like fers detect --wavelengths.",
            advanced=True,
        )
        self.add(
            QgsProcessingParameterBoolean(
                self.KEEP_BAD_BANDS, self.tr("Keep bands flagged bad"), defaultValue=False
            ),
            "Use the bands the input's metadata flags bad (ENVI bbl, a product's water-absorption "
            "or no-data bands) too; by default they are left out, like fers detect without "
            "--keep-bad-bands.",
            advanced=True,
        )
        self.enum(
            self.ENHANCER,
            "Enhancer",
            ENHANCERS,
            DEFAULT_ENHANCER,
            "Background-feature enhancement before detection. spectral (default): the spectral "
            "enhancer; full: spectral and spatial enhancers fused (the paper's full method; with "
            "crd+rx it does not beat spectral on the benchmark); none: classical detector only.",
        )
        models = [DEFAULT_MODEL] + bundled_models()
        self.enum(
            self.MODEL,
            "Bundled model",
            models,
            DEFAULT_MODEL,
            "Which bundled enhancer model to use when ENHANCER is not none; 'default' lets "
            "the engine pick its default model. Ignored when a model file is given.",
        )
        self.add(
            QgsProcessingParameterFile(
                self.MODEL_FILE,
                self.tr("Model file (overrides the bundled model)"),
                behavior=QgsProcessingParameterFile.File,
                extension="safetensors",
                optional=True,
            ),
            "Optional path to a model trained with Train enhancer (.safetensors with its .json "
            "model card beside it).",
        )
        self.enum(
            self.DETECTOR,
            "Detector",
            DETECTORS,
            DEFAULT_DETECTOR,
            "crd+rx (default): the geometric mean of crd and rx, high only where a pixel is unusual "
            "both against its ring and against the whole scene (the detector chosen on training "
            "labels); crd: collaborative representation of each pixel by the "
            "pixels between an inner guard window and an outer background window; rx: global RX "
            "(Mahalanobis distance to the scene's background; several times faster on large "
            "scenes); lrx: local RX on the same two windows.",
        )
        self.add(
            QgsProcessingParameterNumber(
                self.WINDOW_INNER,
                self.tr("Inner guard window (crd, crd+rx, lrx; pixels, odd)"),
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=3,
                minValue=1,
            ),
            "Side of the inner guard window excluded from the local background (lrx, crd, crd+rx; odd).",
        )
        self.add(
            QgsProcessingParameterNumber(
                self.WINDOW_OUTER,
                self.tr("Outer window (crd, crd+rx, lrx; pixels, odd)"),
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=15,
                minValue=3,
            ),
            "Side of the outer window whose ring is the local background (lrx, crd, crd+rx; odd, larger "
            "than the inner window).",
        )
        self.enum(
            self.LOCAL_COVARIANCE,
            "Local RX covariance",
            LOCAL_COVARIANCES,
            "auto",
            "Background covariance of local RX (lrx only): ring = each ring's own covariance; "
            "scene = the scene covariance with each ring's mean; auto = ring when the ring holds "
            "at least 2 pixels per band (the Reed-Mallett-Brennan rule), scene otherwise. The "
            "log says which ran and why. With fewer ring pixels than bands every ring "
            "covariance is singular and ring mode becomes very slow.",
        )
        self.add(
            QgsProcessingParameterNumber(
                self.CRD_LAMBDA,
                self.tr("CRD regularisation (lambda)"),
                type=QgsProcessingParameterNumber.Double,
                defaultValue=DEFAULT_CRD_LAMBDA,
                minValue=0.0,
            ),
            "The distance-weighted regularisation of the crd detector (crd and crd+rx; above 0). The "
            f"default {DEFAULT_CRD_LAMBDA:g} is one value for every scene (it does not depend on the data's "
            "scale), the best mean AUC on the development scenes.",
            advanced=True,
        )
        self.enum(
            self.FUSION,
            "Fusion of enhanced detections",
            FUSIONS,
            "sum",
            "How the detections on the spectral and spatial features are combined when "
            "ENHANCER=full: sum of the features (default) or hadamard product of the score maps.",
        )
        self.enum(
            self.BAND_MODE,
            "Band matching to the model",
            BAND_MODES,
            "resample",
            "How the raster's bands are matched to the bands the model was trained on: "
            "resample interpolates the spectra to the model's wavelengths (needs wavelengths in "
            "the raster's metadata); first takes the first bands in order.",
            advanced=True,
        )
        self.enum(
            self.DEVICE,
            "Device",
            DEVICES,
            "auto",
            "Where the enhancer network runs: auto picks cuda when PyTorch sees a usable GPU, "
            "otherwise cpu. A requested cuda device that cannot be used gives a warning in the "
            "log; the device that actually ran is logged and returned as DEVICE.",
        )
        self.add(
            QgsProcessingParameterNumber(
                self.BLOCK_SIZE,
                self.tr("Block size (rows per block, 0 = automatic)"),
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=0,
                minValue=0,
            ),
            "Number of raster rows read per block; 0 sizes blocks from a memory budget. "
            "Smaller blocks use less memory and react faster to Cancel.",
            advanced=True,
        )
        self.add(
            QgsProcessingParameterNumber(
                self.THREADS,
                self.tr("Threads (0 = QGIS's Processing setting)"),
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=0,
                minValue=0,
            ),
            "Threads of the windowed detectors (lrx, crd, crd+rx) for this scene. 0 follows QGIS: the Max "
            "Threads setting of Processing (Settings > Options > Processing > General), and where "
            "that is unset or -1, every core QGIS may use.",
            advanced=True,
        )
        self.add(
            QgsProcessingParameterBoolean(
                self.NO_ORTHO, self.tr("Keep the swath geometry (EMIT)"), defaultValue=False
            ),
            "EMIT products: write the scores in the swath's own rows and columns (no map "
            "georeference) instead of on the product's north-up map grid (its GLT). Other inputs "
            "ignore it.",
            advanced=True,
        )
        self.add(
            QgsProcessingParameterBoolean(
                self.NORTH_UP, self.tr("Write north-up (rotated AVIRIS lines)"), defaultValue=False
            ),
            "AVIRIS flight lines with a rotated map grid: write the scores on a north-up grid (the "
            "input pixel under each map pixel centre) instead of the line's rotated geotransform, "
            "for software that cannot show rotated rasters. Detection runs in the line's own "
            "geometry either way. Other inputs ignore it.",
            advanced=True,
        )
        self.add(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Anomaly score")),
            "The anomaly score raster to write (float32 GeoTIFF, nodata where the input is nodata).",
        )
        self.add(
            QgsProcessingParameterRasterDestination(
                self.OUTPUT_MASK, self.tr("Anomaly mask"), optional=True, createByDefault=False
            ),
            "Optional binary mask (uint8: 1 anomaly, 0 background, 255 nodata) thresholded "
            "from the scores with THRESHOLD_METHOD and THRESHOLD_VALUE.",
        )
        self.enum(
            self.THRESHOLD_METHOD,
            "Threshold method (for the mask)",
            THRESHOLD_METHODS,
            "percentile",
            "How the mask threshold is chosen (used only when OUTPUT_MASK is set).",
        )
        self.add(
            QgsProcessingParameterNumber(
                self.THRESHOLD_VALUE,
                self.tr("Threshold value (empty = method default)"),
                type=QgsProcessingParameterNumber.Double,
                optional=True,
            ),
            THRESHOLD_HELP,
        )
        self.add(
            QgsProcessingParameterString(
                self.CLUSTER, self.tr("Dask scheduler address (empty = run in QGIS)"), optional=True
            ),
            "Address of a running Dask scheduler, e.g. tcp://head:8786, whose workers have the same "
            "FERS version and see the same files as QGIS. The scene's row blocks are then read, "
            "enhanced and scored by the workers and QGIS writes the result: the same scores within "
            "1e-5 relative. Empty runs everything in QGIS. Needs the dask and distributed packages "
            "in QGIS's Python.",
            advanced=True,
        )
        self.addOutput(QgsProcessingOutputString("DEVICE", self.tr("Device that ran")))
        self.addOutput(QgsProcessingOutputNumber(self.THRESHOLD, self.tr("Threshold used for the mask")))

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API)
        """Exactly one input: checked before the run, so the dialog says it instead of failing later."""
        ok, message = super().checkParameterValues(parameters, context)
        if ok:
            message = scene_input_problem(self, parameters, context, self.INPUT, self.INPUT_FILE)
            ok = not message
        if ok:
            try:
                self.wavelength_ranges(parameters, context)
            except Exception as exc:  # the engine's InputError: its one line says what to type
                ok, message = False, f"{self.WAVELENGTHS}: {exc}"
        return ok, message

    def wavelength_ranges(self, parameters, context):
        """WAVELENGTHS as the engine's (low, high) nm pairs, None when empty (read as the CLI reads it)."""
        from fers_engine.cli import parse_ranges

        text = (self.parameterAsString(parameters, self.WAVELENGTHS, context) or "").strip()
        return parse_ranges(text, integers=False) if text else None

    def process(self, parameters, context, feedback, reporter):
        from fers_engine.io.open import ReaderOptions
        from fers_engine.pipeline import DetectOptions, detect

        src, source_name = scene_input(self, parameters, context, self.INPUT, self.INPUT_FILE, feedback)
        bands = self.parameterAsInts(parameters, self.BANDS, context) or []
        enhancer = self.enum_value(parameters, self.ENHANCER, context) or DEFAULT_ENHANCER
        detector = self.enum_value(parameters, self.DETECTOR, context) or DEFAULT_DETECTOR
        fusion = self.enum_value(parameters, self.FUSION, context) or "sum"
        device = self.enum_value(parameters, self.DEVICE, context) or "auto"
        model_file = self.parameterAsFile(parameters, self.MODEL_FILE, context)
        model_name = self.enum_value(parameters, self.MODEL, context) or DEFAULT_MODEL
        model = model_file or (None if model_name == DEFAULT_MODEL else model_name)
        block = self.parameterAsInt(parameters, self.BLOCK_SIZE, context)
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        mask = self.optional_output_layer(parameters, self.OUTPUT_MASK, context)
        method = self.enum_value(parameters, self.THRESHOLD_METHOD, context) or "percentile"
        tv = parameters.get(self.THRESHOLD_VALUE)
        tvalue = (
            threshold_value_or_default(
                method,
                self.parameterAsDouble(parameters, self.THRESHOLD_VALUE, context)
                if tv not in (None, "")
                else None,
            )
            if mask
            else None
        )

        options = DetectOptions(
            detector=detector,
            inner=self.parameterAsInt(parameters, self.WINDOW_INNER, context),
            outer=self.parameterAsInt(parameters, self.WINDOW_OUTER, context),
            local_covariance=self.enum_value(parameters, self.LOCAL_COVARIANCE, context) or "auto",
            crd_lambda=self.parameterAsDouble(parameters, self.CRD_LAMBDA, context),
            bands=[b - 1 for b in bands] if bands else None,
            wavelength_ranges=self.wavelength_ranges(parameters, context),
            drop_bad_bands=not self.parameterAsBoolean(parameters, self.KEEP_BAD_BANDS, context),
            enhancer=enhancer,
            model=model,
            fusion=fusion,
            band_mode=self.enum_value(parameters, self.BAND_MODE, context) or "resample",
            device=device,
            block_rows=block if block > 0 else None,
            workers=workers_for(self.parameterAsInt(parameters, self.THREADS, context)),
            reader=ReaderOptions(
                ortho=not self.parameterAsBoolean(parameters, self.NO_ORTHO, context),
                north_up=self.parameterAsBoolean(parameters, self.NORTH_UP, context),
            ),
        )
        self.track_output(out)
        if mask:
            self.track_output(mask)
        feedback.pushInfo(f"FERS detect: {src} -> {out}")
        address = (self.parameterAsString(parameters, self.CLUSTER, context) or "").strip()
        if address:
            feedback.pushInfo(f"Running on the Dask cluster at {address}")
            result = detect_on_cluster(
                src,
                out,
                options,
                address,
                reporter,
                mask_output=mask,
                threshold_method=method if mask else None,
                threshold_value=tvalue,
            )
        else:
            # a missing package surfaces as ImportError; the base class names it (torch or another)
            result = detect(
                src,
                out,
                options,
                reporter,
                mask_output=mask,
                threshold_method=method if mask else None,
                threshold_value=tvalue,
            )
        used = str(result.device)
        feedback.pushInfo(f"Device used: {used}")
        if device == "cuda" and not used.startswith("cuda"):
            self.warn_once(feedback, "cuda", f"device cuda was requested but the run used {used}")
        attach_outputs(context, source_name, score=out, mask=mask or "")
        return {
            self.OUTPUT: str(result.output),
            self.OUTPUT_MASK: str(result.mask_output) if result.mask_output else None,
            "DEVICE": used,
            self.THRESHOLD: result.threshold,
        }
