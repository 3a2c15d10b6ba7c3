# `make train` and `make test` each build the environment from nothing, then run.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SITE   ?= build/html

.PHONY: setup train lint test clean notebooks docs figures

$(BIN)/jaxmlp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test,docs]'
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
	rm -rf $(VENV) .pytest_cache build

# Execute every docs/notebooks/NN_slug.md: full setting into docs/notebooks/NN_slug.ipynb (committed),
# QUICK=1 (as CI runs it) into build/notebooks/. Any cell error fails the command.
notebooks: setup
	$(BIN)/python docs/run_notebooks.py

# The HTML site (Sphinx + myst-nb + sphinx-book-theme): README, docs pages, study reports and the committed
# executed notebooks, into $(SITE)/; open $(SITE)/index.html. It reads offline (MathJax comes with the
# sphinx-mathjax-offline package), and any Sphinx warning, a dead link among them, fails the build.
docs: setup
	$(BIN)/sphinx-build -b html -W --keep-going -q docs $(SITE)

# Retrain and rerun the studies behind the figures under docs/run, docs/studies and docs/autograd.
figures: setup
	$(BIN)/python docs/make_figures.py
