# `make train` and `make test` each build the environment from nothing, then run.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup train lint test clean docs

$(BIN)/jaxmlp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/jaxmlp

train: setup
	$(BIN)/jaxmlp train $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache

docs: setup
	$(BIN)/python docs/build.py
