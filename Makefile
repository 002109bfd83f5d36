# Developer entry points. `make check` is what CI runs before the tests.
PYTHON ?= python
.PHONY: check format-check lint types contracts format test

check: format-check lint types contracts

format-check:
	$(PYTHON) -m ruff format --check .

lint:
	$(PYTHON) -m ruff check .

types:
	$(PYTHON) -m mypy

contracts:
	lint-imports

format:
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

test:
	$(PYTHON) -m pytest -q
