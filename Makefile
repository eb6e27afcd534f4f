# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# Services for the second test run (CI sets them; see .ci/run).
SERVICES_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
SERVICES_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install run chat test test-services lint format bench mutate soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve on http://127.0.0.1:8000 with the embedded defaults (SQLite, in-process store, console).
run: install
	APP_ENV=$${APP_ENV:-development} $(BIN)/flask --app wsgi db upgrade
	APP_ENV=$${APP_ENV:-development} $(BIN)/gunicorn --bind $(HOST):$(PORT) --workers 1 \
		--threads 8 wsgi:app

## Lint and run the whole suite (embedded defaults unless TEST_DATABASE_URL/TEST_REDIS_URL set).
test: install lint
	$(BIN)/pytest -q

## The suite again on PostgreSQL and Redis.
test-services: install
	TEST_DATABASE_URL=$(SERVICES_DATABASE_URL) TEST_REDIS_URL=$(SERVICES_REDIS_URL) $(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m tests.bench

## Mutation testing of flows/ (the dialogue and the consent policy); not part of CI.
## MUTATE_CHILDREN=1 on a shared machine; MUTANTS="flows.policy*" for one module.
MUTATE_CHILDREN ?= 2
MUTANTS ?=
mutate: install
	$(BIN)/mutmut run --max-children $(MUTATE_CHILDREN) $(MUTANTS)
	$(BIN)/mutmut results

## Flakiness check, not part of CI: ten rounds of test + test-services on a fresh clone, a busy
## loop beside each (RUNS=3, TARGETS=test to narrow it; see .ci/soak).
soak:
	.ci/soak

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache mutants

## Be a customer: chat with the bot in the terminal (no Meta account needed).
chat: install
	APP_ENV=$${APP_ENV:-development} $(BIN)/flask --app wsgi db upgrade
	APP_ENV=$${APP_ENV:-development} $(BIN)/flask --app wsgi chat
