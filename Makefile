# Task entry points. `make run` and `make test` work from a fresh clone: they create
# .venv, install the project and build what the server serves.

SHELL := /bin/bash
# The first Python 3.11+ that really runs (pyenv shims exist for versions not selected).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
  if $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
    command -v $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test check unit format schema bench bench-services bench-latency eval browser clean help

help:
	@echo "make run        start the server on embedded defaults (http://127.0.0.1:8000/graphql)"
	@echo "make test       lint, type-check and run every test suite"
	@echo "make check      ruff, mypy strict and import-linter only"
	@echo "make services-up / services-down   real Neo4j, Kafka, Redis on 127.0.0.1"
	@echo "make schema     regenerate graphql_schema/schema.graphql"
	@echo "make bench      ingestion benchmark (tests/benchmarks/RESULTS.md)"
	@echo "make bench-services  Neo4j writes, Kafka latency, 1 and 2 workers (starts the servers)"
	@echo "make bench-latency  search and ask latency at 10k and 100k chunks (first run builds the stores: ~45 min)"
	@echo "make eval       NER and question-answering evaluation (tests/eval/RESULTS.md)"

include ops/graphiql/assets.mk
include ops/services/services.mk

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is needed: none found on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) assets
	$(BIN)/kg serve

browser:
	@bash ops/scripts/ensure-chromium.sh

check: $(STAMP)
	$(BIN)/ruff check app graphql_schema tests ops
	$(BIN)/ruff format --check app graphql_schema tests ops
	$(BIN)/mypy
	$(BIN)/lint-imports

# Real Neo4j, Kafka and Redis on 127.0.0.1 (started once, reused while they run; stop
# them with `make services-down`); every suite runs against them.
test: $(STAMP) assets browser check services-up
	. .services/env && $(BIN)/python -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

format: $(STAMP)
	$(BIN)/ruff format app graphql_schema tests ops
	$(BIN)/ruff check --fix app graphql_schema tests ops

schema: $(STAMP)
	$(BIN)/kg export-schema

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.ingest --workers 1
	$(BIN)/python -m tests.benchmarks.ingest --workers 2
	$(BIN)/python -m tests.benchmarks.precision

# Against the real servers (started if needed); the Neo4j benchmarks wipe its graph.
bench-services: $(STAMP) services-up
	. .services/env && $(BIN)/python -m tests.benchmarks.neo4j_writes --paragraphs 200 --rounds 5
	. .services/env && $(BIN)/python -m tests.benchmarks.kafka_latency --events 2000 --rate 200 --burst 2000 --in-flight 10
	. .services/env && $(BIN)/python -m tests.benchmarks.scale_out --documents 300 --workers 1 2 --rounds 2

# Stores and embeddings are cached in ~/.cache/kg-bench (the first build is long).
bench-latency: $(STAMP)
	$(BIN)/python -m tests.benchmarks.query_latency --sizes 10000 100000 --queries 300
	$(BIN)/python -m tests.benchmarks.sqlite_readers --size 100000 --queries 300 --clients 1 2 4 --rounds 3
	$(BIN)/python -m tests.benchmarks.query_precision --queries 400

eval: $(STAMP)
	$(BIN)/python -m tests.eval.ner
	$(BIN)/python -m tests.eval.qa --dataset both

clean:
	rm -rf $(VENV) .cache app/static/graphiql .mypy_cache .ruff_cache .pytest_cache
