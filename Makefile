# One-command workflows. `make run` serves the seeded shop; `make test` runs lint + the whole suite.
# Everything (virtualenv, local services, caches) is created on demand under git-ignored folders.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# A local .env (see .env.example) sets ports and URLs for the stack scripts and the app alike.
ifneq (,$(wildcard .env))
include .env
export
endif

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run REPLICAS=3`: three gunicorn replicas on REPLICA_BASE_PORT+1.. behind nginx on HOST:PORT.
REPLICAS ?= 1
REPLICA_BASE_PORT ?= 8100
PYTEST_ARGS ?=
# `make services-up CLUSTER=1` (and run, dev, seed, migrate): the clustered stack of devstack/cluster.sh
# (3 Elasticsearch nodes, 3 NATS servers, Redis primary + replica + 3 sentinels) and the app pointed at it.
CLUSTER ?=
ifeq ($(CLUSTER),1)
STACK := bash devstack/cluster.sh
$(foreach setting,$(shell bash devstack/cluster.sh env | sed 's/^export //'),$(eval export $(setting)))
else
STACK := bash devstack/stack.sh
endif

.PHONY: help venv lock services-up services-down services-status migrate seed logins run dev browser test test-unit test-faults test-cluster test-compose compose-images compose-up compose-down lint fmt check-deploy bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(BIN)/.installed ## Create .venv and install pinned dependencies

services-up: venv ## Start PostgreSQL, Elasticsearch, Redis, NATS and the mail catcher (idempotent; CLUSTER=1: the cluster)
	@$(STACK) up

services-down: ## Stop the local services (data is kept in .devstack/; CLUSTER=1: the cluster)
	@$(STACK) down

services-status: ## Show which local services are running (CLUSTER=1: every node of the cluster)
	@$(STACK) status

migrate: services-up
	$(PY) manage.py migrate --noinput

seed: migrate ## Load the demo catalog and users (idempotent)
	$(PY) manage.py seed

logins: migrate ## Give the demo shopper and the staff user new passwords and print their logins
	$(PY) manage.py demo_logins

run: migrate ## Serve the seeded shop at http://127.0.0.1:8000 (REPLICAS=N: N gunicorns behind nginx)
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py seed --if-empty
	HOST=$(HOST) PORT=$(PORT) REPLICA_BASE_PORT=$(REPLICA_BASE_PORT) bash devstack/replicas.sh run $(REPLICAS)

dev: migrate ## Auto-reloading Django dev server at http://127.0.0.1:8000
	$(PY) manage.py seed --if-empty
	DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT)

lint: venv ## ruff check + ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: venv ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-deploy: venv ## manage.py check --deploy under production settings
	DJANGO_SETTINGS_MODULE=shopcart.settings.production SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
		ALLOWED_HOSTS=shop.example.com $(PY) manage.py check --deploy --fail-level WARNING

# axe-core (npm) checks every page type in the browser tests; installed at this exact version into .cache/.
AXE_CORE_VERSION := 4.11.0
AXE_CORE_STAMP := .cache/npm/axe-core-$(AXE_CORE_VERSION).installed

browser: $(AXE_CORE_STAMP) ## Install Debian's Chromium and axe-core for the browser tests (once)
	@bash devstack/stack.sh ensure-package chromium

$(AXE_CORE_STAMP):
	@bash devstack/stack.sh ensure-package npm
	npm install --prefix .cache/npm --no-save --no-audit --no-fund --loglevel=error axe-core@$(AXE_CORE_VERSION)
	@touch $@

test: lint services-up browser compose-images ## Lint, then the whole suite against the real services
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv ## Only the unit layer (tests/unit/): pure logic in seconds, no services needed
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

test-faults: services-up ## Stop and restart PostgreSQL, Elasticsearch, Redis and NATS under load (docs/operations.md)
	$(BIN)/pytest -m faults

test-cluster: services-up ## Kill nodes of a 3-node ES/NATS/Redis cluster under load (starts and stops the cluster)
	$(BIN)/pytest -m cluster

# The compose files on Podman (docs/adr/0007): Podman, runc and mmdebstrap from Debian on first use, the
# images in .cache/podman/ (the first build downloads, ~2 min; later ones reuse it).
COMPOSE := $(PY) devstack/compose.py
COMPOSE_REPLICAS ?= 3

compose-images: venv ## Build the web image and the backing services' stand-ins for Podman (cached)
	@$(COMPOSE) images

compose-up: compose-images ## docker-compose.yml in containers, web x COMPOSE_REPLICAS behind nginx on HTTP_PORT (CLUSTER=1: the cluster file)
	@$(COMPOSE) up $(if $(CLUSTER),--cluster) --scale web=$(COMPOSE_REPLICAS)

compose-down: ## Stop and remove the compose stack's containers (volumes kept; CLUSTER=1: the cluster's)
	@$(COMPOSE) down $(if $(CLUSTER),--cluster)

test-compose: compose-images ## Build the images and run both compose stacks for real (no local stack needed)
	$(BIN)/pytest -m compose

$(BIN)/.bench-installed: bench/requirements.txt $(BIN)/.installed
	$(PY) -m pip install -q -r bench/requirements.txt -c constraints.txt
	@touch $@

lock: $(BIN)/.bench-installed ## Rewrite constraints.txt from .venv (after changing a requirements file)
	@sed -n '1,3p' constraints.txt > constraints.txt.new
	$(PY) -m pip freeze --exclude-editable >> constraints.txt.new
	@mv constraints.txt.new constraints.txt

bench: migrate $(BIN)/.bench-installed ## Load benchmarks of the production setup on loopback (~3 min; bench/README.md)
	@bash devstack/stack.sh ensure-package wrk
	$(PY) bench/run.py

clean: services-down ## Stop services and delete local data, caches and the virtualenv
	bash devstack/stack.sh purge postgres
	bash devstack/cluster.sh reset
	rm -rf .devstack .cache $(VENV) staticfiles db.sqlite3
