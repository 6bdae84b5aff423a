#!/usr/bin/env bash
# The ten slowest test binaries of a `cargo test` log (make test tees its runs into one): each
# binary's wall time as libtest reports it ("finished in N s"), with the tests in it. A binary's
# tests run in parallel threads, so for a binary of many tests this is their longest, not their
# sum; most slow binaries are one long test (the soak, end to end, the README, containers).
#
#   scripts/slowest-tests.sh target/test-log.txt
set -euo pipefail
log="${1:?usage: slowest-tests.sh LOG}"
awk '
  /^ *Running / {
    # "Running tests/api.rs (target/debug/deps/api-0123abcd)" -> "api (tests/api.rs)"
    src = ($2 == "unittests") ? $3 : $2; bin = $NF; gsub(/[()]/, "", bin); n = split(bin, parts, "/"); name = parts[n]; sub(/-[0-9a-f]+$/, "", name)
    current = name " (" src ")"; next
  }
  /^ *Doc-tests / { current = "doc-tests of " $2; next }
  /^test result: / && current != "" {
    secs = $NF; sub(/s$/, "", secs); tests = $4
    printf "%9.1f s  %4d tests  %s\n", secs, tests, current
    current = ""
  }
' "$log" | sort -rn | head -n 10
