# `make repro` and `make test` set up .venv from the lock file on first use, then run.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements/cpu.txt pyproject.toml | cksum | cut -d' ' -f1)
# Elsewhere than this project's machines, a CPU-only torch wheel needs its own index, e.g.
#   make repro TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
PIP_EXTRA := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX),)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro test test-fast lint lab supplement
setup: $(STAMP)

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(PIP_EXTRA) -c requirements/cpu.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

repro: setup          ## run the whole pipeline (embedded default) with DVC
	$(BIN)/dvc repro

test: setup           ## the whole test suite (unit, integration, notebooks)
	$(BIN)/python -m pytest -q

test-fast: setup      ## unit tests only (no training, no notebooks)
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check skinr1 tests notebooks tools && $(BIN)/ruff format --check skinr1 tests notebooks tools

supplement: setup     ## reports/ as HTML with an index page, in supplement/
	$(BIN)/python tools/supplement.py supplement

lab: setup            ## JupyterLab on notebooks/ with the project's kernel
	$(BIN)/jupyter lab notebooks/
