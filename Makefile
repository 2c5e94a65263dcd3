# The course's commands. `make lab` to learn, `make test` to check everything.
# Recipes are silent (@): what you see is what the course prints, and a problem is one line.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SIZE ?= $(or $(COURSE_SIZE),small)
STAMP := $(VENV)/.installed
PORT ?= 5000

.PHONY: lab test data bench app lint typecheck reset clean-servers help

help:
	@echo "make lab            set up, check, and open the course in JupyterLab"
	@echo "make test           set up and run every test (unit, notebooks at tiny on SQLite and PostgreSQL, lint)"
	@echo "make data SIZE=small   build a dataset (tiny, small, medium, large)"
	@echo "make reset SIZE=small  rebuild a dataset from scratch"
	@echo "make bench          run the benchmark suite, write data/bench/latest.csv"
	@echo "make app            serve the course app on http://127.0.0.1:5000"
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
	@$(BIN)/python -m helpers bench --size $(SIZE)

app: $(STAMP)
	@COURSE_SIZE=$(SIZE) $(BIN)/python -m helpers app --port $(PORT)

clean-servers: $(STAMP)
	@$(BIN)/python -m helpers servers clean
