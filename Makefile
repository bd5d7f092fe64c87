# Two commands a learner needs:  make lab   (set up, open the course)   make test   (set up, run every test)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fdrl-installed
# JupyterLab reads default settings from here (see lab-overrides.json).
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings

# Python 3.11, 3.12 or 3.13 (what pyproject's requires-python admits). `make PYTHON=/path/to/python3.12`
# chooses one; otherwise the first suitable of python3, python3.12, python3.13, python3.11, python,
# then pyenv's installed versions.
PYTHON_OK := -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))'
PYTHON_CANDIDATES = python3 python3.12 python3.13 python3.11 python \
	$(wildcard $(HOME)/.pyenv/versions/3.1[123]*/bin/python3)
PYTHON ?= $(firstword $(foreach p,$(PYTHON_CANDIDATES),$(shell $(p) $(PYTHON_OK) >/dev/null 2>&1 && echo $(p))))

.PHONY: install lab test lint exercises slides lectures bench smoke-pythons clean

$(STAMP): pyproject.toml lab-overrides.json
	@if [ -z "$(PYTHON)" ] || ! $(PYTHON) $(PYTHON_OK) 2>/dev/null; then \
	  echo "fdrl needs Python 3.11, 3.12 or 3.13; found $(if $(PYTHON),$(PYTHON): $$($(PYTHON) -V 2>&1),none on PATH)."; \
	  echo "Install one (python.org; Ubuntu: sudo apt install python3.12-venv; macOS: brew install python@3.12;"; \
	  echo "pyenv install 3.12), then run make again, or point at it: make PYTHON=/path/to/python3.12 lab"; \
	  exit 1; fi
	@echo "using $(PYTHON) ($$($(PYTHON) -V 2>&1)) for $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	mkdir -p $(LAB_SETTINGS) && cp lab-overrides.json $(LAB_SETTINGS)/overrides.json
	touch $(STAMP)

install: $(STAMP)

TEST_STAMP := $(VENV)/.fdrl-test-installed
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(TEST_STAMP)

# The lab serves the repository root and opens on START_HERE.ipynb (lectures, exercises, solutions
# in order). The venv's bin comes first on PATH, so `fdrl grade ...` works in the lab's terminals
# and in `!fdrl ...` notebook cells; terminals start a non-login shell, so /etc/profile cannot
# reset that PATH. LAB_ARGS="--no-browser --port 8899" for a headless machine. Root (containers)
# needs --allow-root.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root)
VENV_BIN = $(abspath $(VENV))/bin
lab: $(STAMP)
	PATH="$(VENV_BIN):$$PATH" VIRTUAL_ENV="$(abspath $(VENV))" $(VENV_BIN)/jupyter lab $(ROOT_ARGS) \
	  --ServerApp.root_dir="$(CURDIR)" \
	  --ServerApp.terminado_settings="shell_command=['$${SHELL:-/bin/sh}']" \
	  --LabApp.default_url=/lab/tree/START_HERE.ipynb $(LAB_ARGS) START_HERE.ipynb

# Every test, notebooks included, in fast mode (FDRL_FAST=1), on both cores.
test: $(TEST_STAMP)
	FDRL_FAST=1 MPLBACKEND=Agg $(PY) -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check fdrl_lib tests benchmarks lectures solutions exercises
	$(VENV)/bin/ruff format --check fdrl_lib tests benchmarks lectures solutions exercises

# Write exercises/ from solutions/ (the one source of every exercise).
exercises: $(STAMP)
	$(VENV)/bin/fdrl release

# One reveal.js deck per lecture, offline (reveal.js and MathJax bundled), into build/slides/.
slides: $(STAMP)
	$(VENV)/bin/fdrl slides

# Speed and sample efficiency side by side with peers (pymdptoolbox, Stable-Baselines3).
bench: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[bench]"
	$(PY) benchmarks/bench_value_iteration.py
	$(PY) benchmarks/run.py all --seeds 5 --peer sb3

# Re-run the lecture notebooks in full mode and save them clean (commit them with their outputs).
lectures: $(STAMP)
	nice -n 10 $(PY) -m fdrl_lib.lectures

# Install and smoke-test on the other supported Pythons this machine has (CI runs it after make test).
smoke-pythons: $(STAMP)
	.ci/smoke-pythons

clean:
	rm -rf $(VENV) build .pytest_cache
