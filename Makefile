# Two commands a learner needs:  make lab   (set up, open the course)   make test   (set up, run every test)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fdrl-installed

.PHONY: install lab test lint exercises slides bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $(STAMP)

install: $(STAMP)

TEST_STAMP := $(VENV)/.fdrl-test-installed
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(TEST_STAMP)

# LAB_ARGS="--no-browser --port 8899" for a headless machine. Root (containers) needs --allow-root.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root)
lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(ROOT_ARGS) $(LAB_ARGS) lectures/

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

clean:
	rm -rf $(VENV) build .pytest_cache
