# The course's commands. `make lab` to learn, `make test` to check everything.
# Recipes are silent (@): what you see is what the course prints, and a problem is one line.
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
	@echo "make lab            set up, check, and open the course in JupyterLab"
	@echo "make test           set up and run every test (unit, notebooks at tiny on SQLite and PostgreSQL, lint)"
	@echo "make data SIZE=small   build a dataset (tiny, small, medium, large)"
	@echo "make reset SIZE=small  rebuild a dataset from scratch"
	@echo "make bench          run the benchmark suite on SQLite and PostgreSQL, write data/bench/latest.csv"
	@echo "make bench-notebooks  time every notebook at SIZE (default small) and the whole course at tiny"
	@echo "make app            serve the finished app on http://127.0.0.1:5000 (VIEWS=mine: yours)"
	@echo "make site           execute every lesson at SIZE and render them as HTML pages into data/site/"
	@echo "make clean-servers  stop the course's PostgreSQL and Redis if left running, remove data/servers"

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or newer, or name one with make PYTHON=python3.12 ..." >&2; exit 2; }
	@$(PYTHON) -c 'import sys; ok = sys.version_info >= (3, 11); ok or print(f"Python 3.11 or newer is needed, $(PYTHON) is {sys.version.split()[0]}: install one, or name it with make PYTHON=python3.12 ...", file=sys.stderr); sys.exit(0 if ok else 2)'
	@echo "Creating $(VENV) with $$($(PYTHON) --version)."
	@$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing the course's dependencies into $(VENV) (a few minutes the first time)."
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@$(BIN)/python -c 'from helpers.lab import write_settings; write_settings()'  # the course's JupyterLab settings
	@touch $(STAMP)

data: $(STAMP)
	@$(BIN)/python -m helpers data build --size $(SIZE)

reset: $(STAMP)
	@$(BIN)/python -m helpers data build --size $(SIZE) --force

# Checks the settings, database, dataset (built if missing) and cache first, as a lesson's setup does.
lab: $(STAMP)
	@COURSE_SIZE=$(SIZE) $(BIN)/python -m helpers lab

test: $(STAMP)
	@$(BIN)/pytest

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

typecheck: $(STAMP)
	@$(BIN)/mypy

bench: $(STAMP)
	@$(BIN)/python -m helpers bench --size $(SIZE) --backends $(BACKENDS) $(ARGS)

bench-notebooks: $(STAMP)
	@$(BIN)/python -m helpers bench --notebooks --size $(SIZE)

app: $(STAMP)
	@COURSE_SIZE=$(SIZE) $(BIN)/python -m helpers app --port $(PORT) --views $(VIEWS)

site: $(STAMP)
	@$(BIN)/python -m helpers data ensure --size $(SIZE)
	@$(BIN)/python -m tools.site --size $(SIZE)

clean-servers: $(STAMP)
	@$(BIN)/python -m helpers servers clean
