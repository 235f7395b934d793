# ShopFDS infrastructure: the developer's entry points. `make help` lists them.
SHELL := /usr/bin/env bash
STACK ?= dev
LOCAL_STACK := node --import tsx scripts/local-stack.ts
# Commands that act on the stack in use (the Pulumi stack $(STACK), or the local dev stack) start with this.
IN_STACK := source scripts/lib/stack-env.sh &&
# `pulumi up` of the dev stack needs both a Docker engine and the Pulumi CLI; otherwise the local stack.
HAVE_DOCKER_AND_PULUMI := $(shell command -v pulumi >/dev/null 2>&1 && docker info >/dev/null 2>&1 && echo yes)

.DEFAULT_GOAL := help
.PHONY: help setup dev down status health logs dashboards outputs clean migrate dlq reset-db seed admin test lint typecheck bench preview up e2e-kind e2e-docker

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## Install what a fresh Debian/Ubuntu machine needs (Debian packages, npm packages)
	@bash scripts/setup.sh

dev: setup ## Start the development environment (pulumi up of the dev stack, or the local stack), migrate, seed an empty database (keeping data on a restart), start the service, a worker and the scheduler, and print where they are
ifeq ($(HAVE_DOCKER_AND_PULUMI),yes)
	@echo "Docker and the Pulumi CLI are here: building the service image from this checkout, then pulumi up of the dev stack."
	docker build -t shopfds-service:dev .
	pulumi up --stack dev --yes --refresh
	@$(MAKE) --no-print-directory migrate
	@$(MAKE) --no-print-directory seed SEED_ARGS=--if-empty
	@$(IN_STACK) node --import tsx scripts/dev-docker.ts --stack dev
else
	@echo "No Docker engine and Pulumi CLI here: starting the local stack (same rendered configs, real servers on loopback)."
	@$(LOCAL_STACK) start --profile dev
	@$(MAKE) --no-print-directory migrate
	@$(MAKE) --no-print-directory seed SEED_ARGS=--if-empty
	@$(LOCAL_STACK) apps --profile dev
endif

down: ## Stop the development environment (service, worker, scheduler, servers), keeping its data
	@$(LOCAL_STACK) stop --profile dev

status: ## Show what the local development stack is running
	@$(LOCAL_STACK) status --profile dev

health: ## Each component's health in one table: the runtime's checks (PostgreSQL, Redis, RabbitMQ), SMTP, Prometheus, Alertmanager, the service's /health, the worker
ifeq ($(HAVE_DOCKER_AND_PULUMI),yes)
	@docker ps --all --filter name=shopfds-$(STACK)- --format 'table {{.Names}}\t{{.Status}}'
else
	@$(LOCAL_STACK) health --profile dev
endif

logs: ## Follow every process's log of the running environment, one prefix each (LINES=10 first; Ctrl-C stops)
ifeq ($(HAVE_DOCKER_AND_PULUMI),yes)
	@bash scripts/docker-logs.sh $(STACK) $(or $(LINES),10)
else
	@$(LOCAL_STACK) logs --profile dev --lines $(or $(LINES),10)
endif

dashboards: ## Draw every Grafana panel from the running environment's Prometheus to PNG files (.dashboards/index.html; MINUTES=30)
ifeq ($(HAVE_DOCKER_AND_PULUMI),yes)
	@node --import tsx scripts/dashboards.ts --minutes $(or $(MINUTES),30) --prometheus "$$(pulumi stack output --stack $(STACK) monitoring --json | node -e 'process.stdin.on("data", (d) => process.stdout.write(JSON.parse(d).prometheusUrl.replace(/\/$$/, "")))')"
else
	@node --import tsx scripts/dashboards.ts --minutes $(or $(MINUTES),30)
endif

outputs: ## Print the stack outputs (JSON, includes secrets) of the environment in use
ifeq ($(HAVE_DOCKER_AND_PULUMI),yes)
	@pulumi stack output --stack $(STACK) --json --show-secrets
else
	@$(LOCAL_STACK) outputs --profile dev
endif

clean: ## Stop the development environment and remove its data (containers, volumes, local data)
ifeq ($(HAVE_DOCKER_AND_PULUMI),yes)
	pulumi destroy --stack dev --yes
endif
	@$(LOCAL_STACK) clean --profile dev

migrate: ## Apply pending schema migrations to the stack in use (migrate.ts down|status for the rest)
	@$(IN_STACK) node --import tsx service/bin/migrate.ts up

dlq: ## The dead letters of the stack in use: ARGS="list" (default), "redrive --task NAME --reason WHY", "redrive --all --reason WHY", "purge"
	@$(IN_STACK) node --import tsx runtime/cli/shopfds-runtime.ts dlq $(or $(ARGS),list)

reset-db: ## Drop every table of the stack's database and recreate the latest schema (asks first on a terminal)
	@bash scripts/reset-db.sh

seed: ## Load the seed data (1000 users, 500 products, 10000 orders…); a rerun replaces it (SEED_ARGS=--append adds a batch)
	@bash scripts/load-fixtures.sh $(SEED_ARGS)

admin: ## Create or reset an admin of the reference service (EMAIL=…; password from stdin, or generated and shown once)
	@$(IN_STACK) node --import tsx service/bin/create-admin.ts --email "$(EMAIL)"

test: setup ## Run every test: renderers, Pulumi mocks for dev and prod, integration against a local stack
	@bash scripts/test.sh

lint: setup ## Lint the GitHub workflows (actionlint) and every shell script (shellcheck); make test runs it too
	@node --import tsx scripts/lint.ts

typecheck: ## tsc --noEmit
	@npx tsc --noEmit -p .

bench: setup ## Benchmarks: stack start-up, router, blacklist, jobs vs Celery, /health (figures against same-run baselines)
	@npm run --silent bench

preview: ## pulumi preview of STACK (dev or prod); needs the Pulumi CLI
	pulumi preview --stack $(STACK)

up: ## pulumi up of STACK (dev or prod); needs the Pulumi CLI
	pulumi up --stack $(STACK)

e2e-kind: ## The prod program end to end on a throw-away kind cluster: pulumi up, smoke test, pulumi destroy (needs Docker, kind, kubectl, the Pulumi CLI)
	bash scripts/e2e-kind.sh

e2e-docker: ## The dev program end to end on this machine's Docker engine: build the image, pulumi up, smoke test, pulumi destroy (needs Docker and the Pulumi CLI)
	bash scripts/e2e-docker.sh
