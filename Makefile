# The README's two commands: `make demo` (set up and run) and `make test` (set up and test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test setup-run setup-test kafka lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch is installed first and pinned: a bare `torch` requirement pulls a multi-GB CUDA build.
$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[cpu,demo]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	sh tests/install-system-packages.sh
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[cpu,demo,train,parquet,dev]'
	touch $@

# Apache Kafka's jars from Maven Central, cached outside the clone (a second run is offline).
kafka: setup-test
	$(BIN)/python -m tests.kafka fetch

setup-run: $(VENV)/.run-installed
setup-test: $(VENV)/.test-installed

demo: setup-run
	$(BIN)/finmon demo

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint kafka
	$(BIN)/python -m pytest

bench: setup-test
	$(BIN)/python benchmarks/classifier.py
	$(BIN)/python benchmarks/rescore.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
