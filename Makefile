# The two commands a new user needs: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Extras `make test` installs, so CI tests every optional adapter that can run on a CPU.
TEST_EXTRAS := dev,dmc,dist,experiments
STAMP  := $(VENV)/.installed-test
# What `make demo` needs: the package and its own dependencies, none of the test extras.
BASE_STAMP := $(VENV)/.installed-base
# xdist workers: one per core (these machines have 2).
WORKERS ?= auto

.PHONY: venv test lint format bench demo clean help

help:
	@echo "make demo   train the default agent on the default task and write results"
	@echo "make test   run the test suite (creates .venv if needed)"
	@echo "make lint | format | bench | clean"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever the dependencies or the extras change.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(TEST_EXTRAS)]'
	@touch $@

$(BASE_STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) -q tests

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# Peer libraries need torch; install the CPU wheel first so nothing pulls a CUDA build.
$(VENV)/.installed-bench: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $@

bench: $(VENV)/.installed-bench
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

demo: $(BASE_STAMP)
	$(BIN)/behavior-priors demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build src/*.egg-info
