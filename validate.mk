# Terraform's own checks of generated/ (validate and plan, offline) through tfstandin, a stand-in for the AWS
# provider that serves its schema; see tfstandin/README.md. Included by the root Makefile.

TFSTANDIN_BIN ?= $(abspath $(or $(CARGO_TARGET_DIR),target)/debug/terraform-provider-aws)

.PHONY: validate test-validate

## validate: terraform validate and plan -refresh=false of generated/, no network, no AWS
validate: system-packages
	$(CARGO) build -q --workspace --bins
	TFSTANDIN_BIN=$(TFSTANDIN_BIN) scripts/validate.sh

# The stand-in's unit tests, the crafted breakages against Terraform, then generated/ itself.
test-validate: system-packages
	$(CARGO) test -p tfstandin
	@if command -v terraform >/dev/null; then \
	  $(MAKE) --no-print-directory validate; \
	else \
	  if [ "$${CI:-}" = true ]; then echo "no terraform binary on PATH: Terraform's own checks of generated/ cannot run (CI=true)" >&2; exit 1; fi; \
	  echo "note: no terraform binary on PATH; Terraform's own checks of generated/ skipped (need terraform >= 1.5)"; \
	fi
