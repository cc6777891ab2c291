# plugpay — the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo .venv-tools/bin/uv)
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: run test lint bench soak messages install install-dev clean

$(UV):
	python3 -m venv .venv-tools
	.venv-tools/bin/pip install --quiet uv==0.13.9

install: $(UV)
	$(UV) sync --frozen --no-dev

install-dev: $(UV)
	$(UV) sync --frozen

# `make run PORT=8001` when 8000 is taken (HOST=0.0.0.0 to reach it from a phone on the LAN).
PORT ?= 8000
HOST ?= 127.0.0.1
run: install
	.venv/bin/plugpay demo --host $(HOST) --port $(PORT)

# `make test` runs the suite on PYTEST_WORKERS parallel workers (pytest-xdist;
# PYTEST_WORKERS=0 runs it in one process; PYTEST_ARGS comes last, so `-n 4` there wins).
# The Python files are compiled to bytecode first (only the changed ones after the
# first time), so the workers and every `plugpay` process a test starts load them
# instead of compiling them each time.
PYTEST_WORKERS ?= 2
PYTEST_DIST ?= loadgroup
PYTEST_COMPILE ?= .venv/lib backend tests/support tests/peers

test: install-dev
	.venv/bin/python -m compileall -q -j 0 -x node_modules $(PYTEST_COMPILE)
	.venv/bin/pytest -q -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) $(PYTEST_ARGS)

lint: install-dev
	.venv/bin/ruff check backend tests bench
	.venv/bin/ruff format --check backend tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

# Many more kills at random moments than `make test` makes: `make soak RUNS=100`
# (PLUGPAY_CRASH_SEED=N replays a run; PostgreSQL too when PLUGPAY_TEST_DATABASE_URL is set).
RUNS ?= 20
soak: install-dev
	PLUGPAY_CRASH_RUNS=$(RUNS) .venv/bin/pytest -q -s -n 0 \
		tests/integration/test_crash_safety.py -k random_moments $(PYTEST_ARGS)

# The driver pages' texts: extract every _() and N_() into the template, bring each
# language's catalog up to it; then translate what is new (msgstr "") and commit.
LOCALE := backend/plugpay/web/locale
messages: install-dev
	.venv/bin/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --omit-header \
		-o $(LOCALE)/messages.pot .
	.venv/bin/pybabel update -i $(LOCALE)/messages.pot -d $(LOCALE) -D messages \
		--no-fuzzy-matching --ignore-obsolete -w 100

bench: install-dev
	.venv/bin/python bench/run.py

clean:
	rm -rf .venv .venv-tools .pytest_cache .mypy_cache .ruff_cache
