#!/usr/bin/env bash
# `make test`'s runner: every test binary of the workspace, several at a time.
#
# `cargo test` runs a workspace's test binaries one after another. The slow ones are each one long
# test (the soak, the containers, end to end, Terraform's plan, the browser) that spends much of its
# time waiting on a browser, a container or the emulator, so on two cores running them side by side
# nearly halves the wall time. This builds every test binary once (one build, one target/), then
# runs TEST_JOBS of them at a time (default 3), the slowest of the last run first, each as cargo
# runs it: from its package's folder, with cargo's CARGO_* variables. Any two may run side by side:
# every server binds an ephemeral port on 127.0.0.1, the suites that start servers first enter a
# loopback-only network namespace of their own process (testenv::netns), and containers are named
# and labelled by task id and process id.
#
# Other checks join the same pool as NAME=COMMAND arguments (run by bash from the repository root).
# Each run's output goes to target/test-logs/NAME.log, all of them to target/test-log.txt; a
# failed run's log is printed whole. Ends with the ten slowest runs (target/test-times.tsv keeps
# every run's time for the next run's order). TEST_JOBS=1 runs one at a time, as cargo would.
#
#   scripts/run-tests.sh [NAME=COMMAND ...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
max=${TEST_JOBS:-3}
logs=target/test-logs
times=target/test-times.tsv
cargo=${CARGO:-cargo}

# 1. Build every test binary (and the workspace's binaries the suites run) and list them.
list=$(mktemp)
trap 'rm -f "$list"' EXIT
"$cargo" test --workspace --no-run --message-format=json-render-diagnostics \
  | python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    t = m["target"]
    # "path+file:///w/local#local-stack@0.1.0", or "path+file:///w/agent#0.1.0" when the package is
    # named as its folder.
    url, frag = m["package_id"].split("#")
    pkg = frag.split("@")[0] if "@" in frag else url.rsplit("/", 1)[-1]
    kind = t["kind"][0]
    name = pkg + ("/" + t["name"] if kind in ("test", "bench") else "/" + kind)
    print("\t".join([name, os.path.dirname(m["manifest_path"]), pkg, t["name"].replace("-", "_"), m["executable"]]))
' >"$list"
[ -s "$list" ] || { echo "run-tests: no test binary was built" >&2; exit 1; }
"$cargo" build --workspace --bins -q

# 2. The jobs: the binaries, the doc tests, the NAME=COMMAND arguments.
declare -A dir pkg crate cmd
names=()
while IFS=$'\t' read -r n d p c e; do
  names+=("$n"); dir[$n]=$d; pkg[$n]=$p; crate[$n]=$c; cmd[$n]=$e
done <"$list"
extra=("doc-tests=$cargo test --workspace --doc -q" "$@")
for a in "${extra[@]}"; do
  n=${a%%=*}
  names+=("$n"); dir[$n]=$root; pkg[$n]=; crate[$n]=; cmd[$n]=${a#*=}
done

# The slowest of the last run first (a job not timed yet counts as slow: it may be). A new clone
# has no last run: it takes the times scripts/test-times.tsv records (a fresh clone's, refreshed by
# hand now and then), so the soak still starts first.
declare -A last
for f in scripts/test-times.tsv "$times"; do
  if [ -f "$f" ]; then
    while IFS=$'\t' read -r n s _; do last[$n]=$s; done <"$f"
  fi
done
order=$(for n in "${names[@]}"; do printf '%s\t%s\n' "${last[$n]:-99999}" "$n"; done | sort -t$'\t' -k1,1 -rn | cut -f2)

rm -rf "$logs"
mkdir -p "$logs"
file() { echo "$logs/${1//\//.}"; }

run() { # NAME: runs the job, writes NAME.log and NAME.result (seconds, exit code)
  local n=$1 f start rc
  f=$(file "$n")
  start=$EPOCHREALTIME
  set +e
  if [ -n "${pkg[$n]}" ]; then
    (cd "${dir[$n]}" && CARGO="$cargo" CARGO_MANIFEST_DIR="${dir[$n]}" CARGO_PKG_NAME="${pkg[$n]}" \
      CARGO_CRATE_NAME="${crate[$n]}" "${cmd[$n]}") >"$f.log" 2>&1 </dev/null
  else
    bash -c "${cmd[$n]}" >"$f.log" 2>&1 </dev/null
  fi
  rc=$?
  set -e
  awk -v a="$start" -v b="$EPOCHREALTIME" -v rc="$rc" 'BEGIN { printf "%.1f\t%s\n", b - a, rc }' >"$f.result"
  if [ "$rc" = 0 ]; then printf '  ok   %7.1f s  %s\n' "$(cut -f1 "$f.result")" "$n"
  else printf '  FAIL %7.1f s  %s (exit %s)\n' "$(cut -f1 "$f.result")" "$n" "$rc"; fi
}

# 3. Run them, $max at a time.
echo "run-tests: ${#names[@]} runs, $max at a time (TEST_JOBS)"
began=$(date +%s)
while read -r n; do
  while [ "$(jobs -rp | wc -l)" -ge "$max" ]; do wait -n || true; done
  run "$n" &
done <<<"$order"
wait

# 4. The log, the times, the failures, the slowest.
: >target/test-log.txt
: >"$times.new"
failed=()
for n in "${names[@]}"; do
  f=$(file "$n")
  IFS=$'\t' read -r secs rc <"$f.result"
  printf '%s\t%s\t%s\n' "$n" "$secs" "$rc" >>"$times.new"
  { echo "===== $n ($secs s, exit $rc): ${cmd[$n]}"; cat "$f.log"; } >>target/test-log.txt
  [ "$rc" = 0 ] || failed+=("$n")
done
mv "$times.new" "$times"
for n in "${failed[@]}"; do
  echo "===== $n failed; its output ($(file "$n").log):"
  cat "$(file "$n").log"
done
echo "run-tests: the ten slowest of ${#names[@]} runs, $(($(date +%s) - began)) s in all, $max at a time:"
sort -t$'\t' -k2,2 -rn "$times" | head -n 10 | awk -F'\t' '{ printf "%9.1f s  %s\n", $2, $1 }'
if [ "${#failed[@]}" -gt 0 ]; then
  echo "run-tests: ${#failed[@]} failed: ${failed[*]}" >&2
  exit 1
fi
