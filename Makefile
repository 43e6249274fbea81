# AX Integration Hub — `make run` starts the hub, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test test-unit test-integration lint bench migrate seed collectstatic

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when a requirements file changed.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

# The static files as WhiteNoise serves them: a content hash in each name, gzip and brotli beside,
# and the manifest that names them. Collected again only when a static file or a package changed.
STATIC_MANIFEST := $(or $(AX_VAR_DIR),var)/staticfiles/staticfiles.json
$(STATIC_MANIFEST): $(shell find static -type f) $(VENV)/.installed
	$(BIN)/python manage.py collectstatic --noinput -v0

collectstatic: $(STATIC_MANIFEST)

run: seed collectstatic
	@echo "AX Integration Hub on http://127.0.0.1:$(PORT)/ (Ctrl-C stops web, worker and dispatcher)"
	DEBUG=$${DEBUG:-1} PATH=$(abspath $(BIN)):$$PATH $(BIN)/honcho start --port $(PORT)

test: test-unit test-integration

test-unit: $(VENV)/.installed
	$(BIN)/pytest -n 2 --dist loadfile -m "not integration"

# The scale-out tests need PostgreSQL and Redis; they run when both answer on loopback.
test-integration: $(VENV)/.installed
	@if $(BIN)/python -c "import socket; [socket.create_connection(('127.0.0.1', p), 1).close() for p in (5432, 6379)]" 2>/dev/null; then \
		DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest -m integration; \
	else \
		echo "SKIPPED integration tests: PostgreSQL (5432) and Redis (6379) do not both answer on 127.0.0.1"; \
	fi

lint: $(VENV)/.installed
	$(BIN)/ruff check .
