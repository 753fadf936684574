# modelyard — the two commands of the quick start are `make demo` and `make test`.
# Everything else is a building block of those two; `make help` lists them.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
# uv comes from PyPI into a git-ignored cache unless one is already on the PATH.
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.cache/uv/bin/uv)
VENV := $(CURDIR)/.venv
MODELYARD := $(VENV)/bin/modelyard
LOCAL := $(CURDIR)/deploy/local

# `make up` / `make demo` stack: default ports (each one a MODELYARD_*_PORT variable), data in .run/dev.
DEV_ENV := MODELYARD_RUN_DIR=$${MODELYARD_RUN_DIR:-$(CURDIR)/.run/dev}
# The recorded GSM8K answers `make demo` replays through the pipeline (licence and source beside the file),
# and how many of its 660 questions the demo sends per tenant policy (0: all).
GSM8K := $(CURDIR)/apps/modelyard/src/modelyard/data/gsm8k/gsm8k_dev.csv
DEMO_GSM8K_QUESTIONS ?= 0
# What a client on this machine (the demo, the benchmarks) needs to reach that stack.
CLIENT_ENV := MODELYARD_KAFKA__BOOTSTRAP_SERVERS=$${MODELYARD_KAFKA__BOOTSTRAP_SERVERS:-127.0.0.1:$${MODELYARD_KAFKA_PORT:-9092}} \
	MODELYARD_MONGO__URL=$${MODELYARD_MONGO__URL:-mongodb://127.0.0.1:$${MODELYARD_MONGO_PORT:-27017}} \
	MODELYARD_DEMO_API_URL=http://127.0.0.1:$${MODELYARD_API_PORT:-8080}
# The stack runs locally (java, mvn, go) by default; with none of those but a Docker daemon, in containers.
STACK := $(shell if command -v java >/dev/null && command -v mvn >/dev/null && command -v go >/dev/null; then echo local; \
	elif docker info >/dev/null 2>&1; then echo docker; else echo local; fi)
# `make test` stack: its own ports and data, so it never disturbs a running `make up`.
TEST_KAFKA_PORT ?= 19092
TEST_KAFKA_CONTROLLER_PORT ?= 19093
TEST_MONGO_PORT ?= 27018
# The secured (SASL_SSL, ACL) broker of the security tests: the two ports after the plain broker's.
TEST_KAFKA_SASL_PORT ?= $(shell echo $$(( $(TEST_KAFKA_PORT) + 2 )))
TEST_KAFKA_SASL_CONTROLLER_PORT ?= $(shell echo $$(( $(TEST_KAFKA_PORT) + 3 )))
TEST_ENV := MODELYARD_RUN_DIR=$(CURDIR)/.run/test MODELYARD_KAFKA_PORT=$(TEST_KAFKA_PORT) \
	MODELYARD_KAFKA_CONTROLLER_PORT=$(TEST_KAFKA_CONTROLLER_PORT) MODELYARD_MONGO_PORT=$(TEST_MONGO_PORT) \
	MODELYARD_KAFKA_SASL_PORT=$(TEST_KAFKA_SASL_PORT) MODELYARD_KAFKA_SASL_CONTROLLER_PORT=$(TEST_KAFKA_SASL_CONTROLLER_PORT)
PYTEST_ARGS ?=
# Manifests are rendered with `kubectl kustomize`; without kubectl, with kustomize built by Go into the cache.
CACHE_DIR := $(or $(MODELYARD_CACHE_DIR),$(CURDIR)/.cache)
KUSTOMIZE_MODULE := sigs.k8s.io/kustomize/kustomize/v5@v5.5.0

.PHONY: help install infra-up infra-down up down status demo test test-unit bench screenshots schemas schemas-check k8s-check k8s-renderer router-models clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(CURDIR)/.cache/uv/bin/uv:
	python3 -m venv $(CURDIR)/.cache/uv
	$(CURDIR)/.cache/uv/bin/pip install --quiet "uv==$(UV_VERSION)"

install: $(UV) ## Install every package into .venv from the lock file (uv)
	$(UV) sync --frozen --quiet
	@test -x $(MODELYARD)

infra-up: ## Start Kafka (KRaft) and FerretDB locally, without Docker
	$(DEV_ENV) $(LOCAL)/kafka.sh start
	$(DEV_ENV) $(LOCAL)/ferretdb.sh start

infra-down: ## Stop the local Kafka and FerretDB
	-$(DEV_ENV) $(LOCAL)/ferretdb.sh stop
	-$(DEV_ENV) $(LOCAL)/kafka.sh stop

up: install ## Start the whole stack in the background and print its addresses
ifeq ($(STACK),docker)
	KAFKA_HOST_PORT=$${MODELYARD_KAFKA_PORT:-9092} MONGO_HOST_PORT=$${MODELYARD_MONGO_PORT:-27017} docker compose up -d --wait
else
	@$(MAKE) --no-print-directory infra-up
	$(DEV_ENV) $(LOCAL)/services.sh start
endif
	@echo
	@echo "modelyard is up:"
	@echo "  dashboard       http://127.0.0.1:$${MODELYARD_DASHBOARD_PORT:-8082}  (sign in with the admin token: $${MODELYARD_ADMIN_TOKEN:-dev-admin-token})"
	@echo "  tenant API      http://127.0.0.1:$${MODELYARD_API_PORT:-8080}  (docs: /docs; admin token: \$$MODELYARD_ADMIN_TOKEN, dev default 'dev-admin-token')"
	@echo "  OpenAI-compatible endpoint http://127.0.0.1:$${MODELYARD_INGRESS_PORT:-8081}/v1  (api_key: a tenant API key)"
	@echo "  model simulator http://127.0.0.1:$${MODELYARD_SIMULATOR_PORT:-8090}/v1"
	@echo "  Kafka           127.0.0.1:$${MODELYARD_KAFKA_PORT:-9092}"
	@echo "  MongoDB (FerretDB) mongodb://127.0.0.1:$${MODELYARD_MONGO_PORT:-27017}"
	@o=$${MODELYARD_OPS_PORT_BASE:-9101}; echo "  ops endpoints   router :$$o, inference-slm :$$((o+1)), inference-llm :$$((o+2)), metering :$$((o+3)), webhooks :$$((o+4)) (/healthz /readyz /metrics)"
	@echo "  logs            $${MODELYARD_RUN_DIR:-.run/dev}/logs/;  stop with: make down"

down: ## Stop everything `make up` started
ifeq ($(STACK),docker)
	docker compose down
else
	-$(DEV_ENV) $(LOCAL)/services.sh stop
	@$(MAKE) --no-print-directory infra-down
endif

status: ## Show which services answer
	@$(DEV_ENV) $(LOCAL)/services.sh status

demo: ## Start the stack, run the helpdesk demo stream and the GSM8K cascade on recorded answers, print both tables, stop everything
	@rc=0; $(MAKE) --no-print-directory up || rc=$$?; \
	if [ $$rc -eq 0 ]; then $(CLIENT_ENV) $(MODELYARD) demo || rc=$$?; \
		$(CLIENT_ENV) $(MODELYARD) eval-cascade --data $(GSM8K) --sample $(DEMO_GSM8K_QUESTIONS) || rc=$$?; fi; \
	$(MAKE) --no-print-directory down >/dev/null 2>&1 || true; exit $$rc

test: install k8s-renderer ## Start Kafka (plain and SASL_SSL) and FerretDB on test ports, run the whole test suite, stop them
	@$(LOCAL)/chromium.sh ensure >/dev/null || echo "no Chromium: the dashboard's browser test will be skipped"
	@rc=0; { $(TEST_ENV) $(LOCAL)/kafka.sh start && $(TEST_ENV) $(LOCAL)/kafka.sh start --sasl-ssl && $(TEST_ENV) $(LOCAL)/ferretdb.sh start; } || rc=$$?; \
	if [ $$rc -eq 0 ]; then MODELYARD_TEST_KAFKA=127.0.0.1:$(TEST_KAFKA_PORT) MODELYARD_TEST_MONGO_URL=mongodb://127.0.0.1:$(TEST_MONGO_PORT) \
		MODELYARD_TEST_KAFKA_SASL_DIR=$(CURDIR)/.run/test/kafka-sasl \
		MODELYARD_TEST_KAFKA_RESTART="$(TEST_ENV) $(LOCAL)/kafka.sh stop && $(TEST_ENV) $(LOCAL)/kafka.sh start" \
		$(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; fi; \
	$(TEST_ENV) $(LOCAL)/ferretdb.sh stop || true; $(TEST_ENV) $(LOCAL)/kafka.sh stop --sasl-ssl || true; $(TEST_ENV) $(LOCAL)/kafka.sh stop || true; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; exit $$rc

# Unit tests are CPU-bound and share no server: one pytest worker per core (pytest-xdist), a module's
# tests on one worker so module fixtures are made once. UNIT_WORKERS=0 runs them in this process.
UNIT_WORKERS ?= auto
test-unit: install k8s-renderer ## Only the tests that need no servers (a test that reaches one fails)
	$(VENV)/bin/pytest -m "not system and not faults" -n $(UNIT_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install ## Run the benchmarks against a running stack (`make up` first)
	$(CLIENT_ENV) $(MODELYARD) bench all

# 2,700 demo queries give the basic-tier tenant 900 of its 1,000 API calls a day: a quota warning to show.
screenshots: install ## Run the demo against `make up`, then screenshot the dashboard into docs/
	@$(LOCAL)/chromium.sh ensure >/dev/null
	$(CLIENT_ENV) $(MODELYARD) demo --queries 2700
	$(MODELYARD) screenshots --url http://127.0.0.1:$${MODELYARD_DASHBOARD_PORT:-8082} \
		--token "$${MODELYARD_ADMIN_TOKEN:-dev-admin-token}" --out docs

# The router's shipped model files (issue 16): helpdesk from five writers' labelled rows in the repository, its
# thresholds chosen leaving one writer (source) out at a time (the held-out files only measured); mmlu from
# RouteLLM's MMLU labels in ../shared (12 subjects held out). Deterministic.
ROUTER_MODELS := services/router/src/modelyard_router/data/models
HELPDESK_DATA := apps/modelyard/src/modelyard/data/helpdesk
MMLU_DATA ?= ../shared/data/routellm_mmlu
router-models: install ## Retrain the router's shipped model files (helpdesk: seconds; mmlu from MMLU_DATA: ~3 min of CPU)
	$(MODELYARD) train-router --recipe helpdesk --group-by source \
		$(foreach f,team_seed authored_tuning independent_tuning_a independent_tuning_b independent_tuning_c,--data $(HELPDESK_DATA)/$(f).jsonl) \
		--held-out $(HELPDESK_DATA)/independent_heldout_d.jsonl --held-out $(HELPDESK_DATA)/banking77_sample.jsonl \
		--out $(ROUTER_MODELS)/helpdesk.json | tail -n 1 | cut -c 1-200
	$(MODELYARD) train-router --recipe mmlu --data $(MMLU_DATA) \
		--held-out-groups @apps/modelyard/src/modelyard/data/mmlu_held_out_subjects.txt \
		--out $(ROUTER_MODELS)/mmlu.json | tail -n 1 | cut -c 1-200

schemas: install ## Regenerate JSON Schemas, AsyncAPI documents and examples in schemas/
	$(MODELYARD) schemas generate

schemas-check: install ## Fail if schemas/ is stale or a schema changed incompatibly
	$(MODELYARD) schemas check

k8s-check: install k8s-renderer ## Validate the Kubernetes manifests offline (kubectl kustomize, schemas, invariants)
	$(VENV)/bin/python tools/k8s_check.py

k8s-renderer: ## Make sure kubectl or kustomize is there: without either, build kustomize with Go into the cache
	@if ! command -v kubectl >/dev/null 2>&1 && ! command -v kustomize >/dev/null 2>&1 && [ ! -x "$(CACHE_DIR)/bin/kustomize" ]; then \
		if command -v go >/dev/null 2>&1; then \
			echo "no kubectl: building kustomize into $(CACHE_DIR)/bin (go install $(KUSTOMIZE_MODULE))"; \
			GOBIN="$(CACHE_DIR)/bin" go install $(KUSTOMIZE_MODULE); \
		else echo "neither kubectl, kustomize nor go is installed: the manifest checks will say how to install one"; fi; \
	fi

clean: ## Remove run data and logs (keeps the download cache)
	rm -rf .run
