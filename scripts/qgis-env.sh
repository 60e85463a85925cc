# Sourced by the Makefile's recipes and scripts: the environment headless QGIS needs.
# QGIS_PLUGINPATH is the folder that holds fers_qgis/; FERS_VENV lets the plugin's bootstrap
# add the venv's site-packages (torch, numba) inside qgis_process's embedded Python.
_FERS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export QT_QPA_PLATFORM=offscreen
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export QGIS_PLUGINPATH="$_FERS_ROOT"
export FERS_VENV="$_FERS_ROOT/.venv"
