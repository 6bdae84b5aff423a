# Entry points. `make test` runs everything and installs what it needs; see README.md.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

# Crate fragments add their own targets to these lists (agent/agent.mk, functions/functions.mk).
TEST_TARGETS := test-infra
BENCH_TARGETS := bench-infra

.PHONY: all gen check test bench tools $(TEST_TARGETS) $(BENCH_TARGETS)

all: gen

## gen: synthesize the Terraform JSON into generated/
gen:
	$(CARGO) run -q -p infra-gen --

## check: fail when generated/ is stale
check:
	$(CARGO) run -q -p infra-gen -- --check

tools:
	scripts/tools.sh python
	scripts/tools.sh mermaid

-include agent/agent.mk
-include functions/functions.mk
-include validate.mk

## test: every test of the project
test: $(TEST_TARGETS)
	@echo "make test: all suites passed"

test-infra: tools
	$(CARGO) test -p names -p tfjson -p infra-gen
	$(CARGO) run -q -p infra-gen -- --check
	scripts/checkov.sh
	node .tools/mermaid/check.mjs --self-test generated/README.md

## bench: benchmarks (release builds)
bench: $(BENCH_TARGETS)

bench-infra:
	$(CARGO) run -q --release -p infra-gen --bin synth-bench
