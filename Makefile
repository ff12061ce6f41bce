# serverless-mesh: `make local` runs the whole system on this machine, `make test` proves it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
PACKAGES := $(wildcard infra sim functions mesh services local)
REQUIREMENTS := requirements-dev.txt requirements.txt functions/requirements.txt services/requirements.txt

.PHONY: install test lint unit local bench layers lock clean

# The venv is rebuilt whenever a pinned requirement changes.
$(VENV)/.installed: $(REQUIREMENTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check $(PACKAGES) tests bench __main__.py
	$(VENV)/bin/mypy $(PACKAGES)

unit: install
	$(PY) -m pytest -n 2

test: lint unit

local: install
	$(PY) -m local up --stack $(STACK)

bench: install
	$(PY) bench/todos.py
	$(PY) bench/orders.py
	$(PY) bench/mesh.py
	$(PY) bench/images/run.py
	$(PY) bench/gate.py

# The Lambda layers' zips, built from the locks into build/layers/ (cached: an unchanged lock builds nothing).
layers: install
	$(PY) -m infra.layers build

# Re-resolve the layers' locks (every transitive pin, with hashes) from their top-level requirements.
lock: install
	$(PY) -m infra.layers lock

clean:
	rm -rf .local build .pytest_cache .mypy_cache .ruff_cache
