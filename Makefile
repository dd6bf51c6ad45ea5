# Two commands on a fresh machine:  make run  (serve the bundled models on :8000)
#                                   make test (install everything, lint, type-check, test)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest install clean bench train-mnist train-fashion

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m service

lint: $(STAMP)
	$(VENV)/bin/ruff check service training tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy service training

pytest: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(PY) bench/serving.py

# The bundled models: the exact commands that produced them (see README).
train-mnist: $(STAMP)
	$(PY) -m training train mnist --arch best --data-dir ../shared/datasets --models-dir models

train-fashion: $(STAMP)
	$(PY) -m training train fashion_mnist --arch best --data-dir ../shared/datasets --models-dir models

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
