# NZ COVID Tracer backend: the verbs. `make local` runs the whole system on this machine;
# `make test` runs every check CI runs. Both install what they need into .venv first.

# Python 3.13, the Lambda runtime the services deploy to. A pyenv shim named python3.13 runs
# only when pyenv is told the version, so also look in pyenv's versions folder.
PYTHON ?= $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 \
                           /usr/local/bin/python3.13 /usr/bin/python3.13; do \
                     "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null \
                       && { "$$p" -c 'import sys; print(sys.executable)'; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
SERVICES := auth details export enf
STAMP := $(VENV)/.installed-py3.13

.PHONY: help install local stop job test lint typecheck cfn-lint test-shared test-unit test-integration \
        test-services test-contract \
        $(addprefix test-,$(SERVICES)) test-packages vendor package deploy-all $(addprefix deploy-,$(SERVICES)) \
        migrate clean

help:
	@echo "make local          start the whole system locally (no AWS account needed)"
	@echo "make stop           stop everything make local started"
	@echo "make job JOB=name   run a scheduled job now: enf-export enf-cleanup events-feed details-export usage-report"
	@echo "make migrate        run the ENF migrations against DATABASE_URL (TARGET=N optional)"
	@echo "make test           lint, type checks, cfn-lint and every test tier"
	@echo "make test-contract  only the contract tier: answers decoded as the real phones do"
	@echo "make package        build every service's deployment package and report its size"
	@echo "make deploy-all STAGE=dev|staging|prod [DRY_RUN=1|PLAN=1]   stacks, services, migrations"
	@echo "make deploy-<service> STAGE=…  [DRY_RUN=1]           one of: $(SERVICES)"

# PgBouncer, the local stand-in for RDS Proxy (tracerstack.pooler): Debian's package
# unpacked into the venv, no root and no system service (infra/local/bin/install-pgbouncer).
PGBOUNCER := $(VENV)/pgbouncer/usr/sbin/pgbouncer

install: $(STAMP) $(PGBOUNCER)

$(STAMP): requirements-dev.txt shared/pyproject.toml infra/local/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.13 is required (python3.13 on PATH or under pyenv)"; exit 1; }
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e shared -e infra/local
	@touch $@

# dpkg keeps the package's file times: touched, so it is newer than the venv it lives in.
$(PGBOUNCER): $(STAMP) infra/local/bin/install-pgbouncer
	sh infra/local/bin/install-pgbouncer $(VENV)/pgbouncer
	@touch $@

local: install
	$(BIN)/python -m tracerstack up

stop: install
	$(BIN)/python -m tracerstack down

job: install
	$(BIN)/python -m tracerstack job $(JOB)

# ENF schema migrations against DATABASE_URL (TARGET=N to go to version N).
migrate: install
	@test -n "$(DATABASE_URL)" || { echo "set DATABASE_URL"; exit 1; }
	$(BIN)/python -m covidtracer.enfkeys.schema $(TARGET)

# Every check CI runs. The tiers are independent, so they run side by side (each spends much
# of its time waiting on the servers it talks to); each tier's output is printed whole as it
# ends; the longest start first. `make test TEST_JOBS=1` runs them one after another.
TEST_JOBS ?= 4
# Test modules that wait on servers, sleeps and subprocesses spread over workers (pytest-xdist);
# a module stays on one worker, so its module-scoped servers are started once.
PYTEST_PARALLEL ?= -n 3 --dist loadfile
test: install
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target \
	  test-integration test-enf test-details test-unit test-auth test-export test-packages \
	  lint typecheck cfn-lint

# actionlint reads the pipeline as GitHub would run it (permissions a called workflow may ask
# for, action inputs and runtimes, expressions); ShellCheck checks its `run:` scripts. Both
# come from requirements-dev.txt, so every machine checks the same way.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check shared/src
	$(BIN)/actionlint -oneline -shellcheck=$(BIN)/shellcheck -pyflakes= .github/workflows/*.yml

# mypy strict over shared/ (pyproject.toml), then over each app: every app module is called
# `app`, so each is checked on its own.
typecheck: install
	$(BIN)/mypy
	@for service in $(SERVICES); do \
	  $(BIN)/mypy --strict --config-file pyproject.toml services/$$service/app.py || exit 1; \
	done

# cfn-lint with its informational I3011 too: every stateful resource states what happens to it
# when its stack is deleted or it is replaced (DeletionPolicy, UpdateReplacePolicy).
CFN_LINT := $(BIN)/cfn-lint --include-checks I3011 --
cfn-lint: install
	$(CFN_LINT) infra/templates/*.yaml

# The shared package and the local stack: unit tier (no I/O) and integration tier (moto
# server over HTTP, real PostgreSQL), the local stack's modules first: the longest of them
# waits for a local export window to close.
test-shared: test-unit test-integration

test-unit: install
	$(BIN)/python -m pytest shared/tests/unit infra/local/tests/unit

test-integration: install
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) infra/local/tests/integration shared/tests/integration

# The contract tier alone (it also runs inside the tiers above, so `make test` includes it):
# every answer decoded as the app and its exposure-notification plugin decode it (CLIENTS.md).
test-contract: install
	$(BIN)/python -m pytest -m contract infra/local/tests/unit
	@for service in enf details; do $(BIN)/python -m pytest -m contract services/$$service/tests || exit 1; done
	$(BIN)/python -m pytest -m contract infra/local/tests/integration

# Every app module is called `app`, so each service's tests run in a process of their own.
test-services: $(addprefix test-,$(SERVICES))

$(addprefix test-,$(SERVICES)): test-%: install
	$(BIN)/python -m pytest services/$*/tests

# Each app's vendor/: the covidtracer modules its app.py imports (core and its own domains,
# found by reading the imports) and its pinned third-party packages (tracerstack.vendor).
vendor: install
	$(BIN)/python -m tracerstack.vendor

# Deployment packages (zipped, as Lambda receives them) under build/<service>/: `chalice
# package` plus the finishing that makes its template stage-independent (tracerstack.package).
package: vendor
	$(BIN)/python -m tracerstack.package
	$(BIN)/python bench/package_size.py

# checkov in its own virtualenv (requirements-checkov.txt says why); its skipped checks and the
# reason for each are in infra/checkov.yaml. BC_SKIP_MAPPING: no call home for guidelines.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
$(CHECKOV_STAMP): requirements-checkov.txt
	@test -n "$(PYTHON)" || { echo "Python 3.13 is required (python3.13 on PATH or under pyenv)"; exit 1; }
	$(PYTHON) -m venv --clear $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	@touch $@

# What `make package` builds, as CloudFormation reads it: cfn-lint (no errors, no warnings),
# checkov over the source and the packaged templates, and the packaged-template tests
# (runtime, version, alias, event sources, WAF, errors, AWS's limits).
test-packages: package $(CHECKOV_STAMP)
	$(CFN_LINT) build/*/template.json
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --config-file infra/checkov.yaml \
	  $$(for t in infra/templates/*.yaml build/*/template.json; do printf -- '-f %s ' "$$t"; done)
	$(BIN)/python -m pytest infra/local/tests/package

DEPLOY_FLAGS = --stage $(STAGE) $(if $(DRY_RUN),--dry-run,) $(if $(PLAN),--plan,)
# Deploy what build/ holds (a pipeline packages once and hands build/ to every stage);
# package first only when nothing is packaged yet.
PACKAGED := $(if $(wildcard build/*/release.json),,package)

deploy-all: install $(PACKAGED)
	@test -n "$(STAGE)" || { echo "set STAGE=dev|staging|prod"; exit 1; }
	$(BIN)/python -m tracerstack.deploy $(DEPLOY_FLAGS)

$(addprefix deploy-,$(SERVICES)): deploy-%: install $(PACKAGED)
	@test -n "$(STAGE)" || { echo "set STAGE=dev|staging|prod"; exit 1; }
	$(BIN)/python -m tracerstack.deploy $(DEPLOY_FLAGS) --service $*

clean: stop
	rm -rf .local services/*/vendor $(CHECKOV_VENV)
