# The Lambda functions' targets; the root Makefile includes this file.
#   make test-functions   handler tests against the moto server (installs it first)
#   make build            one bootstrap.zip per function at names::Function::zip_path()
#   make bench-functions  zip sizes, cold start, handler times (after build)
# One binary serves every function (JOB_FUNCTION selects it), so each function's zip holds the
# same bootstrap. LAMBDA_ARCH follows the Terraform variable: arm64 (default) or x86_64.

# Must equal names::Function::ALL (a test checks).
LAMBDA_FUNCTIONS := submit status logs list cancel process reconcile webhook
LAMBDA_ARCH ?= arm64
CARGO_LAMBDA_VERSION := 1.9.2
FUNCTIONS_VENV := .tools/venv/bin

BENCH_TARGETS += bench-functions
.PHONY: test-functions bench-functions build lambda-tools

test-functions:
	scripts/tools.sh python
	$(CARGO) test -p functions

lambda-tools:
	scripts/tools.sh python
	@$(FUNCTIONS_VENV)/cargo-lambda lambda --version 2>/dev/null | grep -q "$(CARGO_LAMBDA_VERSION)" || \
	  $(FUNCTIONS_VENV)/pip install --quiet --disable-pip-version-check "cargo-lambda==$(CARGO_LAMBDA_VERSION)"
	@if [ "$(LAMBDA_ARCH)" = arm64 ]; then \
	  rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu; \
	fi

build: lambda-tools
	@case "$(LAMBDA_ARCH)" in arm64|x86_64) ;; *) echo "LAMBDA_ARCH must be arm64 or x86_64" >&2; exit 2;; esac
	PATH="$(CURDIR)/$(FUNCTIONS_VENV):$$PATH" CARGO_PROFILE_RELEASE_STRIP=symbols \
	  $(CARGO) lambda build --release -p functions --bin functions \
	  $(if $(filter arm64,$(LAMBDA_ARCH)),--arm64,--x86-64) --output-format zip
	for f in $(LAMBDA_FUNCTIONS); do \
	  mkdir -p target/lambda/$$f && cp target/lambda/functions/bootstrap.zip target/lambda/$$f/bootstrap.zip; \
	done
	@ls -l $(foreach f,$(LAMBDA_FUNCTIONS),target/lambda/$(f)/bootstrap.zip)

bench-functions: build
	scripts/tools.sh python
	$(CARGO) bench -p functions --bench handlers
