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

# The suite runs beside a platform from `make up`: every test has schemas (or a database),
# a topic prefix and consumer groups of its own (docs/platform.md, "Running the tests").
# First the tests that may share the machine, in pytest-xdist workers (a file at a time,
# so a package's or module's fixtures start once per worker); then, in one process, the
# end-to-end and browser tests (processes on fixed offset ports) and last the disruptive
# ones, which stop the shared Kafka and restart PostgreSQL: a running platform sees those
# outages for a few seconds too, and recovers. A phase that collects nothing (exit 5)
# fails the run unless PYTEST_ARGS narrowed the selection; both phases empty always fail.
TEST_WORKERS ?= auto
test: infra
	@echo "[test] ruff"; .venv/bin/ruff check .
	@echo "[test] mypy (strict)"; .venv/bin/mypy
	@echo "[test] architecture rules (import-linter)"; .venv/bin/lint-imports --no-cache --no-logo
	@export NORIA_TEST_INFRA_UP=1; empty=0; narrowed=$(if $(strip $(PYTEST_ARGS)),1,0); \
	for phase in parallel serial; do \
	  if [[ $$phase == parallel ]]; then xdist="-n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile"; \
	  else xdist=""; fi; \
	  echo "[test] pytest --phase $$phase $$xdist $(PYTEST_ARGS)"; \
	  rc=0; $(PY) -m pytest --phase $$phase $$xdist $(PYTEST_ARGS) || rc=$$?; \
	  if [[ $$rc == 5 ]]; then \
	    echo "[test] pytest --phase $$phase: NO TESTS selected (exit 5)"; \
	    if [[ $$narrowed == 0 ]]; then exit 5; fi; empty=$$((empty + 1)); \
	  elif [[ $$rc != 0 ]]; then exit $$rc; fi; \
	done; \
	if [[ $$empty == 2 ]]; then echo "[test] no test ran"; exit 5; fi

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
