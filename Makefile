# skillsync: `make demo` runs a simulated night end to end; `make test` runs the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(PYTHON) -m uv
PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never
export PYTHONDONTWRITEBYTECODE := 1

EVENTS ?= 5000
SEED ?= 7

.PHONY: help install demo test test-fast lint up down status airflow bench faults differential clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.venv/.installed: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: .venv/.installed ## create .venv with the locked dependencies

demo: install ## set everything up and run a simulated night through the whole pipeline
	$(PY) -m infra demo --events $(EVENTS) --seed $(SEED)

test: install ## run the tests (unit, integration on real Kafka and PostgreSQL, end to end)
	$(PY) -m pytest -q --durations=20

test-fast: install ## unit tests only
	$(PY) -m pytest -q tests/unit

lint: install ## ruff, mypy, the layers' import contracts, dependencies, and the SQL files
	$(PY) -m ruff check .
	$(PY) -m mypy schemas adapters consumers warehouse quality partners portal infra dags tests
	.venv/bin/lint-imports
	.venv/bin/deptry .
	.venv/bin/sqlfluff lint warehouse/sql

up: install ## start PostgreSQL, Kafka and the portal, migrate, create topics, prepare Airflow
	$(PY) -m infra up

down: ## stop the local services
	@if [ -x $(PY) ]; then $(PY) -m infra down; fi

status: install ## show what is running and the consumers' lag
	$(PY) -m infra status

airflow: up ## serve Airflow's UI on http://127.0.0.1:18080 (Ctrl-C stops it)
	$(PY) -m infra airflow standalone

bench: install ## run the benchmarks and print their ratios
	$(PY) -m infra up --no-airflow --no-portal
	$(PY) bench/run.py

faults: install ## the long fault-injection suite
	$(PY) -m pytest -q -m fault --run-faults tests/fault

WEEKS ?= 1000
differential: install ## the night's SQL against its reference model over WEEKS random weeks
	$(PY) -m pytest -q tests/differential --weeks $(WEEKS)

clean: down ## remove local state (services' data, Airflow home, reports)
	rm -rf .local
