# Two commands on a fresh machine: `make run` and `make test`.
# Both create .venv, install the pinned set from requirements.lock (uv), then act.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
VAR := var
DATA ?= $(VAR)/sample_portfolio
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/$(VAR)/mlflow/mlflow.db
export MLFLOW_ARTIFACTS_DIR ?= $(CURDIR)/$(VAR)/mlflow/artifacts
export BENTOML_HOME ?= $(CURDIR)/$(VAR)/bentoml
export OMP_NUM_THREADS ?= 1
export PYTHONHASHSEED := 0
HOST ?= 127.0.0.1
PORT ?= 3000
# the sample portfolio is historical (it ends 2025-06-30): its jobs default to a night in it;
# for your own portfolio (DATA=...) the default issue time is now
SAMPLE_ISSUE := 2025-06-28T22:30:00+08:00
DEFAULT_ISSUE := $(if $(filter $(VAR)/sample_portfolio,$(DATA)),$(SAMPLE_ISSUE),now)

.PHONY: help install run train batch nightly serve sample-data test test-property test-fast benchmarks benchmarks-baselines benchmarks-openstef lint clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): requirements.lock pyproject.toml
	@echo ">> creating $(VENV) and installing the pinned set (requirements.lock)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)  ## create the venv and install the pinned dependencies

sample-data: $(STAMP)  ## generate the synthetic sample portfolio if absent
	@test -f $(DATA)/sites.csv || $(BIN)/vpp sample-data --out $(DATA)

train: sample-data  ## train every site, the ML baseline and the response likelihood without a champion yet (MLflow)
	$(BIN)/vpp train-all --data $(DATA) --skip-trained $(TRAIN_ARGS)
	$(BIN)/vpp baseline-train --data $(DATA) --skip-trained
	$(BIN)/vpp response-train --data $(DATA) --skip-trained

batch: sample-data  ## batch: day-ahead forecasts of every site (ISSUE=ISO time or now; default a night of the sample portfolio, now for DATA=yours)
	$(BIN)/vpp batch-forecast --data $(DATA) --issue-time $(or $(ISSUE),$(DEFAULT_ISSUE)) --out $(VAR)/forecasts

nightly: sample-data  ## nightly job: retrain stale models, D+1/D+2 forecasts of every site into var/forecast_store (ISSUE=ISO time or now; default a night of the sample portfolio)
	$(BIN)/vpp nightly --data $(DATA) --issue-time $(or $(ISSUE),$(DEFAULT_ISSUE)) --store $(VAR)/forecast_store $(NIGHTLY_ARGS)

run: train  ## set up, train on the sample portfolio, serve the API on 127.0.0.1:3000 (prints a local API key)
	$(BIN)/vpp serve --data $(DATA) --host $(HOST) --port $(PORT) --local-key-file $(VAR)/local_api_key

serve: $(STAMP)  ## serve the API (models must be registered; key of client 'local' in var/local_api_key)
	$(BIN)/vpp serve --data $(DATA) --host $(HOST) --port $(PORT) --local-key-file $(VAR)/local_api_key

test: $(STAMP)  ## run the whole test suite
	$(BIN)/python -m pytest -q

test-property: $(STAMP)  ## the any-portfolio property test alone, with VPP_PROPERTY_EXAMPLES (default 400)
	VPP_PROPERTY_EXAMPLES=$${VPP_PROPERTY_EXAMPLES:-400} $(BIN)/python -m pytest -q tests/test_any_portfolio.py

test-fast: $(STAMP)  ## unit tests only (no servers, no shared data)
	$(BIN)/python -m pytest -q -m "not integration and not shared_data"

benchmarks: $(STAMP)  ## full accuracy and speed benchmarks on ../shared/data
	$(BIN)/python -m benchmarks.run_all

benchmarks-baselines: $(STAMP)  ## customer baselines: placebo events, savings, speed, OpenDSM CalTRACK (about an hour)
	$(BIN)/python -m benchmarks.baselines --opendsm

benchmarks-openstef: $(STAMP)  ## OpenSTEF 307 rolling 8 weeks, 5 seeds, beside OpenSTEF 3.4.93 in var/openstef-venv (about 20-30 min)
	$(BIN)/python -m benchmarks.load_openstef_rolling --seeds 0,1,2,3,4

lint: $(STAMP)
	$(BIN)/ruff check .

clean:  ## remove the venv and generated state
	rm -rf $(VENV) $(VAR)
