#!/usr/bin/env bash
# Idempotent set-up of everything FERS needs on Debian 12: QGIS 3.22 from Debian, a venv on the
# system Python (so qgis.core, osgeo.gdal and torch share one interpreter; all raster I/O goes
# through Debian's osgeo.gdal, so there is one GDAL), and the plugin enabled for headless
# qgis_process. Safe to run again: a second run takes seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"; cd "$ROOT"
VENV="$ROOT/.venv"
STAMP="$VENV/.fers-setup-stamp"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

APT_PACKAGES="qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-venv"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  log "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $APT_PACKAGES >/dev/null
fi

# Debian 3.22 bug (qgis/QGIS#57683): the qgis_process wrapper passes --noversioncheck, which
# qgis_process.bin rejects. Empty QGIS_OPTS once.
if grep -q "^QGIS_OPTS=.*noversioncheck" /etc/default/qgis 2>/dev/null; then
  log "fixing /etc/default/qgis (QGIS_OPTS)"
  $SUDO sed -i "s/^QGIS_OPTS=.*/QGIS_OPTS=''/" /etc/default/qgis
fi

# The venv must be made by Debian's Python: pyenv's python3 (first on PATH) cannot see qgis.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV on /usr/bin/python3"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
if [ ! -f "$STAMP" ] || [ constraints.txt -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  log "installing Python packages into the venv"
  # pip's "... is ignored" notes are filtered out; with pipefail a failed install still stops
  # set-up (only grep's own "nothing left to print" status is forgiven).
  quiet_pip() { "$PY" -m pip "$@" 2>&1 | { grep -v "is ignored" || true; }; }
  quiet_pip install -q --disable-pip-version-check --upgrade "pip>=24"
  quiet_pip install -q --disable-pip-version-check -c constraints.txt \
      torch==2.13.0 numpy scipy numba safetensors tqdm dask distributed threadpoolctl spectral h5py \
      pytest pytest-qgis ruff mypy
  "$PY" -m pip install -q --disable-pip-version-check -c constraints.txt --no-deps -e . >"$VENV/.fers-editable.log" 2>&1 || { cat "$VENV/.fers-editable.log"; exit 1; }
  "$PY" - <<'PYCHECK'
import numpy, torch, safetensors, spectral, numba, h5py, dask, distributed, threadpoolctl, mypy
from osgeo import gdal, gdal_array
from qgis.core import Qgis
assert numpy.__version__.startswith("1."), numpy.__version__
print(f"numpy {numpy.__version__}, numba {numba.__version__}, torch {torch.__version__}, GDAL {gdal.__version__}, QGIS {Qgis.QGIS_VERSION}")
PYCHECK
  touch "$STAMP"
fi

# Headless qgis_process: find the plugin next to this repo and enable it (P11/P12 of qgis-env.md).
. "$ROOT/scripts/qgis-env.sh"
if ! qgis_process plugins 2>/dev/null | grep -q "^\* fers_qgis$"; then
  log "enabling fers_qgis for qgis_process"
  qgis_process plugins enable fers_qgis >/dev/null 2>&1 || true
fi
log "ready"
