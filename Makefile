# Two commands matter: `make demo` and `make test`. Everything installs itself on first use.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
ONLY ?=

.PHONY: install test lint format bench demo airflow sandbox clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml include/pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip install --quiet --no-deps -e include/
	@# the editable installs' metadata lives in site-packages; the copies left beside the sources would be
	@# found a second time on sys.path (plugins/ is Airflow's plugins folder): the UI plugin twice
	rm -rf plugins/*.egg-info include/*.egg-info
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install runtime + dev dependencies (idempotent)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint  ## ruff + the whole pytest suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)  ## run benchmarks (ONLY=<name> for one); writes bench/results.json
	$(BIN)/python -m bench $(if $(ONLY),--only $(ONLY),)

demo: $(STAMP)  ## the whole system on loopback (sandbox, SQS, the four DAGs, SQLite warehouse) -> report
	$(BIN)/python -m demo

airflow: $(STAMP)  ## the full Airflow UI on the demo's setup, the world moving slowly; Ctrl-C stops all
	$(BIN)/python -m demo.ui

sandbox: $(STAMP)  ## run the SP-API sandbox plus a moto SQS server in the foreground
	$(BIN)/python -m sp_api_sandbox up

clean:
	rm -rf $(VENV) .airflow .demo .pytest_cache .ruff_cache
