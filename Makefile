# Noria — the commands a newcomer types. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
ROLE ?= operator
SUB ?= nadia
PARTNER ?=

.PHONY: help bootstrap infra up down status test test-unit lint typecheck token bench soak

help:
	@echo "make up      install what is missing, start PostgreSQL, Kafka, Keycloak and every service"
	@echo "make test    the whole test suite (starts what it needs)"
	@echo "make down    stop everything 'make up' started (data is kept)"
	@echo "make token SUB=amina|youssef|salma|karim|nadia|omar  (an operator, from Keycloak)"
	@echo "make token ROLE=partner|wallet PARTNER=<id>          (client credentials)"
	@echo "make lint / make typecheck"
	@echo "make bench   saga throughput, close of business, reads (BENCH_ARGS=--quick; docs/benchmarks.md)"
	@echo "make soak    long chaos soak: SAGAS=1000 ROUNDS=5 by default (tests/e2e/test_load_chaos.py)"

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
	@echo "[test] architecture rules (import-linter)"; .venv/bin/lint-imports --no-cache --no-logo
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: bootstrap
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# A long soak, not part of `make test`: scenario 5 (concurrent sagas while every service
# is SIGKILLed, Kafka stops and PostgreSQL restarts) with more sagas and more rounds.
soak: infra
	@$(PY) -m scripts.platform down >/dev/null
	@NORIA_SOAK_SAGAS=$(or $(SAGAS),1000) NORIA_SOAK_ROUNDS=$(or $(ROUNDS),5) \
	  $(PY) -m pytest tests/e2e/test_load_chaos.py -s $(PYTEST_ARGS)

lint: bootstrap
	@.venv/bin/ruff check shared services scripts tests
	@.venv/bin/lint-imports --no-cache --no-logo

typecheck: bootstrap
	@.venv/bin/mypy

# Starts its own platform under /tmp/noria-platform.lock (never beside a test run).
bench: infra
	@$(PY) -m bench $(BENCH_ARGS)

token: bootstrap
	@eval "$$(scripts/infra/infra.sh env)" && \
	  $(PY) -m scripts.keycloak_dev token --role "$(ROLE)" --sub "$(SUB)" $(if $(PARTNER),--partner "$(PARTNER)",)
