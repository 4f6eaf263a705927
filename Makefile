# The two set-up commands of README.md: `make run` and `make test`. Both work from a clean clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Start scriptmail on its embedded default (SQLite, all parts in one process, a demo hosting).
run: $(STAMP)
	$(BIN)/scriptmail serve

## Lint, then run the whole test suite (needs the PostgreSQL server at 127.0.0.1:5432; .ci/run starts it).
## Most tests wait on sockets and subprocesses, so more workers than cores pays; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

## Measure scriptmail against Postfix on this machine (see benchmarks/README.md).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
