# The course's commands. `make lab` to learn, `make test` to check everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SIZE ?= $(or $(COURSE_SIZE),small)
STAMP := $(VENV)/.installed
PORT ?= 5000
BACKENDS ?= sqlite,postgres
VIEWS ?= optimized

.PHONY: lab test data bench bench-notebooks app lint typecheck reset clean-servers help site

help:
	@echo "make lab    set up and open the course in JupyterLab"
	@echo "make test   set up and run every test (unit, notebooks at tiny on SQLite and PostgreSQL, lint)"
	@echo "make data SIZE=small   build a dataset (tiny, small, medium, large)"
	@echo "make bench  run the benchmark suite on SQLite and PostgreSQL, write data/bench/latest.csv"
	@echo "make bench-notebooks  time every notebook at SIZE (default small) and the whole course at tiny"
	@echo "make app    serve the course app on http://127.0.0.1:5000"
	@echo "make reset SIZE=small  rebuild a dataset from scratch"
	@echo "make site   execute every lesson at SIZE (small) and render them as HTML pages into data/site/"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: install it, or run make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -c 'from helpers.lab import write_settings; write_settings()'  # the course's JupyterLab settings
	@touch $(STAMP)

data: $(STAMP)
	$(BIN)/python -m helpers data build --size $(SIZE)

reset: $(STAMP)
	$(BIN)/python -m helpers data build --size $(SIZE) --force

lab: $(STAMP)
	$(BIN)/python -m helpers data ensure --size $(SIZE)
	COURSE_SIZE=$(SIZE) $(BIN)/python -m helpers lab

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m helpers bench --size $(SIZE) --backends $(BACKENDS) $(ARGS)

bench-notebooks: $(STAMP)
	$(BIN)/python -m helpers bench --notebooks --size $(SIZE)

app: $(STAMP)
	$(BIN)/python -m helpers data ensure --size $(SIZE)
	COURSE_SIZE=$(SIZE) $(BIN)/python -m helpers app --port $(PORT) --views $(VIEWS)

site: $(STAMP)
	$(BIN)/python -m helpers data ensure --size $(SIZE)
	$(BIN)/python -m tools.site --size $(SIZE)
