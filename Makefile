# Two commands for a newcomer: `make run` serves PAWMANITY on its embedded defaults, `make test` passes the tests.
# Each creates the virtual environment and installs what it needs on first use.

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 5000
BIN := $(VENV)/bin

export FLASK_APP := wsgi

.PHONY: run test demo admin bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-deps: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

# The chat page's Socket.IO client comes from npm (no CDN).
node_modules/.package-lock.json: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error

run: $(VENV)/.run-deps node_modules/.package-lock.json
	PAWMANITY_CONFIG=development $(BIN)/flask db upgrade
	PAWMANITY_CONFIG=development $(BIN)/gunicorn -k gevent -w 1 -b $(HOST):$(PORT) wsgi:app

# The suite runs on every core (pytest-xdist); each worker has its own database and Redis database. The latency
# tests (marker `quiet`) then run alone: on two cores another test's CPU would be measured as the server's lag.
test: $(VENV)/.test-deps node_modules/.package-lock.json
	$(BIN)/python -m pytest -n auto -m "not quiet"
	$(BIN)/python -m pytest -m quiet

demo: $(VENV)/.run-deps
	PAWMANITY_CONFIG=development $(BIN)/flask db upgrade
	PAWMANITY_CONFIG=development $(BIN)/flask demo load

admin: $(VENV)/.run-deps
	PAWMANITY_CONFIG=development $(BIN)/flask create-admin $(EMAIL)

bench: $(VENV)/.test-deps
	$(BIN)/python bench/auth_bench.py

clean:
	rm -rf $(VENV) instance .pytest_cache node_modules test-output
