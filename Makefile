# relmgr: `make demo` runs the dashboard on an embedded Temporal dev server; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test coverage lint typecheck unit bench bench-full bench-quick soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/relmgr dev

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# Python writes bytecode for the suite even where the environment says not to (this machine sets
# PYTHONDONTWRITEBYTECODE=1): otherwise every process the suite starts (pytest's workers, each
# dashboard, API and CLI) compiles relmgr from source again, and pytest re-rewrites the test
# modules and its plugins' packages (hypothesis, schemathesis) at every start: 6 s instead of
# 11 s to collect. The caches are __pycache__ folders, git-ignored.
unexport PYTHONDONTWRITEBYTECODE

# Every kind of test but the long runs (marker `bench`, left out by pyproject's addopts), on two
# workers: most of the suite waits on servers and a browser, so two share the two cores well.
# tests/conftest.py groups the tests so that module and browser fixtures are built once.
XDIST := -n 2 --dist loadgroup --no-loadscope-reorder

test: lint typecheck
	$(BIN)/pytest $(XDIST)

# The same suite under coverage, `relmgr/` held at 80 %. Not part of `make test`: coverage's tracer
# (Python 3.11 has no sys.monitoring) makes the in-process tests ~60 % slower in CPU: on two
# workers, tests/{api,ui,temporal,reader,...} took 108-110 s with it against 76-80 s without.
coverage: $(VENV)/.installed
	$(BIN)/pytest $(XDIST) --cov=relmgr --cov-report=term --cov-fail-under=80

unit: $(VENV)/.installed
	$(BIN)/pytest $(XDIST) -m "not integration and not browser and not bench"

# The long runs checked by tests: the quick benchmark end to end, a 45 s soak, a 100-user load.
bench: $(VENV)/.installed
	$(BIN)/pytest -m bench

bench-full: $(VENV)/.installed
	$(BIN)/python -m bench --out docs/PERFORMANCE.md --json docs/performance.json
	$(BIN)/python -m bench.big_release --markdown docs/PERFORMANCE.md --json docs/big-release.json

bench-quick: $(VENV)/.installed
	$(BIN)/python -m bench --quick --out bench-out/PERFORMANCE.md --json bench-out/performance.json

soak: $(VENV)/.installed
	$(BIN)/python -m bench.soak --minutes 10 --users 100

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov bench-out test-artifacts
