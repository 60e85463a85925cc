"""The named choices the engine accepts, in one light module.

The QGIS plugin builds its enum parameters from these at load time, so this module imports
nothing heavy (no numpy, no GDAL, no torch): the plugin must load even where those fail.
"""

#: rx: global RX; lrx: local (dual-window) RX; crd: collaborative representation (dual window).
DETECTORS = ("rx", "lrx", "crd")
#: Local RX background covariance: per ring, the scene's, or chosen by the ring's pixel count.
LOCAL_COVARIANCES = ("auto", "ring", "scene")
ENHANCERS = ("none", "spectral", "full")
FUSIONS = ("sum", "hadamard")
DEVICES = ("auto", "cpu", "cuda")
BAND_MODES = ("resample", "first")
THRESHOLD_METHODS = ("percentile", "false_alarm_rate", "value", "otsu")
#: Each threshold method's own value when none is given: the 99th percentile and a false-alarm
#: rate of 0.01 both flag about the top 1 % of valid pixels; 'value' needs a number; otsu takes none.
THRESHOLD_DEFAULTS = {"percentile": 99.0, "false_alarm_rate": 0.01}
CHECKPOINT_SELECTIONS = ("detection", "loss")
#: Training recipes (fers_engine.nets.recipes); "default" is the recipe of the shipped default model.
TRAINING_RECIPES = ("default", "separation", "separation-spectral", "published")
#: Which anomaly truth training uses: what is stored in or found beside each input, or none.
TRUTH_POLICIES = ("found", "none")
#: What ``fers detect`` / fers:detect / the demo run without options (the one place they are set):
#: the paper's full method, enhancers + global RX. The pairing every model picks on its own labelled
#: training files is the spectral enhancer with CRD (bench/detector_choice.py), more accurate on the
#: held-out windows (bench/results/accuracy.md) and far slower; making it the default is one change
#: here, plus the tests and benchmarks that mean RX when they leave the detector out.
DEFAULT_ENHANCER = "full"
DEFAULT_DETECTOR = "rx"
#: CRD's distance-weighted regularisation: one fixed value for every scene (it is scale-free),
#: the best mean AUC on the development scenes (bench/crd_lambda.py, bench/results/crd_lambda.md).
DEFAULT_CRD_LAMBDA = 0.1
