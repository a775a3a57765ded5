# Panorama: `make run` starts the embedded default, `make test` runs the whole test suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: run test faults bench services clean

$(VENV)/.run: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.run requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.run          ## install and run the embedded default on http://127.0.0.1:8050
	$(PY) app.py

services:                   ## make sure Redis, PostgreSQL and Chromium are there and running
	bash tests/services.sh

test: $(VENV)/.dev services ## install and run the whole test suite (fault suite included) against real Redis and PostgreSQL
	$(PY) -m pytest $(PYTEST_ARGS)

faults: $(VENV)/.dev services ## the fault suite alone: kills and restarts real Redis, PostgreSQL, ingest, gateway, app
	$(PY) -m pytest tests/faults $(PYTEST_ARGS)

bench: $(VENV)/.dev services ## run the benchmarks and print their figures
	$(PY) -m bench

clean:
	rm -rf $(VENV) instance .pytest_cache
