#!/usr/bin/env bash
# Runs Terraform's own checks on a Terraform JSON configuration (default: generated/) with no network:
# `terraform validate`, then `terraform plan -refresh=false`, against tfstandin, a stand-in for the AWS
# provider that serves the real provider's schema (see tfstandin/README.md).
#
#   scripts/validate.sh [--validate-only] [DIR]
#
# The configuration is copied into a scratch folder so nothing in the tree changes. Terraform finds the
# stand-in through a CLI config of our own with `dev_overrides`, so `terraform init` (which would go to the
# registry) is never run. The Lambda zips that generated/ hashes (`${path.module}/../target/lambda/<fn>/
# bootstrap.zip`) are copied from target/ when built, else stubbed by an empty zip in the scratch folder.
#
# Environment: TFSTANDIN_BIN (the stand-in binary; default: build it with cargo), TERRAFORM (default: the
# terraform on PATH), KEEP_SCRATCH=1 keeps the scratch folder, PLAN_JSON=FILE writes the plan as JSON
# (`terraform show -json`), TF_VAR_* set variables (agent_image_tag defaults to `validate`: a deploy sets
# it), TFSTANDIN_AVAILABILITY_ZONES the stand-in's zone letters (default a,b). Exit codes: 0 valid (and planned), 1
# Terraform found errors, 2 usage or environment problem (no terraform, too old).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

plan=1
dir=""
for arg in "$@"; do
  case "$arg" in
    --validate-only) plan=0 ;;
    -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "validate: unknown option $arg" >&2; exit 2 ;;
    *) [[ -z "$dir" ]] || { echo "validate: one directory only" >&2; exit 2; }; dir="$arg" ;;
  esac
done
dir="${dir:-$root/generated}"
[[ -d "$dir" ]] || { echo "validate: no directory $dir" >&2; exit 2; }
dir="$(cd "$dir" && pwd)"

terraform="${TERRAFORM:-$(command -v terraform || true)}"
if [[ -z "$terraform" || ! -x "$terraform" ]]; then
  echo "validate: no terraform binary (set TERRAFORM or put terraform on PATH)" >&2
  exit 2
fi
version="$("$terraform" version -json 2>/dev/null | sed -n 's/.*"terraform_version": *"\([0-9.]*\)".*/\1/p')"
IFS=. read -r major minor _ <<<"${version:-0.0.0}"
if (( major < 1 || (major == 1 && minor < 11) )); then
  echo "validate: terraform ${version:-of unknown version} at $terraform; need >= 1.11" >&2
  exit 2
fi

bin="${TFSTANDIN_BIN:-}"
if [[ -z "$bin" ]]; then
  cargo build -q -p tfstandin --bin terraform-provider-aws --manifest-path "$root/Cargo.toml"
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/terraform-provider-aws"
fi
[[ -x "$bin" ]] || { echo "validate: no stand-in binary at $bin" >&2; exit 2; }

scratch="$(mktemp -d "${TMPDIR:-/tmp}/tf-validate.XXXXXX")"
if [[ "${KEEP_SCRATCH:-}" == 1 ]]; then
  echo "validate: scratch folder $scratch" >&2
else
  trap 'rm -rf "$scratch"' EXIT
fi

# dev_overrides names a folder that holds a binary called terraform-provider-aws.
mkdir -p "$scratch/plugins" "$scratch/home"
ln -s "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")" "$scratch/plugins/terraform-provider-aws"
cat >"$scratch/terraformrc" <<EOF
provider_installation {
  dev_overrides {
    "hashicorp/aws" = "$scratch/plugins"
  }
  direct {}
}
EOF

# The configuration keeps its folder name, so `${path.module}/../target/...` resolves inside the scratch folder.
work="$scratch/$(basename "$dir")"
mkdir -p "$work"
shopt -s nullglob
files=("$dir"/*.tf.json "$dir"/*.tf)
(( ${#files[@]} > 0 )) || { echo "validate: no *.tf.json or *.tf in $dir" >&2; exit 2; }
cp "${files[@]}" "$work/"
# The S3 backend (partial: `make deploy` gives the bucket at init) is a deploy's business: without
# `terraform init` the scratch copy keeps its state locally, so the backend block is taken out.
for f in "$work"/*.tf.json; do
  python3 - "$f" <<'PY'
import json, sys
path = sys.argv[1]
doc = json.load(open(path))
tf = doc.get("terraform")
blocks = tf if isinstance(tf, list) else [tf] if isinstance(tf, dict) else []
if any("backend" in b for b in blocks):
    for b in blocks:
        b.pop("backend", None)
    json.dump(doc, open(path, "w"), indent=2)
PY
done

# An empty zip archive (end-of-central-directory record only): enough for filebase64sha256 and for plan.
for rel in $(cat "${files[@]}" | grep -o '\.\./target/lambda/[A-Za-z0-9_./-]*\.zip' | sort -u); do
  rel="${rel#../}"
  mkdir -p "$scratch/$(dirname "$rel")"
  if [[ -f "$root/$rel" ]]; then
    cp "$root/$rel" "$scratch/$rel"
  else
    printf 'PK\005\006\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0' >"$scratch/$rel"
  fi
done

export TF_CLI_CONFIG_FILE="$scratch/terraformrc"
export CHECKPOINT_DISABLE=1
export TF_IN_AUTOMATION=1
export TF_INPUT=0
export TF_DATA_DIR="$scratch/.terraform"
export HOME="$scratch/home"
# Dummy credentials: the stand-in never calls AWS, and no real credentials should reach it.
export AWS_ACCESS_KEY_ID=AKIATFSTANDIN0000000 AWS_SECRET_ACCESS_KEY=tfstandin AWS_REGION="${AWS_REGION:-us-east-1}"
# The image tag `make deploy` sets; set but empty stays empty (the plan must then refuse it).
export TF_VAR_agent_image_tag="${TF_VAR_agent_image_tag-validate}"
unset AWS_PROFILE AWS_SESSION_TOKEN TF_LOG RUST_BACKTRACE RUST_LIB_BACKTRACE

# Every command warns that development overrides are in effect; that warning is ours, so drop it.
filter() {
  awk '
    /^Warning: Provider development overrides are in effect$/ { skip = 1; next }
    skip && /^releases\.$/ { skip = 0; next }
    skip { next }
    /^Warning:/ { warned = 1 }
    /^Success! The configuration is valid, but there were some validation warnings$/ && !warned {
      print "Success! The configuration is valid."; drop = 1; next
    }
    drop && /^as shown above\.$/ { drop = 0; next }
    { print }
  ' | cat -s
}

tf() { "$terraform" -chdir="$work" "$@" -no-color 2>&1 | filter; return "${PIPESTATUS[0]}"; }

echo "validate: terraform $version, $(basename "$dir")/ (${#files[@]} files), provider stand-in $bin"
status=0
tf validate || status=$?
if (( status != 0 )); then
  echo "validate: terraform validate failed on $dir" >&2
  exit 1
fi
(( plan )) || exit 0

tf plan -refresh=false -lock=false -input=false -out="$scratch/plan.bin" >"$scratch/plan.txt" || status=$?
if (( status != 0 )); then
  cat "$scratch/plan.txt"
  echo "validate: terraform plan failed on $dir" >&2
  exit 1
fi
grep -E '^(Plan:|No changes\.)' "$scratch/plan.txt" || { cat "$scratch/plan.txt"; exit 1; }
if [[ -n "${PLAN_JSON:-}" ]]; then
  "$terraform" -chdir="$work" show -json "$scratch/plan.bin" >"$PLAN_JSON"
fi
