# The two commands everyone uses: `make run` and `make test` (see README.md).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench install

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/policy-ledger serve

lint: install
	$(BIN)/ruff check ledger api tests bench
	$(BIN)/ruff format --check ledger api tests bench
	$(BIN)/mypy --strict ledger api

test: lint
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m bench.append
	$(BIN)/python -m bench.verify
	$(BIN)/python -m bench.projections
	$(BIN)/python -m bench.http
	$(BIN)/python -m bench.bundle
