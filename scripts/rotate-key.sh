#!/usr/bin/env bash
# API key rotation, one tenant at a time, without downtime:
#
#   scripts/rotate-key.sh start TENANT    the tenant gets a second key (generation n+1); both work
#   scripts/rotate-key.sh finish TENANT   the old key (generation n) is deleted; only the new works
#   scripts/rotate-key.sh show            every tenant's generations
#
# The generations live in KEYS_FILE (default: api-keys.tfvars.json at the repository root), as the
# Terraform variable api_key_generations; `make deploy` and `make local` read it when it exists.
# Commit it: it names generations, never a key's value. This script only edits the file;
# `make rotate-key` / `make rotate-key-finish` run it and then deploy (see docs/security.md, "Rotating a
# tenant's API key"). Exit codes: 0 done, 1 refused (the tenant is, or is not, rotating), 2 usage.
set -euo pipefail
cd "$(dirname "$0")/.."

file=${KEYS_FILE:-api-keys.tfvars.json}
usage() { echo "usage: $0 start TENANT | finish TENANT | show   (KEYS_FILE=$file)" >&2; exit 2; }

step=${1:-}
tenant=${2:-}
case "$step" in
  start | finish) [[ "$tenant" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || { echo "rotate-key: tenant ids are 1-63 lower-case letters, digits and dashes" >&2; usage; } ;;
  show) ;;
  *) usage ;;
esac

python3 - "$file" "$step" "$tenant" <<'PY'
import json, os, sys

path, step, tenant = sys.argv[1:4]
doc = {"api_key_generations": {}}
if os.path.exists(path):
    with open(path) as f:
        doc = json.load(f)
gens = doc.setdefault("api_key_generations", {})
current = gens.get(tenant, [1])

def refuse(message):
    print(f"rotate-key: {message}", file=sys.stderr)
    sys.exit(1)

if step == "show":
    for t, g in sorted(gens.items()):
        state = "rotating" if len(g) == 2 else "settled"
        print(f"{t}\t{','.join(map(str, g))}\t{state}")
    sys.exit(0)
if step == "start":
    if len(current) == 2:
        refuse(f"{tenant} is already rotating (generations {current[0]} and {current[1]}): finish that first")
    new = current[-1] + 1
    gens[tenant] = [current[-1], new]
    print(f"rotate-key: {tenant}: generation {new} added beside {current[-1]}; both keys work once deployed")
else:
    if len(current) != 2:
        refuse(f"{tenant} is not rotating (generation {current[-1]}): start a rotation first")
    gens[tenant] = [current[1]]
    print(f"rotate-key: {tenant}: generation {current[0]} dropped; only generation {current[1]} works once deployed")
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(doc, f, indent=2, sort_keys=True)
    f.write("\n")
os.replace(tmp, path)
PY
