# Panorama: `make run` starts the embedded default, `make test` runs the whole test suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: run test js faults bench services fonts plotly clean

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

services:                   ## make sure Redis, PostgreSQL, Chromium and Node are there (and the servers running)
	bash tests/services.sh

js:                         ## lint the browser JavaScript (assets/) and run its unit tests under Node (tests/js)
	npm ci --no-audit --no-fund
	npm run lint
	npm test

test: $(VENV)/.dev services js ## install and run the whole test suite (fault suite included) against real Redis and PostgreSQL
	$(PY) -m pytest $(PYTEST_ARGS)

faults: $(VENV)/.dev services ## the fault suite alone: kills and restarts real Redis, PostgreSQL, ingest, gateway, app
	$(PY) -m pytest tests/faults $(PYTEST_ARGS)

bench: $(VENV)/.dev services ## run the benchmarks and print their figures
	$(PY) -m bench

fonts: $(VENV)/.dev          ## rebuild the wall's web font slices (assets/fonts) from Debian's fonts-noto-cjk; commit them
	@test -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc || apt-get install -y -qq fonts-noto-cjk
	$(PY) tools/build_fonts.py

plotly:                     ## rebuild the pages' partial Plotly bundle (assets/vendor) from the pinned plotly.js; commit it
	npm ci --no-audit --no-fund
	npm run build:plotly

clean:
	rm -rf $(VENV) instance .pytest_cache
