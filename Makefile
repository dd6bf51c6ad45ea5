# Two commands on a fresh machine:  make run  (serve the bundled models on :8000)
#                                   make test (install everything, lint, type-check, test)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Debian packages the tests drive: the demo page in Chromium, the scale-out test behind
# nginx, docker-compose to validate the compose file (no Docker engine runs here), the
# capture store on PostgreSQL.
APT_PACKAGES := chromium nginx docker-compose postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PIP_INSTALL := pip install --quiet --disable-pip-version-check

.PHONY: run test test-fast lint typecheck pytest unit docs install system-deps clean bench screenshot train-mnist train-fashion

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m $(PIP_INSTALL) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: $(STAMP)
	$(PY) -m service

lint: $(STAMP)
	$(VENV)/bin/ruff check service training cnnlab tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy service training cnnlab bench

# The whole suite on every core: one test module per worker (a module's server is shared
# by its tests), the slowest tests listed at the end.
pytest: $(STAMP) system-deps
	$(PY) -m pytest -n auto --dist loadfile --durations=15 $(PYTEST_ARGS)

# The tests that start no server and train nothing: a contributor's quick loop.
UNIT_TESTS := tests/service tests/cnnlab tests/bench tests/docs/test_site.py::test_every_setting_is_in_the_reference
unit: $(STAMP)
	$(PY) -m pytest -q -n auto $(UNIT_TESTS)

# The documentation site, from docs/ into site/ (--strict: a broken link fails).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

test: lint typecheck docs pytest

test-fast: lint typecheck unit

# Triton, the strongest peer, runs through PyTriton, whose Python backend needs a Python
# whose libpython is a shared library (Debian's python3), in a venv of its own.
TRITON_VENV := .venv-triton
$(TRITON_VENV)/bin/python:
	@dpkg -s python3-venv >/dev/null 2>&1 || ($(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq python3-venv)
	/usr/bin/python3 -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/pip install -q nvidia-pytriton==0.7.0 onnxruntime==1.31.1

bench: $(STAMP) $(TRITON_VENV)/bin/python
	@command -v wrk >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk)
	$(PY) -m $(PIP_INSTALL) -e ".[dev,bench]"
	$(PY) bench/serving.py --triton-python $(TRITON_VENV)/bin/python

# The README's picture of the demo page: the first-screen test drives Chromium and keeps
# its screenshot in test-artifacts/.
screenshot: $(STAMP) system-deps
	$(PY) -m pytest -q tests/integration/test_demo_page.py -k first_screen
	cp test-artifacts/first-screen.png docs/demo.png

# The bundled models' recipes (the README gives each bundled version's own command and
# these recipes' measured runs). DATA_DIR holds the four IDX .gz files of the dataset;
# without it Keras's downloader fetches them.
DATA_DIR ?=
DATA_FLAG := $(if $(DATA_DIR),--data-dir $(DATA_DIR))

train-mnist: $(STAMP)
	$(PY) -m training train mnist --arch strided $(DATA_FLAG) --models-dir models

train-fashion: $(STAMP)
	$(PY) -m training train fashion_mnist --arch strided --epochs 33 --dropout 0.25 \
	  --label-smoothing 0 --as-sent 0 $(DATA_FLAG) --models-dir models

clean:
	rm -rf $(VENV) $(TRITON_VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info site
