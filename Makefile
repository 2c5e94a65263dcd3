# The course's commands. `make lab` to learn, `make test` to check everything.
# Recipes are silent (@): what you see is what the course prints, and a problem is one line.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SIZE ?= $(or $(COURSE_SIZE),small)
PORT ?= 5000
BACKENDS ?= sqlite,postgres
VIEWS ?= optimized
# The locks (exact versions for every platform and Python from 3.11, made by `make lock`): lab.txt is what the
# lessons use, test.txt adds the tests' and contributors' tools. Each stamp is redone when its lock changes.
LOCKS := requirements
LAB_STAMP := $(VENV)/.installed-lab
TEST_STAMP := $(VENV)/.installed-test
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
# `make test-latest`: the newest releases in a venv of their own, no lock
LATEST := .venv-latest
# name==version lines with names normalised (lower case, - for _ and .), sorted, to compare pins
NORMALIZE := awk -F== '{ n = tolower($$1); gsub(/[_.]/, "-", n); print n "==" $$2 }' | sort -u
# `make lock`: uv's universal resolution from the oldest Python the course supports (markers cover the newer ones);
# LOCK_ARGS= (empty) keeps the current pins and only adds what pyproject.toml newly asks for.
LOCK_ARGS ?= --upgrade
LOCK_FLAGS := --universal --python-version 3.11 --annotation-style line --quiet --custom-compile-command 'make lock'
# Where `make lock` checks that every locked package has a wheel (otherwise pip would compile it there).
WHEEL_PLATFORMS := x86_64-manylinux_2_28 aarch64-manylinux_2_28 aarch64-apple-darwin x86_64-apple-darwin x86_64-pc-windows-msvc
WHEEL_PYTHONS := 3.11 3.12 3.13 3.14

.PHONY: lab test test-latest lock lock-wheels hooks data bench bench-notebooks app lint typecheck reset clean-servers help site

help:
	@echo "make lab            set up, check, and open the course in JupyterLab"
	@echo "make test           set up and run every test (unit, notebooks at tiny on SQLite and PostgreSQL, lint)"
	@echo "                    make test ARGS='-k caching -x' passes arguments to pytest"
	@echo "make test-latest    the tests against the newest releases of every dependency, without the lock"
	@echo "make lock           regenerate requirements/*.txt from pyproject.toml (newest releases)"
	@echo "make hooks          install the pre-commit hooks (ruff, notebooks stripped of outputs)"
	@echo "make data SIZE=small   build a dataset (tiny, small, medium, large)"
	@echo "make reset SIZE=small  rebuild a dataset from scratch"
	@echo "make bench          run the benchmark suite on SQLite and PostgreSQL, write data/bench/latest.csv"
	@echo "make bench-notebooks  time every notebook at SIZE (default small) and the whole course at tiny"
	@echo "make app            serve the finished app on http://127.0.0.1:5000 (VIEWS=mine: yours)"
	@echo "make site           execute every lesson at SIZE and render them as HTML pages into data/site/"
	@echo "make clean-servers  stop the course's PostgreSQL and Redis if left running, remove data/servers"

define check_python
@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or newer, or name one with make PYTHON=python3.12 ..." >&2; exit 2; }
@$(PYTHON) -c 'import sys; ok = sys.version_info >= (3, 11); ok or print(f"Python 3.11 or newer is needed, $(PYTHON) is {sys.version.split()[0]}: install one, or name it with make PYTHON=python3.12 ...", file=sys.stderr); sys.exit(0 if ok else 2)'
endef

$(BIN)/python:
	$(check_python)
	@echo "Creating $(VENV) with $$($(PYTHON) --version)."
	@$(PYTHON) -m venv $(VENV)

# The lessons' dependencies at the locked versions, then the course itself: its dependencies are all in the lock,
# and its build backend too (locked setuptools, no isolated build that would fetch the newest one).
$(LAB_STAMP): $(LOCKS)/lab.txt pyproject.toml | $(BIN)/python
	@echo "Installing the course into $(VENV) from $(LOCKS)/lab.txt (a few minutes the first time)."
	@$(PIP) install -r $(LOCKS)/lab.txt
	@# setuptools warns on every editable install that a folder named like a package would shadow it: none does here
	@PYTHONWARNINGS='ignore:Editable installation' $(PIP) install --no-deps --no-build-isolation -e .
	@$(BIN)/python -c 'from helpers.lab import write_settings; write_settings()'  # the course's JupyterLab settings
	@cp $(LOCKS)/lab.txt $@  # the stamp is the lock it installed (tests/test_project.py compares)

$(TEST_STAMP): $(LOCKS)/test.txt $(LAB_STAMP)
	@echo "Installing the tests' and contributors' tools into $(VENV) from $(LOCKS)/test.txt."
	@$(PIP) install -r $(LOCKS)/test.txt
	@cp $(LOCKS)/test.txt $@

data: $(LAB_STAMP)
	@$(BIN)/python -m helpers data build --size $(SIZE)

reset: $(LAB_STAMP)
	@$(BIN)/python -m helpers data build --size $(SIZE) --force

# Checks the settings, database, dataset (built if missing) and cache first, as a lesson's setup does.
lab: $(LAB_STAMP)
	@COURSE_SIZE=$(SIZE) $(BIN)/python -m helpers lab

# ARGS go to pytest; exit status 5 (no test collected) stays a failure, with a line saying why.
test: $(TEST_STAMP)
	@$(BIN)/pytest $(ARGS) || { status=$$?; [ $$status -ne 5 ] || echo "error: no test matched ARGS='$(ARGS)'" >&2; exit $$status; }

# The newest release of everything pyproject.toml allows, in $(LATEST): drift is found on purpose, not by a fresh
# install. Warnings are reported, not errors (a new deprecation upstream is news, not a failure); lint and type
# tools stay at their pins. Sub-makes run by the tests (make data, make clean-servers) use $(LATEST) too.
test-latest:
	$(check_python)
	@[ -x $(LATEST)/bin/python ] || { echo "Creating $(LATEST) with $$($(PYTHON) --version)."; $(PYTHON) -m venv $(LATEST); }
	@echo "Installing the newest releases into $(LATEST) (no lock)."
	@$(LATEST)/bin/python -m pip --quiet --disable-pip-version-check install --upgrade pip
	@PYTHONWARNINGS='ignore:Editable installation' $(LATEST)/bin/python -m pip --quiet --disable-pip-version-check \
		install --upgrade --upgrade-strategy eager -e . --group dev
	@$(LATEST)/bin/python -c 'from helpers.lab import write_settings; write_settings()'
	@# Installed, but not from the lock: sub-makes must not install the lock here, and the tests must know.
	@for stamp in $(LATEST)/.installed-lab $(LATEST)/.installed-test; do echo "make test-latest: no lock" > $$stamp; done
	@$(LATEST)/bin/python -m pip list --format=freeze > $(LATEST)/versions.txt
	@echo "Versions in $(LATEST)/versions.txt; differing from $(LOCKS)/test.txt:"
	@diff <(grep -oE '^[A-Za-z0-9._-]+==[^ ;]+' $(LOCKS)/test.txt | $(NORMALIZE)) \
		<(grep -v '^flask-sqlalchemy-performance-course==' $(LATEST)/versions.txt | $(NORMALIZE)) | sed -n 's/^> /  /p' || true
	@VENV=$(LATEST) $(LATEST)/bin/pytest -W default $(ARGS) || { status=$$?; [ $$status -ne 5 ] || echo "error: no test matched ARGS='$(ARGS)'" >&2; exit $$status; }

# Regenerate the locks with uv (pinned in pyproject.toml's dev group): test.txt first, then lab.txt constrained by
# it, so a learner's versions are exactly the tested ones. Then say where a package would have to be compiled.
lock: $(BIN)/uv
	@$(BIN)/uv pip compile pyproject.toml --group dev --group build $(LOCK_FLAGS) $(LOCK_ARGS) -o $(LOCKS)/test.txt
	@$(BIN)/uv pip compile pyproject.toml --group build -c $(LOCKS)/test.txt $(LOCK_FLAGS) $(LOCK_ARGS) -o $(LOCKS)/lab.txt
	@echo "Locked $$(grep -c '==' $(LOCKS)/lab.txt) packages for the lessons, $$(grep -c '==' $(LOCKS)/test.txt) with the tools."
	@$(MAKE) --no-print-directory lock-wheels

lock-wheels: $(BIN)/uv
	@for platform in $(WHEEL_PLATFORMS); do for python in $(WHEEL_PYTHONS); do \
		if ! out=$$(UV_PYTHON_DOWNLOADS=never $(BIN)/uv pip compile pyproject.toml --group dev --group build \
			-c $(LOCKS)/test.txt --python-platform $$platform --python-version $$python --only-binary :all: \
			--quiet --no-header -o /dev/null 2>&1); then \
		echo "$$platform, Python $$python: $$(grep -oE '[a-z0-9_.-]+==[^ ]+ has no usable wheels' <<<"$$out" | head -1 || echo "$$out" | tail -1) (pip compiles it there)"; \
		fi; done; done

$(BIN)/uv: | $(BIN)/python
	@$(PIP) install "$$(grep -oE 'uv==[0-9.]+' pyproject.toml)"

# The pre-commit hooks (.pre-commit-config.yaml) in this clone's .git: ruff, and notebooks stripped of outputs.
hooks: $(TEST_STAMP)
	@$(BIN)/pre-commit install

lint: $(TEST_STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

typecheck: $(TEST_STAMP)
	@$(BIN)/mypy

bench: $(LAB_STAMP)
	@$(BIN)/python -m helpers bench --size $(SIZE) --backends $(BACKENDS) $(ARGS)

bench-notebooks: $(LAB_STAMP)
	@$(BIN)/python -m helpers bench --notebooks --size $(SIZE)

app: $(LAB_STAMP)
	@COURSE_SIZE=$(SIZE) $(BIN)/python -m helpers app --port $(PORT) --views $(VIEWS)

site: $(LAB_STAMP)
	@$(BIN)/python -m helpers data ensure --size $(SIZE)
	@$(BIN)/python -m tools.site --size $(SIZE)

clean-servers: $(LAB_STAMP)
	@$(BIN)/python -m helpers servers clean
