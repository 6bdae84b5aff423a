#!/usr/bin/env bash
# Installed size of the packages agent/Dockerfile adds on top of debian:bookworm-slim, computed
# with apt's own resolver against a simulated slim base, so no Docker engine is needed. The base
# is what a slim image holds: the `Priority: required` packages and apt, with their dependencies.
# Usage: agent/image-size.sh [package=version ...]   (defaults to the Dockerfile's list)
set -euo pipefail
cd "$(dirname "$0")"
version=$(sed -n 's/^ARG CHROMIUM_VERSION=//p' Dockerfile | head -1)
fonts=$(grep -o 'fonts-liberation=[^ ]*' Dockerfile)
driver_note=""
if [ $# -eq 0 ]; then
  set -- "chromium-headless-shell=$version" "chromium-common=$version" "$fonts"
  driver_kib=$(apt-cache show "chromium-driver=$version" | sed -n 's/^Installed-Size: //p' | head -1)
  driver_note="plus the chromedriver binary copied from chromium-driver: $((driver_kib / 1024)) MiB ($driver_kib KiB)"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -n "$(ls /var/lib/apt/lists/ | grep -v -e lock -e partial || true)" ] || apt-get update -qq
apt-cache dumpavail > "$work/avail"
dry_run() { # status-file packages... -> "name version" lines of what apt would install
  local status=$1; shift
  apt-get install --dry-run --no-install-recommends -o Dir::State::status="$status" "$@" 2>/dev/null \
    | awk '/^Inst /{print $2, substr($3, 2)}'
}
required=$(awk -v RS= '/\nPriority: required/ {match($0, /^Package: [^\n]+/); print substr($0, 10, RLENGTH - 9)}' "$work/avail" | sort -u)
: > "$work/empty"
# shellcheck disable=SC2086
dry_run "$work/empty" $required apt > "$work/base"
python3 - "$work/avail" "$work/base" > "$work/status" <<'PY'
import sys
base = {line.split()[0] for line in open(sys.argv[2])}
done = set()
for stanza in open(sys.argv[1]).read().split("\n\n"):
    first = stanza.strip().split("\n", 1)[0]
    name = first.removeprefix("Package: ")
    if name in base and name not in done:
        done.add(name)
        print(stanza.strip().replace(first, first + "\nStatus: install ok installed", 1) + "\n")
PY
dry_run "$work/status" "$@" > "$work/inst"
total=0
while read -r pkg ver; do
  kb=$(apt-cache show "$pkg=$ver" 2>/dev/null | sed -n 's/^Installed-Size: //p' | head -1)
  total=$((total + ${kb:-0}))
done < "$work/inst"
echo "base (simulated debian:bookworm-slim): $(wc -l < "$work/base") packages"
echo "added by agent/Dockerfile: $(wc -l < "$work/inst") packages, installed size $((total / 1024)) MiB ($total KiB)"
echo "  for: $*"
[ -z "$driver_note" ] || echo "  $driver_note"
