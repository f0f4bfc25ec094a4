# bird-etl: `make demo` runs the pipeline on the embedded Bird API emulator; `make test` runs the tests.
# Each target builds .venv from the pinned versions in constraints.txt, and reuses it while it is current.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help demo test test-fast ui lint bench bench-quick clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP) ## run the main job end to end on the embedded emulator (last 7 days)
	$(BIN)/bird-etl demo

test: $(STAMP) ## run the whole test suite (what CI runs)
	$(BIN)/pytest -n 2 --dist loadfile

test-fast: $(STAMP) ## the tests without the slow variants
	$(BIN)/pytest -n 2 --dist loadfile -m "not slow"

ui: $(STAMP) ## serve the Dagster UI (with the demo's runs) on http://127.0.0.1:3000
	$(BIN)/bird-etl ui

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

BENCH_ARGS ?=
bench: $(STAMP) ## the full benchmark, about an hour on a quiet machine (writes bench/RESULTS.md; sizes: BENCH_ARGS="--help")
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: $(STAMP) ## every benchmark section on tiny data (under 2 minutes): proves the harness works
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

clean: ## remove the virtualenv and the demo data
	rm -rf $(VENV) data
