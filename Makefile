# The README's two commands: `make up` (the whole platform, demo data included) and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)
# uv and, where the machine's Node.js is too old, the Node.js that ensure-system.sh installs live here.
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: up down status test check lint types contracts pytest install system web browser

install:
	@bash deploy/ensure-python.sh

system:
	@bash deploy/ensure-system.sh

# The web client (Vue): npm ci + vite build into web/dist, served by the gateway at /.
web:
	@bash web/build.sh

# Debian's Chromium (and a CJK font) for the browser tests in tests/web; never a downloaded browser.
browser:
	@bash deploy/ensure-system.sh chromium

up: system install
	@$(PY) -m deploy.local up $(if $(SCALE),--scale $(SCALE),)

down:
	@$(PY) -m deploy.local down

status:
	@$(PY) -m deploy.local status

lint: install
	.venv/bin/ruff check shared services tests bench deploy
	.venv/bin/ruff format --check shared services tests bench deploy

types: install
	.venv/bin/mypy shared services

contracts: install
	.venv/bin/lint-imports

check: lint types contracts

pytest: install
	.venv/bin/pytest -q $(PYTEST_ARGS)

test: system browser install check pytest
