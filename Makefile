# Entry points. `make test` runs everything and installs what it needs; see README.md.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

# Every cargo command that builds the workspace's crates uses --workspace: one feature resolution,
# so the AWS SDKs and their HTTP stack compile once for every crate (a `-p` selection resolves
# features differently and rebuilds them).
CARGO_WS := $(CARGO) test --workspace

# Crate fragments add their benchmarks here (agent/agent.mk, functions/functions.mk).
BENCH_TARGETS := bench-infra bench-functions bench-local bench-fairness bench-noisy bench-warm

.PHONY: all gen check test test-tools test-infra soak bench tools system-packages local local-command e2e deploy destroy rotate-key rotate-key-finish $(BENCH_TARGETS)

all: gen

## gen: synthesize the Terraform JSON into generated/
gen:
	$(CARGO) run -q -p infra-gen --

## check: fail when generated/ is stale
check:
	$(CARGO) run -q -p infra-gen -- --check

## system-packages: every Debian package the build, tests and local stack need (each named with its
## reason in scripts/system-packages.sh), installed when missing
system-packages:
	scripts/system-packages.sh

tools: system-packages
	scripts/tools.sh python
	scripts/tools.sh api
	scripts/tools.sh mermaid
	scripts/tools.sh iam

-include agent/agent.mk
-include functions/functions.mk
-include validate.mk

## test-tools: everything the tests need, installed when missing (quick when present)
test-tools: tools agent-tools

## test: every test of the project: unit, snapshot, conformance, invariants, review, the functions
## against moto, the agent with real Chromium and as the built image in a container, one job end
## to end through the local stack (in containers), the provider stand-in with Terraform, then the
## checks of generated/ (fresh, checkov, Mermaid, terraform validate and plan), the Dockerfile lint
## and the image's package scheme against today's archive
test: test-tools image
	@if [ "$${TESTENV_IAM:-on}" = off ]; then echo "make test authorizes every AWS call as IAM would: unset TESTENV_IAM (off is for debugging only)" >&2; exit 1; fi
	@# The benchmarks build (with the tests' profile: nothing new to compile but them), so a
	@# change that breaks one is found here, not at the next `make bench`.
	$(CARGO_WS) --benches --no-run -q
	@# Every test binary and the checks below, three at a time (TEST_JOBS), slowest first; ends
	@# with the ten slowest (scripts/run-tests.sh says why binaries may run side by side).
	@# agent-trace: the Chromium suite again with the image's headless shell, under strace: it also
	@# checks that nothing agent/Dockerfile removes from the image is loaded.
	CARGO=$(CARGO) scripts/run-tests.sh \
	  'agent-trace=agent/trace.sh' \
	  'generated-checks=$(MAKE) --no-print-directory generated-checks' \
	  'lint-agent=$(MAKE) --no-print-directory lint-agent image-resolves'
	@echo "make test: all suites passed"

# The checks of generated/ beyond cargo's tests.
generated-checks: tools
	$(CARGO) build -q --workspace --bins
	target/debug/infra-gen --check
	.tools/api-venv/bin/openapi-spec-validator --schema 3.1 generated/openapi.json
	scripts/checkov.sh
	node .tools/mermaid/check.mjs --self-test generated/README.md
	@if command -v terraform >/dev/null; then \
	  $(MAKE) --no-print-directory validate; \
	else \
	  if [ "$${CI:-}" = true ]; then echo "no terraform binary on PATH: Terraform's own checks of generated/ cannot run (CI=true)" >&2; exit 1; fi; \
	  echo "note: no terraform binary on PATH; Terraform's own checks of generated/ skipped (need terraform >= 1.5)"; \
	fi

## test-infra: the generator's tests and the checks of generated/ only
test-infra: tools
	$(CARGO) test -p names -p tfjson -p infra-gen
	$(MAKE) --no-print-directory generated-checks

## local: the whole system on this machine, no AWS, no Docker engine (Ctrl-C stops everything);
## agents run as containers of the image (make image) where podman works, else as processes;
## SECRETS='TENANT:NAME=VALUE ...' gives tenants secrets for scripted jobs;
## WEBHOOK_ALLOW=127.0.0.1:9000 lets webhooks reach a receiver of your own on this machine
LOCAL_STACK = target/debug/local-stack $(if $(wildcard $(KEYS_FILE)),--api-key-generations $(KEYS_FILE)) \
  $(foreach s,$(SECRETS),--tenant-secret '$(s)') $(if $(WEBHOOK_ALLOW),--webhook-allow '$(WEBHOOK_ALLOW)')
local: tools image
	$(CARGO) build -q --workspace --bins
	$(LOCAL_STACK)

# The command `make local` runs with these variables, printed (the README's test runs it).
local-command:
	@:$(info $(LOCAL_STACK))

## soak: the fault-injection test (local/tests/soak.rs) over thousands of seeds, 12 jobs each
## (hours; SOAK_SEEDS=a..b chooses them, one seed reruns alone as SOAK_SEEDS=n..n+1). `make test`
## runs its short version (24 seeds spread over the fault points).
SOAK_SEEDS ?= 0..2000
soak: tools
	SOAK_SEEDS=$(SOAK_SEEDS) $(CARGO_WS) --test soak -- --nocapture

## e2e: one job end to end through the local stack, over HTTP as a client would
e2e: tools image
	$(CARGO_WS) --test e2e -- --nocapture

## bench: benchmarks (release builds)
bench: $(BENCH_TARGETS)

bench-infra:
	$(CARGO) run -q --release -p infra-gen --bin synth-bench

# The functions: zip sizes (after make build), cold starts, handler times against moto, and what
# the metric lines cost.
bench-functions: tools
	$(CARGO) bench -p functions --bench handlers

# 1000 jobs through the local stack with the agent replaced by `true` (the runner's test mode).
bench-local: tools
	$(CARGO) bench --workspace --bench load

# Tenant A's 200-job backlog against tenant B's 5 jobs: B's wait, dispatched fairly and as FIFO would.
bench-fairness: tools
	$(CARGO) bench -p local-stack --bench fairness

# Tenant B's 20 jobs with webhooks, alone and beside a tenant A with a 1000-job backlog, webhooks to a
# blackhole and redeliveries as fast as its key allows: B's start and webhook latencies, both runs.
bench-noisy: tools
	$(CARGO) bench -p local-stack --bench noisy

bench-warm: tools image
	$(CARGO) bench -p local-stack --bench warm

# Deploying: the steps of README.md's "Deploy", in order. `make -n deploy` prints them.
# One source for each choice: AWS_REGION is Terraform's aws_region and every AWS CLI call's region
# (the CLI profile's region is not used); LAMBDA_ARCH is the functions' architecture, AGENT_ARCH
# the agent image's and its Fargate tasks' (each also in the image tag).
# PROJECT_NAME and ENVIRONMENT name the stack: its resources and its state object in S3
# (TF_STATE_BUCKET: an existing bucket for the state; default: the account's own, made by deploy.sh).
TF := terraform -chdir=generated
AWS_REGION ?= us-east-1
LAMBDA_ARCH ?= arm64
AGENT_ARCH ?= arm64
# How the agent image's layers are compressed in ECR: zstd (faster to unpack at every cold start)
# or gzip (what a SOCI index needs; see docs/operations.md, "Cold starts").
IMAGE_COMPRESSION ?= zstd
PROJECT_NAME ?= infra-demo
ENVIRONMENT ?= dev
# API Gateway's CloudWatch Logs role is ONE setting per account and region, shared by every REST
# API there: exactly one stack per region owns it (true); every other stack there says false.
MANAGE_API_GATEWAY_ACCOUNT ?= true
TF_VARS := -var aws_region=$(AWS_REGION) -var lambda_architecture=$(LAMBDA_ARCH) -var agent_architecture=$(AGENT_ARCH) -var project_name=$(PROJECT_NAME) -var environment=$(ENVIRONMENT) \
  -var manage_api_gateway_account=$(MANAGE_API_GATEWAY_ACCOUNT)
DEPLOY_ENV := AWS_REGION=$(AWS_REGION) AWS_DEFAULT_REGION=$(AWS_REGION) AGENT_ARCH=$(AGENT_ARCH) PROJECT_NAME=$(PROJECT_NAME) ENVIRONMENT=$(ENVIRONMENT) IMAGE_COMPRESSION=$(IMAGE_COMPRESSION)
TF_INIT = $(TF) init -input=false $$($(DEPLOY_ENV) scripts/deploy.sh state-backend)
# API key generations by tenant (scripts/rotate-key.sh writes it; commit it): read when it exists.
KEYS_FILE ?= api-keys.tfvars.json
TF_VARS += $(if $(wildcard $(KEYS_FILE)),-var-file=$(abspath $(KEYS_FILE)))

## deploy: check prerequisites, build the Lambda zips, synthesize, set up the state backend (S3,
## encrypted, locked), apply, build and push the agent image for AGENT_ARCH (base pinned by
## digest), apply its tag
deploy:
	$(DEPLOY_ENV) scripts/deploy.sh check
	$(MAKE) build LAMBDA_ARCH=$(LAMBDA_ARCH)
	$(CARGO) run -q -p infra-gen
	$(TF_INIT)
	$(TF) apply -input=false $(TF_VARS) -target=aws_ecr_repository.agent -target=aws_ecr_lifecycle_policy.agent
	$(DEPLOY_ENV) scripts/deploy.sh push-image
	$(TF) apply -input=false $(TF_VARS) -var agent_image_tag=$$($(DEPLOY_ENV) scripts/deploy.sh image-tag)

## rotate-key: TENANT=<id>: give the tenant a second API key beside its current one (both work),
## deploy, and print the new key; hand it to the tenant, then run rotate-key-finish
rotate-key:
	@test -n "$(TENANT)" || { echo "usage: make rotate-key TENANT=<tenant id>" >&2; exit 2; }
	KEYS_FILE=$(KEYS_FILE) scripts/rotate-key.sh start $(TENANT)
	$(MAKE) --no-print-directory deploy
	@$(TF) output -json tenant_api_keys | python3 -c 'import json, sys; print("new API key of $(TENANT):", json.load(sys.stdin)["$(TENANT)"])'

## rotate-key-finish: TENANT=<id>: delete the tenant's old API key (the new one keeps working), deploy
rotate-key-finish:
	@test -n "$(TENANT)" || { echo "usage: make rotate-key-finish TENANT=<tenant id>" >&2; exit 2; }
	KEYS_FILE=$(KEYS_FILE) scripts/rotate-key.sh finish $(TENANT)
	$(MAKE) --no-print-directory deploy

## destroy: drain the cluster (nothing starts a task any more, every task stopped and gone), let
## Terraform delete the table, the bucket and the repository with their contents, then destroy
## everything (the Terraform state bucket stays)
destroy:
	$(DEPLOY_ENV) scripts/deploy.sh check destroy
	$(MAKE) build LAMBDA_ARCH=$(LAMBDA_ARCH)
	$(TF_INIT)
	$(DEPLOY_ENV) scripts/deploy.sh drain
	$(TF) apply -input=false $(TF_VARS) -var allow_destroy_with_data=true -target=aws_dynamodb_table.jobs -target=aws_s3_bucket.outputs -target=aws_ecr_repository.agent
	$(TF) destroy -input=false $(TF_VARS) -var allow_destroy_with_data=true
