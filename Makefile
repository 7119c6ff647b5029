# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install tools clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian's wrk drives the serving benchmark's load (its --quick run is part of the tests)
tools:
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null || \
	  (apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null) || \
	  { echo "make: wrk is missing and could not be installed: apt-get install -y wrk" >&2; exit 1; }

demo: $(STAMP)
	$(BIN)/mloop demo

test: $(STAMP) tools
	$(BIN)/pytest -n 2 --dist loadgroup --durations=25

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP) tools
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .mloop benchmarks/.venvs
