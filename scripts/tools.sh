#!/usr/bin/env bash
# Installs the test tools into .tools/ (ignored by git), idempotently: a Python virtualenv with
# checkov, the moto server, parliament (the IAM policy linter), the AWS CLI and standardwebhooks, (with `mermaid`) the Mermaid parser from npm, (with `iam`) the IAM policy engine from npm,
# (with `api`) schemathesis and openapi-spec-validator in a virtualenv of their own (their pins
# do not meet checkov's), and (with `bench`) Python Playwright in a virtualenv of its own. Debian packages
# come from scripts/system-packages.sh.
# Quick when everything is already there: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
MOTO_VERSION=5.2.5
# The IAM policy linter (knows every action's resource types and condition keys).
PARLIAMENT_VERSION=1.6.4
# The AWS CLI (v1, from PyPI) runs scripts/deploy.sh's state backend set-up against moto in the tests.
AWSCLI_VERSION=1.46.3
# Python Playwright, what `make bench` compares scripted jobs against (it drives Debian's Chromium:
# no browser download).
PLAYWRIGHT_VERSION=1.65.2
# Standard Webhooks' own Python library: the webhook tests' receiver verifies signatures with it,
# an implementation independent of ours.
STANDARDWEBHOOKS_VERSION=1.1.0
# The API's fuzz run against the local stack, driven by generated/openapi.json, and an OpenAPI
# validator independent of the crate that writes the document.
SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
VENV=.tools/venv
API_VENV=.tools/api-venv
BENCH_VENV=.tools/bench-venv

# venv_install VENV SPEC...: a virtualenv at VENV holding exactly these pinned packages; a stamp
# named after the specs makes it quick when they are there, and a change of pin installs again.
venv_install() {
  local venv=$1; shift
  local stamp="$venv/.installed-$(printf '%s-' "$@" | tr -c 'A-Za-z0-9.-' '-')"
  [ -f "$stamp" ] && return 0
  echo "tools: installing $* into $venv (once)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
  rm -f "$venv"/.installed-*
  touch "$stamp"
}

python_tools() {
  venv_install "$VENV" "checkov==$CHECKOV_VERSION" "moto[server]==$MOTO_VERSION" "parliament==$PARLIAMENT_VERSION" \
    "awscli==$AWSCLI_VERSION" "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
}

api_tools() {
  venv_install "$API_VENV" "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
}

# The Mermaid parser (npm, pinned by scripts/mermaid/package-lock.json) under .tools/mermaid,
# with the checker beside it so Node resolves the packages.
mermaid() {
  local dir=.tools/mermaid
  local stamp="$dir/.installed-$(sha256sum scripts/mermaid/package-lock.json | cut -c1-16)"
  mkdir -p "$dir"
  cp scripts/mermaid/check.mjs "$dir/check.mjs"
  [ -f "$stamp" ] && return 0
  echo "tools: installing the Mermaid parser into $dir (once)"
  cp scripts/mermaid/package.json scripts/mermaid/package-lock.json "$dir/"
  (cd "$dir" && npm ci --silent --no-audit --no-fund >/dev/null)
  rm -f "$dir"/.installed-*
  touch "$stamp"
}

# The IAM policy engine the emulator authorizes requests with (testenv/py/iam_authorize.py): npm's
# @cloud-copilot/iam-simulate, pinned by testenv/js/iam/package-lock.json, under .tools/iam with
# the evaluator script beside it.
iam() {
  local dir=.tools/iam
  local stamp="$dir/.installed-$(sha256sum testenv/js/iam/package-lock.json | cut -c1-16)"
  mkdir -p "$dir"
  cp testenv/js/iam/authorize.mjs "$dir/authorize.mjs"
  [ -f "$stamp" ] && return 0
  echo "tools: installing the IAM policy engine into $dir (once)"
  cp testenv/js/iam/package.json testenv/js/iam/package-lock.json "$dir/"
  (cd "$dir" && npm ci --silent --no-audit --no-fund >/dev/null)
  rm -f "$dir"/.installed-*
  touch "$stamp"
}

# A virtualenv of its own, so the test tools' stays as small as it is.
bench_tools() {
  venv_install "$BENCH_VENV" "playwright==$PLAYWRIGHT_VERSION"
}

case "${1:-python}" in
  python) python_tools ;;
  mermaid) mermaid ;;
  iam) iam ;;
  api) api_tools ;;
  bench) bench_tools ;;
  all) python_tools; api_tools; mermaid; iam ;;
  *) echo "usage: $0 [python|mermaid|iam|api|bench|all]" >&2; exit 2 ;;
esac
