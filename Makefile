# plugpay — the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo .venv-tools/bin/uv)
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: run test lint bench install install-dev clean

$(UV):
	python3 -m venv .venv-tools
	.venv-tools/bin/pip install --quiet uv==0.13.9

install: $(UV)
	$(UV) sync --frozen --no-dev

install-dev: $(UV)
	$(UV) sync --frozen

run: install
	.venv/bin/plugpay demo

test: install-dev
	.venv/bin/pytest -q $(PYTEST_ARGS)

lint: install-dev
	.venv/bin/ruff check backend tests bench
	.venv/bin/ruff format --check backend tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

bench: install-dev
	.venv/bin/python bench/run.py

clean:
	rm -rf .venv .venv-tools .pytest_cache .mypy_cache .ruff_cache
