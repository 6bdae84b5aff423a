#!/usr/bin/env bash
# What the agent, Chromium's headless shell and chromedriver load at run time, found by running
# the agent's Chromium suite (search, URL, full page, scripted steps with a PDF and files) under
# strace and mapping every file opened or executed to its Debian package. Checks agent/Dockerfile's
# UNLOADED list against it: a package on that list whose files were opened fails, with the files
# (a Chromium update that starts loading one of them is caught here, before an image without it
# ships). Run on this machine, whose Debian release and Chromium packages are the image's.
#
#   agent/trace.sh [--list]   (make agent-trace; --list also prints every package opened)
set -euo pipefail
cd "$(dirname "$0")/.."
list=false
[ "${1:-}" = --list ] && list=true
command -v strace >/dev/null || { echo "agent/trace.sh: strace is missing (make system-packages)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# (--workspace: the features `make test` built the binary with, so nothing is built again.)
bin=$(cargo test -q --workspace --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "chromium" and "/agent#" in m["package_id"]:
        print(m["executable"])')
[ -n "$bin" ] || { echo "agent/trace.sh: the chromium test binary did not build" >&2; exit 1; }
echo "agent/trace.sh: the Chromium suite under strace (headless shell)" >&2
# Every test but the one that times the agent's exit against its deadline to the millisecond:
# strace slows each system call (and make test runs this beside other suites), and that timing is
# checked by the suite's own run and in the container.
(cd agent && AGENT_CHROMIUM=/usr/lib/chromium/chromium-headless-shell \
  strace -f -qq -e trace=openat,execve -e signal=none -o "$work/trace" "$bin" --test-threads 2 \
    --skip page_that_never_loads_hits_the_deadline) \
  || { echo "agent/trace.sh: the suite failed under strace" >&2; exit 1; }

arg() { # the value of agent/Dockerfile's ARG $1, its lines joined
  python3 - agent/Dockerfile "$1" <<'PY'
import re, sys
m = re.search(r'ARG ' + sys.argv[2] + r'="([^"]*)"', open(sys.argv[1]).read(), re.S)
print(" ".join(m.group(1).replace("\\\n", " ").split()) if m else "")
PY
}
unloaded=$(arg UNLOADED)
unloaded_files=$(arg UNLOADED_FILES)
[ -n "$unloaded" ] && [ -n "$unloaded_files" ] || { echo "agent/trace.sh: agent/Dockerfile has no ARG UNLOADED or UNLOADED_FILES" >&2; exit 1; }

UNLOADED_FILES="$unloaded_files" python3 - "$work/trace" "$list" $unloaded <<'PY'
import collections, os, re, subprocess, sys
trace, show, unloaded = sys.argv[1], sys.argv[2] == "true", set(sys.argv[3:])
unloaded_files = set(os.environ["UNLOADED_FILES"].split())
opened = set()
for line in open(trace, errors="replace"):
    m = re.search(r'(?:openat|execve)\((?:AT_FDCWD, )?"([^"]+)"', line)
    if m and m.group(1).startswith(("/usr", "/lib", "/etc", "/bin", "/sbin")):
        p = os.path.realpath(m.group(1))
        if os.path.isfile(p):
            opened.add(p)
# dpkg -S knows a path as the package installed it (/lib before merged /usr).
def candidates(p):
    yield p
    for a, b in (("/usr/lib/", "/lib/"), ("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
        if p.startswith(a):
            yield b + p[len(a):]
owners = collections.defaultdict(list)
for p in sorted(opened):
    for c in candidates(p):
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if r.returncode == 0:
            for pkg in r.stdout.split(": ", 1)[0].split(","):
                owners[pkg.strip().split(":")[0]].append(p)
            break
if show:
    for pkg in sorted(owners):
        print(f"{pkg}\t{len(owners[pkg])} files")
wrong = sorted(unloaded & owners.keys())
files = sorted(f for f in unloaded_files if os.path.realpath(f) in opened)
for f in files:
    print(f"agent/trace.sh: {f} is on the UNLOADED_FILES list, yet opened", file=sys.stderr)
print(f"agent/trace.sh: {len(opened)} files opened, of {len(owners)} packages; "
      f"{len(unloaded)} packages on agent/Dockerfile's UNLOADED list", file=sys.stderr)
if wrong or files:
    for pkg in wrong:
        print(f"agent/trace.sh: {pkg} is on the UNLOADED list, yet opened: {owners[pkg][:5]}", file=sys.stderr)
    sys.exit(1)
print("agent/trace.sh: nothing on the UNLOADED and UNLOADED_FILES lists was opened", file=sys.stderr)
PY
