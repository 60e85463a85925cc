"""What a desktop user does with FERS, run inside QGIS by ``scripts/desktop_smoke.py`` (``qgis --code``).

Not an importable module: QGIS executes this file on its main thread once the window is up. It
walks through the Processing Toolbox (the FERS group), the Detect anomalies dialog on a real
scene (Run clicked as a user clicks it), the loaded score and mask layers with their legend, the
shipped graphical model in the Graphical Modeler, and its run dialog; it grabs the screen after
each step and writes ``report.json`` with what it saw: every message of the Log Messages panel,
the layers and their legends, the model's validation, and the problems found. Each step waits on
a timer, so QGIS keeps painting and the background task of the run can finish.

Environment: FERS_SMOKE_OUT (folder for the screenshots and report.json), FERS_SMOKE_SCENE (the
scene to open), FERS_SMOKE_TIMEOUT (seconds the detect run may take).
"""

import json
import os
import time
import traceback

from qgis.core import Qgis, QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication, QTextEdit
from qgis.utils import iface

OUT = os.environ["FERS_SMOKE_OUT"]
SCENE = os.environ["FERS_SMOKE_SCENE"]
MAT_SCENE = os.environ.get("FERS_SMOKE_MAT", "")  # a .mat cube for the scene-file parameter, optional
RUN_TIMEOUT = float(os.environ.get("FERS_SMOKE_TIMEOUT", "600"))
LEVELS = {Qgis.Info: "info", Qgis.Warning: "warning", Qgis.Critical: "critical", Qgis.Success: "success"}


def dialog_log(dialog) -> str:
    """The text of a Processing dialog's Log tab (its QTextEdit ``txtLog``; the help panel is another)."""
    log = dialog.findChild(QTextEdit, "txtLog")
    return log.toPlainText() if log is not None else ""


class Smoke:
    def __init__(self):
        self.report = {"steps": [], "messages": [], "problems": [], "layers": [], "screenshots": []}
        self.dialog = None
        self.modeler = None
        self.started = 0.0
        QgsApplication.messageLog().messageReceived.connect(self.on_message)
        self.report["layers_added"] = []
        QgsProject.instance().layerWasAdded.connect(
            lambda lyr: self.report["layers_added"].append(
                [lyr.name(), [n.layer().name() for n in QgsProject.instance().layerTreeRoot().findLayers()]]
            )
        )
        self.expect_modal = False
        self.watchdog = QTimer()
        self.watchdog.timeout.connect(self.close_unexpected_modal)
        self.watchdog.start(2000)
        self.queue = [
            self.wait_for_plugin,
            self.toolbox,
            self.detect_dialog,
            self.run_detect,
            self.wait_for_layers,
            self.show_result,
            self.map_shot,
            self.graphical_model,
            self.model_dialog,
            self.batch,
            self.scene_file_run,
            self.wait_for_scene_file_layer,
            self.evaluate,
            self.train_without_torch,
            self.installer_from_menu,
            self.finish,
        ]

    # -- plumbing -----------------------------------------------------------------------------
    def on_message(self, message, tag, level):
        self.report["messages"].append({"tag": tag, "level": LEVELS.get(level, str(level)), "text": message})

    def close_unexpected_modal(self):
        """A message box nobody expected (a refused dialog, an error) would stop the run: note it, close it.
        (A running Processing dialog is modal too; it is left alone.)"""
        from qgis.PyQt.QtWidgets import QMessageBox

        modal = QApplication.activeModalWidget()
        if not isinstance(modal, QMessageBox) or self.expect_modal:
            return
        self.shot("unexpected_message")
        self.problem(f"an unexpected message box: {modal.windowTitle()}: {modal.text()}")
        modal.reject()

    def problem(self, text):
        self.report["problems"].append(text)

    def shot(self, name):
        QApplication.processEvents()
        path = os.path.join(OUT, name + ".png")
        QApplication.primaryScreen().grabWindow(0).save(path)
        self.report["screenshots"].append(path)

    def next(self, delay_ms=1500):
        QTimer.singleShot(delay_ms, self.step)

    def step(self):
        step = self.queue[0]
        try:
            again = step()
        except Exception:
            self.problem(f"{step.__name__}: {traceback.format_exc()}")
            again = False
        if again:  # the step waits for something: call it again later
            self.next(1000)
            return
        self.report["steps"].append(step.__name__)
        self.queue.pop(0)
        if self.queue:
            self.next()

    # -- the user's steps ---------------------------------------------------------------------
    def wait_for_plugin(self):
        from qgis import utils

        if "fers_qgis" in utils.active_plugins and QgsApplication.processingRegistry().providerById("fers"):
            # no window manager on a virtual screen: give the main window the whole screen by hand
            iface.mainWindow().setGeometry(QApplication.primaryScreen().availableGeometry())
            return False
        if time.time() - self.started > 60:
            raise RuntimeError(f"the FERS plugin is not active after 60 s: {utils.active_plugins}")
        return True

    def toolbox(self):
        """The Processing Toolbox with the FERS provider opened, every other provider closed."""
        from qgis import utils

        box = utils.plugins["processing"].toolbox
        box.setVisible(True)
        iface.mainWindow().resizeDocks([box], [440], Qt.Horizontal)
        tree = box.algorithmTree
        tree.collapseAll()
        model = tree.model()
        ids = []
        for row in range(model.rowCount()):
            provider = model.index(row, 0)
            if provider.data() != "FERS":
                continue
            tree.expand(provider)
            stack = [model.index(r, 0, provider) for r in range(model.rowCount(provider))]
            while stack:
                index = stack.pop()
                tree.expand(index)
                alg = tree.algorithmForIndex(index)
                if alg is not None:
                    ids.append(alg.id())
                    if alg.icon().isNull():
                        self.problem(f"{alg.id()} has no icon in the toolbox")
                stack += [model.index(r, 0, index) for r in range(model.rowCount(index))]
            tree.scrollTo(provider, tree.PositionAtTop)
        self.report["toolbox"] = sorted(ids)
        missing = {
            "fers:detect",
            "fers:threshold",
            "fers:evaluate",
            "fers:train",
            "fers:install_pytorch",
            "fers:detect_threshold_polygonize",
        } - set(ids)
        if missing:
            self.problem(f"the toolbox's FERS group does not list {sorted(missing)}")
        self.shot("toolbox")

    def detect_dialog(self):
        import processing

        layer = QgsRasterLayer(SCENE, os.path.basename(SCENE))
        if not layer.isValid():
            raise RuntimeError(f"QGIS cannot open {SCENE}")
        QgsProject.instance().addMapLayer(layer)
        self.scene_layer = layer
        iface.setActiveLayer(layer)
        fresh = processing.createAlgorithmDialog("fers:detect", {})  # what a user gets from the Toolbox
        self.report["fresh_dialog_input"] = str(fresh.mainWidget().createProcessingParameters().get("INPUT"))
        fresh.close()
        if self.report["fresh_dialog_input"] not in (layer.id(), layer.source()):
            self.problem(
                f"Detect anomalies does not offer the selected layer: {self.report['fresh_dialog_input']}"
            )
        params = {"INPUT": layer.id(), "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_MASK": "TEMPORARY_OUTPUT"}
        self.dialog = processing.createAlgorithmDialog("fers:detect", params)
        self.dialog.show()
        values = self.dialog.mainWidget().createProcessingParameters()
        self.report["dialog_parameters"] = {k: str(v) for k, v in values.items()}
        for key in ("CRD_LAMBDA", "THREADS", "NO_ORTHO", "NORTH_UP", "ENHANCER"):
            if key not in values:
                self.problem(f"the detect dialog has no value for {key}")
        from processing.tools.dataobjects import createContext

        ok, message = self.dialog.algorithm().checkParameterValues(values, createContext())
        if not ok:
            self.problem(f"the detect dialog's values do not validate: {message}")
        self.shot("detect_dialog")

    def run_detect(self):
        self.started = time.time()
        self.dialog.runButton().click()

    def wait_for_layers(self):
        names = [layer.name() for layer in QgsProject.instance().mapLayers().values()]
        if any(name.startswith("anomaly score") for name in names) and any(
            n.startswith("anomaly mask") for n in names
        ):
            self.report["run_seconds"] = round(time.time() - self.started, 1)
            return False
        if time.time() - self.started > RUN_TIMEOUT:
            raise RuntimeError(f"no score and mask layers after {RUN_TIMEOUT:.0f} s; layers: {names}")
        return True

    def show_result(self):
        self.shot("detect_log")
        self.report["dialog_log"] = dialog_log(self.dialog)
        if "Error" in self.report["dialog_log"] or "Traceback" in self.report["dialog_log"]:
            self.problem(f"the detect dialog's log shows an error: {self.report['dialog_log'][-1500:]}")
        self.dialog.close()
        root = QgsProject.instance().layerTreeRoot()
        view = iface.layerTreeView()
        order = [node.layer().name() for node in root.findLayers()]
        self.report["layer_order"] = order
        for node in root.findLayers():
            layer = node.layer()
            legend = [n.data(0) for n in view.layerTreeModel().layerLegendNodes(node)]
            index = view.node2index(node)
            entry = {
                "name": layer.name(),
                "legend": [str(t) for t in legend if t is not None],
                "expanded_node": node.isExpanded(),
                "expanded_view": view.isExpanded(index),
            }
            renderer = layer.renderer() if hasattr(layer, "renderer") else None
            if renderer is not None and renderer.type() == "singlebandpseudocolor":
                entry["stretch"] = [renderer.classificationMin(), renderer.classificationMax()]
            self.report["layers"].append(entry)
            if entry["expanded_node"] != entry["expanded_view"]:
                shown = "collapsed" if entry["expanded_node"] else "open"
                self.problem(f"the Layers panel shows {layer.name()} {shown}; its node says otherwise")
        expected = os.path.splitext(os.path.basename(SCENE))[0]
        if f"anomaly score - {expected}" not in order or f"anomaly mask - {expected}" not in order:
            self.problem(f"the output layers are not named after what they are and their input: {order}")
        elif order.index(f"anomaly mask - {expected}") > order.index(f"anomaly score - {expected}"):
            self.problem(f"the mask loaded under its score: {order}")
        score = next((e for e in self.report["layers"] if e["name"].startswith("anomaly score")), None)
        if score is not None and score.get("stretch") in (None, [0.0, 1.0]):
            self.problem(f"the score layer is not stretched to its data: {score}")
        iface.setActiveLayer(self.scene_layer)
        iface.mapCanvas().setExtent(self.scene_layer.extent())
        iface.mapCanvas().refresh()
        return False

    def map_shot(self):
        if iface.mapCanvas().isDrawing():
            return True
        iface.messageBar().clearWidgets()  # QGIS's own notices (e.g. a datum grid it lacks), not FERS's
        self.shot("result")

    def graphical_model(self):
        from processing.modeler.ModelerDialog import ModelerDialog

        if self.modeler is None:
            alg = QgsApplication.processingRegistry().createAlgorithmById("fers:detect_threshold_polygonize")
            ok, errors = alg.validate()
            self.report["model_validate"] = [ok, list(errors)]
            if not ok:
                self.problem(f"the graphical model does not validate: {errors}")
            self.modeler = ModelerDialog.create(alg)
            self.modeler.setGeometry(QApplication.primaryScreen().availableGeometry())
            self.modeler.show()
            return True  # paint it before the screenshot
        if not getattr(self, "modeler_fitted", False):
            view = self.modeler.view()
            view.fitInView(view.scene().itemsBoundingRect(), Qt.KeepAspectRatio)
            self.modeler_fitted = True
            return True
        self.shot("modeler")
        self.modeler.hide()  # closing may ask whether to save it, a modal question nobody answers

    def model_dialog(self):
        """The shipped model's own dialog on the scene layer, Run clicked: score, mask and polygons load."""
        import processing

        if getattr(self, "model_run_dialog", None) is None:
            self.layers_before = set(QgsProject.instance().mapLayers())
            self.model_run_dialog = processing.createAlgorithmDialog(
                "fers:detect_threshold_polygonize", {"INPUT": self.scene_layer.id()}
            )
            self.model_run_dialog.show()
            return True
        if not getattr(self, "model_started", 0.0):
            self.shot("model_dialog")
            self.model_started = time.time()
            self.model_run_dialog.runButton().click()
            return True
        new = [
            QgsProject.instance().mapLayer(i)
            for i in set(QgsProject.instance().mapLayers()) - self.layers_before
        ]
        if len(new) < 3:
            if time.time() - self.model_started > RUN_TIMEOUT:
                raise RuntimeError(
                    f"the model loaded {[lyr.name() for lyr in new]} after {RUN_TIMEOUT:.0f} s"
                )
            return True
        log = dialog_log(self.model_run_dialog)
        self.report["model_run_log"] = log
        self.report["model_run_layers"] = {
            lyr.name(): lyr.renderer().type()
            if hasattr(lyr, "renderer") and lyr.renderer()
            else lyr.geometryType()
            for lyr in new
        }
        self.shot("model_run")
        order = [node.layer().id() for node in QgsProject.instance().layerTreeRoot().findLayers()]
        names = {lyr.name(): order.index(lyr.id()) for lyr in new}
        expected = os.path.splitext(os.path.basename(SCENE))[0]
        score, mask = f"anomaly score - {expected}", f"anomaly mask - {expected}"
        if score not in names or mask not in names:
            self.problem(f"the model's layers are not named after the scene: {sorted(names)}")
        elif names[mask] > names[score]:  # the model's polygons may load in between: both stay visible
            self.problem(f"the model's mask is under its score: {names}")
        if "Error" in log or "Traceback" in log or "not correctly generated" in log:
            self.problem(f"the model run's log shows an error: {log[-1500:]}")
        self.model_run_dialog.close()

    def batch(self):
        """Run as Batch Process with one row: the scene in, a score file out, the mask left unset, the
        results loaded (Load layers on completion)."""
        from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
        from processing.tools.dataobjects import createContext

        alg = QgsApplication.processingRegistry().createAlgorithmById("fers:detect")
        dialog = BatchAlgorithmDialog(alg, iface.mainWindow())
        dialog.setGeometry(QApplication.primaryScreen().availableGeometry())
        dialog.show()
        panel = dialog.mainWidget()
        if panel.batchRowCount() == 0:
            panel.addRow()
        panel.checkLoadLayersOnCompletion.setChecked(True)
        panel.wrappers[0][panel.parameter_to_column["INPUT"]].setParameterValue(SCENE, createContext())
        panel.tblParameters.cellWidget(1, panel.parameter_to_column["OUTPUT"]).setValue(
            os.path.join(OUT, "batch_score.tif")
        )
        dialog.runAlgorithm()  # runs the rows in the main thread, as the Run button does
        QApplication.processEvents()
        self.report["batch_log"] = dialog_log(dialog)
        self.report["batch_layers"] = [
            node.layer().name() for node in QgsProject.instance().layerTreeRoot().findLayers()
        ]
        self.shot("batch")
        if "not correctly generated" in self.report["batch_log"] or "failed" in self.report["batch_log"]:
            self.problem(f"batch run: {self.report['batch_log'][-1500:]}")
        if not os.path.exists(os.path.join(OUT, "batch_score.tif")):
            self.problem("the batch run wrote no score file")
        dialog.hide()

    def scene_file_run(self):
        """Detect on a .mat cube through the scene-file parameter, as a user who browses to the file."""
        import processing

        if not MAT_SCENE:
            return False
        self.file_dialog = processing.createAlgorithmDialog(
            "fers:detect", {"INPUT_FILE": MAT_SCENE, "OUTPUT": "TEMPORARY_OUTPUT"}
        )
        self.file_dialog.show()
        self.started = time.time()
        self.file_dialog.runButton().click()

    def wait_for_scene_file_layer(self):
        if not MAT_SCENE:
            return False
        expected = "anomaly score - " + os.path.splitext(os.path.basename(MAT_SCENE))[0]
        names = [layer.name() for layer in QgsProject.instance().mapLayers().values()]
        if expected not in names:
            if time.time() - self.started > RUN_TIMEOUT:
                raise RuntimeError(f"no layer {expected!r} after {RUN_TIMEOUT:.0f} s; layers: {names}")
            return True
        self.report["scene_file_log"] = dialog_log(self.file_dialog)
        self.shot("scene_file_run")
        if "Error" in self.report["scene_file_log"] or "Traceback" in self.report["scene_file_log"]:
            self.problem(f"the .mat run's log shows an error: {self.report['scene_file_log'][-1500:]}")
        self.file_dialog.close()

    def run_dialog(self, alg_id, params, name):
        """Open an algorithm's dialog with ``params``, click Run, and wait (call again) until it is done."""
        import processing

        state = getattr(self, "dialog_runs", {}).get(name)
        if state is None:
            dialog = processing.createAlgorithmDialog(alg_id, params)
            dialog.show()
            self.dialog_runs = {**getattr(self, "dialog_runs", {}), name: (dialog, time.time())}
            dialog.runButton().click()
            return None
        dialog, started = state
        log = dialog_log(dialog)
        if "finished" in log or "failed" in log.lower() or "Execution completed" in log:
            QApplication.processEvents()
            self.shot(name)
            log = dialog_log(dialog)
            self.report[f"{name}_log"] = log
            dialog.close()
            return log
        if time.time() - started > RUN_TIMEOUT:
            raise RuntimeError(f"{alg_id} did not finish in {RUN_TIMEOUT:.0f} s: {log[-500:]}")
        return None

    def evaluate(self):
        """Evaluate anomaly scores on the first run's score layer against the scene's ground truth."""
        truth = os.path.join(os.path.dirname(SCENE), os.path.basename(SCENE) + "Gt.bmp")
        if not os.path.exists(truth):
            return False
        score = next(
            lyr
            for lyr in QgsProject.instance().mapLayers().values()
            if lyr.name() == "anomaly score - " + os.path.basename(SCENE)
        )
        log = self.run_dialog(
            "fers:evaluate",
            {"SCORE": score.id(), "GROUND_TRUTH": truth, "OUTPUT_HTML": "TEMPORARY_OUTPUT"},
            "evaluate",
        )
        if log is None:
            return True
        if "AUC" not in log or "Error" in log or "Traceback" in log:
            self.problem(f"evaluate: {log[-1500:]}")

    def train_without_torch(self):
        """Train enhancer in a QGIS without PyTorch: one line that says how to get it, nothing written."""
        target = os.path.join(OUT, "trained.safetensors")
        log = self.run_dialog("fers:train", {"INPUTS": [SCENE], "OUTPUT": target}, "train_without_torch")
        if log is None:
            return True
        if "Install PyTorch for FERS" not in log or "Traceback" in log:
            self.problem(f"train without torch does not say how to get PyTorch: {log[-1500:]}")
        if os.path.exists(target):
            self.problem("train without torch wrote a model file")

    def installer_from_menu(self):
        """Plugins > FERS > Install PyTorch for FERS… opens the installer's dialog (not run: no network)."""
        from qgis.PyQt.QtWidgets import QMenu

        actions = [
            a
            for menu in iface.mainWindow().findChildren(QMenu)
            if menu.title() == "&FERS"
            for a in menu.actions()
            if a.text().startswith("Install PyTorch for FERS")
        ]
        if not actions:
            self.problem("the Plugins menu has no FERS > Install PyTorch for FERS… entry")
            return False

        def look_and_close():
            shown = [
                w
                for w in QApplication.topLevelWidgets()
                if w.isVisible() and "Install PyTorch" in w.windowTitle()
            ]
            self.shot("installer")
            self.report["installer_dialog"] = [w.windowTitle() for w in shown]
            if not shown:
                self.problem("Install PyTorch for FERS… opened no dialog")
            for dialog in shown:
                dialog.reject()  # ends the dialog's exec()

        QTimer.singleShot(3000, look_and_close)  # the dialog is modal: this runs inside its event loop
        self.expect_modal = True
        try:
            actions[0].trigger()
        finally:
            self.expect_modal = False

    def finish(self):
        self.report["python_errors"] = [
            m for m in self.report["messages"] if m["tag"] == "Python error" or "Traceback" in m["text"]
        ]
        for m in self.report["python_errors"]:
            self.problem(f"Python error in the log panel: {m['text'][:500]}")
        with open(os.path.join(OUT, "report.json"), "w", encoding="utf-8") as fh:
            json.dump(self.report, fh, indent=1, default=str)
        QgsProject.instance().clear()
        QgsProject.instance().setDirty(False)
        QTimer.singleShot(500, QApplication.instance().quit)


_smoke = Smoke()
_smoke.started = time.time()
import qgis.utils as _utils  # noqa: E402

_utils._fers_desktop_smoke = _smoke  # keep the object (and its timers' slots) alive
_smoke.next(3000)
