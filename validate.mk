# Terraform's own checks of generated/ (validate and plan, offline) through tfstandin, a stand-in for the AWS
# provider that serves its schema; see tfstandin/README.md. Included by the root Makefile.

TFSTANDIN_BIN ?= $(abspath $(or $(CARGO_TARGET_DIR),target)/debug/terraform-provider-aws)

.PHONY: validate test-validate tfstandin-tools

## validate: terraform validate and plan -refresh=false of generated/, no network, no AWS
validate: tfstandin-tools
	$(CARGO) build -q --workspace --bins
	TFSTANDIN_BIN=$(TFSTANDIN_BIN) scripts/validate.sh

# The stand-in's unit tests, the crafted breakages against Terraform, then generated/ itself.
test-validate: tfstandin-tools
	$(CARGO) test -p tfstandin
	@if command -v terraform >/dev/null; then \
	  $(MAKE) --no-print-directory validate; \
	else \
	  echo "note: no terraform binary on PATH; Terraform's own checks of generated/ skipped (need terraform >= 1.5)"; \
	fi

# tf-provider compiles the plugin protocol with protoc at build time.
tfstandin-tools:
	@command -v protoc >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends protobuf-compiler >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends protobuf-compiler >/dev/null; }; \
	}
