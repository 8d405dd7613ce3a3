# Two entry points for a fresh machine (Python 3.11, pip, make): `make generate`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup generate lint typecheck drift pytest test bench serve wheel clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

setup: $(INSTALLED)
	$(BIN)/pyservice fetch-protos

## Regenerate generated/ from proto/ with buf generate.
generate: setup
	$(BIN)/pyservice generate

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/buf lint

typecheck: setup
	$(BIN)/mypy protoc_gen_pyservice generated tests bench examples

## CI's proto drift check: generated/ must be exactly what buf generate makes now.
drift: setup
	$(BIN)/pyservice check

pytest: setup
	$(BIN)/pytest

## Lint, type checks, drift check and the whole test suite.
test: lint typecheck drift pytest

bench: setup
	$(BIN)/python bench/bench_plugin.py --write
	$(BIN)/python bench/bench_validate.py --write
	$(BIN)/python bench/bench_rpc.py --write
	$(BIN)/python bench/bench_userservice.py --write

## The example UserService on 127.0.0.1:$${PYSERVICE_PORT:-50051}, reflection on, its users in
## SQLite (PYSERVICE_DATABASE_URL; the README lists every PYSERVICE_* setting).
serve: setup
	PYSERVICE_REFLECTION=$${PYSERVICE_REFLECTION:-1} $(BIN)/python -m examples.userservice

## dist/protoc_gen_pyservice-*.whl, for `pip install 'dist/...whl[compiler,typing]'` elsewhere.
wheel: setup
	rm -rf build
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w dist .

clean:
	rm -rf $(VENV) .pyservice .pytest_cache .mypy_cache .ruff_cache
