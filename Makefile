# Noria — the commands a newcomer types. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
ROLE ?= operator
SUB ?= dev-operator
PARTNER ?=

.PHONY: help bootstrap infra up down status test test-unit lint typecheck token bench soak

help:
	@echo "make up      install what is missing, start PostgreSQL, Kafka and every service"
	@echo "make test    the whole test suite (starts what it needs)"
	@echo "make down    stop everything 'make up' started (data is kept)"
	@echo "make token ROLE=operator|partner|wallet SUB=<name> PARTNER=<id>"
	@echo "make lint / make typecheck"

bootstrap:
	@scripts/bootstrap.sh

infra: bootstrap
	@scripts/infra/infra.sh up

up: infra
	@$(PY) -m scripts.platform up

down:
	@-$(PY) -m scripts.platform down 2>/dev/null || true
	@scripts/infra/infra.sh down

status:
	@scripts/infra/infra.sh status
	@-$(PY) -m scripts.platform status

# The tests use the same schemas, topics and consumer groups as a running
# platform, so a platform started by `make up` is stopped first.
test: infra
	@$(PY) -m scripts.platform down >/dev/null
	@echo "[test] ruff"; .venv/bin/ruff check .
	@echo "[test] mypy (strict)"; .venv/bin/mypy
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: bootstrap
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: bootstrap
	@.venv/bin/ruff check shared services scripts tests

typecheck: bootstrap
	@.venv/bin/mypy

token: bootstrap
	@$(PY) -m shared.auth --role "$(ROLE)" --sub "$(SUB)" $(if $(PARTNER),--partner "$(PARTNER)",)
