# FERS for QGIS. `make demo` and `make test` each run `make setup` first, so either works alone
# on a fresh Debian 12 machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
QGIS_ENV := source scripts/qgis-env.sh

.PHONY: setup demo test lint format package bench-speed bench-accuracy clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(QGIS_ENV) && $(PY) -m fers_engine.demo --out demo-output

test: setup
	@$(QGIS_ENV) && $(PY) -m pytest -q tests

# ruff (lint and format check) over the tree, mypy over the engine; settings in pyproject.toml.
lint: setup
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy

# Rewrites files: the formatter, then ruff's safe fixes (import order).
format: setup
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix-only --select I,UP037 .

# The plugin zip needs only the standard library, so no setup: `make package DIST=dir` writes elsewhere
package:
	@python3 scripts/package.py $(if $(DIST),--dist "$(DIST)")

bench-speed: setup
	@$(PY) bench/speed.py

bench-accuracy: setup
	@$(PY) bench/accuracy.py

clean:
	rm -rf demo-output dist build *.egg-info
