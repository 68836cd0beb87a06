# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# PostgreSQL for the second test pass (trust auth on loopback here; CI starts it if down).
POSTGRES_URL ?= postgres://postgres:postgres@127.0.0.1:5432/fedtrack
PORT ?= 8000
SUPERLINK_PORT ?= 9093

# Flower's environment (no telemetry, no update check) is set by clients/flower_env.py.

.PHONY: install demo test test-sqlite test-postgres test-js lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

demo: install
	DEBUG=$${DEBUG:-1} FLOWER_SUPERLINK=127.0.0.1:$(SUPERLINK_PORT) \
		$(PY) manage.py demo --port $(PORT) --superlink-port $(SUPERLINK_PORT)

lint: install
	$(VENV)/bin/ruff check .

test: lint test-js test-sqlite test-postgres

# The dashboard's ES modules, with Node's own test runner (no npm package needed).
test-js:
	node --test webapp/tests/js/*.test.js

test-sqlite: install
	env -u DATABASE_URL $(PY) -m pytest

# The second pass repeats everything that touches the database; tests marked `once` (killed
# processes, TLS) exercise Flower and the OS, and ran in the first pass.
test-postgres: install
	DATABASE_URL=$(POSTGRES_URL) $(PY) -m pytest -m "not once"

# Benchmarks (bench/): `make bench`, `make bench QUICK=1` (minutes), `make bench ONLY=tracker,api`,
# `make bench DB=sqlite`, MERGE=1 (replace only those lines of the last results). Results: bench/results/latest.json. PostgreSQL: its own database.
BENCH_POSTGRES_URL ?= postgres://postgres:postgres@127.0.0.1:5432/fedtrack_bench
export BENCH_POSTGRES_URL

$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: install $(VENV)/.bench-installed
	$(PY) -m bench $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY)) $(if $(DB),--db $(DB)) $(if $(MERGE),--merge)

clean:
	rm -rf $(VENV) node_modules var
