# Two commands on a fresh machine:
#   make demo   set up .venv (torch CPU pin first, then nnlint with its dev extra) and lint a shipped example
#   make test   set up .venv if needed, run `make lint`, then the test suite (this is what .ci/run runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n 2

.PHONY: setup demo lint test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# torchvision for the tests' real models, beside the venv: tests/support/cpu_torchvision
	$(BIN)/python -m pip install --quiet --no-deps --target $(VENV)/torchvision-cpu torchvision==0.28.0
	touch $@

demo: setup
	$(BIN)/nnlint fixtures/seed/copy_paste_conv.py; test $$? -le 1

# ruff (lint + format check) and mypy on the package and the rules; settings in pyproject.toml
lint: setup
	$(BIN)/ruff check nnlint rules
	$(BIN)/ruff format --check nnlint rules
	$(BIN)/mypy

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/static_speed.py
	$(BIN)/python benchmarks/graph_scale.py
	$(BIN)/python benchmarks/probe_cost.py
	$(BIN)/python benchmarks/warm_worker.py
	$(BIN)/python benchmarks/cache_rerun.py
	$(BIN)/python benchmarks/server_latency.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .nnlint_cache .mypy_cache .ruff_cache
