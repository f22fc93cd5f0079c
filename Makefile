# Two commands for a new user:  make demo   and   make test   (see README.md)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pip's "new release available" notice is not something a user of `make demo` must read past.
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install demo test airflow report chaos bench bench-latency constraints clean

help:
	@echo "make demo   - run every flow end to end against the simulators (SQLite), print what moved"
	@echo "make test   - run the test suite"
	@echo "make airflow - a local Airflow UI on http://127.0.0.1:8080 with the simulators running (AIRFLOW_PORT=...)"
	@echo "make report - what the flows did, from this checkout's audit store (REPORT_ARGS='--flow orders --last 5')"
	@echo "make chaos  - the chaos suite at a larger size (CHAOS_ARGS='--size 300 --seed 1 --profile mixed')"
	@echo "make bench  - benchmark the flows against their API-call bound and the per-record baseline"
	@echo "make bench-latency - audit → CRM and CRM → K3Cloud latency through a real Airflow (LATENCY_ARGS='--events 100')"

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints-3.11.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version.split()[0]'
	@echo "Installing the pinned dependencies into $(VENV)/ (first run only; a few minutes)…"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade "pip==26.3" || $(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt -c constraints-3.11.txt
	@$(PY) -m pip install -q --no-deps -e .
	@rm -rf plugins/*.egg-info  # Airflow would see the distribution twice (plugins/ is on sys.path)
	@touch $(STAMP)
	@echo "Installed."

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m pytest

airflow: $(STAMP)
	$(PY) scripts/local_airflow.py $(AIRFLOW_ARGS)

# The audit report of this checkout's store (.airflow/sync_audit.db, or $SYNC_AUDIT_URL); no Airflow needed.
REPORT_ARGS ?= --all-flows --last 10
report: $(STAMP)
	@$(PY) -m fxiaoke_k3cloud report $(REPORT_ARGS)

CHAOS_ARGS ?= --size 100 --seed 1 --seed 2 --profile mixed --profile timeouts --profile sessions --profile quota

chaos: $(STAMP)
	$(PY) -m tests.reliability.chaos $(CHAOS_ARGS)

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

LATENCY_ARGS ?=

bench-latency: $(STAMP)
	PYTHONPATH=plugins:. $(PY) -m bench.latency $(LATENCY_ARGS)

constraints: $(STAMP)
	{ head -3 constraints-3.11.txt; $(VENV)/bin/pip freeze --exclude-editable | grep -v '^-e'; } > constraints-3.11.txt.new
	mv constraints-3.11.txt.new constraints-3.11.txt

clean:
	rm -rf $(VENV) .airflow
