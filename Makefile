# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DATA ?= $(if $(NATURAL_BM_DATA),$(NATURAL_BM_DATA),$(wildcard ../shared/data/mnist))

.PHONY: venv demo test lint bench docs clean

venv: $(STAMP)

$(STAMP): setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e ".[dev,bench,docs]"
	touch $(STAMP)

demo: $(STAMP)
	NATURAL_BM_DATA=$(DATA) $(PY) -m natural_bm.demo

# make test: one pytest-xdist worker per core (one torch thread each, tests/conftest.py); a test that
# fails alone fails the same way there. `pytest tests` runs them in one process.
test: $(STAMP)
	$(PY) -m ruff check natural_bm tests scripts experiments
	NATURAL_BM_DATA=$(DATA) $(PY) -m pytest -q -n auto --dist worksteal tests

lint: $(STAMP)
	$(PY) -m ruff check natural_bm tests scripts experiments

bench: $(STAMP)
	NATURAL_BM_DATA=$(DATA) $(PY) scripts/bench_rbm.py
	NATURAL_BM_DATA=$(DATA) $(PY) scripts/bench_ais.py

# The documentation site: docs/_build/html. -W --keep-going: every warning (a broken reference, a failing
# gallery example) is reported and fails the build. SPHINX_GALLERY_SKIP=1 skips running the examples.
SPHINXOPTS ?=
docs: $(STAMP)
	NATURAL_BM_DATA=$(abspath $(DATA)) $(PY) -m sphinx -W --keep-going -b html $(SPHINXOPTS) docs docs/_build/html

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
