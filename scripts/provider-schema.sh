#!/usr/bin/env bash
# Regenerates the one committed AWS provider schema, tfjson/provider-schema/aws.json, from the pinned CDK for
# Terraform bindings: the Terraform schema (types, flags, nesting) that the provider stand-in serves to
# `terraform validate` and `plan`, and that tfjson projects for the conformance checks.
#
#   scripts/provider-schema.sh                    # npm pack the pinned package into a temp dir
#   PROVIDER_AWS_TGZ=/path/to.tgz scripts/provider-schema.sh   # use an already downloaded tarball
#
# The types to extract are listed in tfjson/provider-schema/types.txt. Idempotent: the output only
# changes when the package or the type list does.
set -euo pipefail

PACKAGE="@cdktn/provider-aws@25.7.0"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
schema_dir="$root/tfjson/provider-schema"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

tgz="${PROVIDER_AWS_TGZ:-}"
if [[ -z "$tgz" ]]; then
  echo "provider-schema: npm pack $PACKAGE (about 46 MB)" >&2
  tgz="$tmp/$(cd "$tmp" && npm pack --silent "$PACKAGE" | tail -n 1)"
fi
[[ -f "$tgz" ]] || { echo "provider-schema: no tarball at $tgz" >&2; exit 1; }

# Only the manifest and the compiled modules (for getter names) are needed.
tar -xzf "$tgz" -C "$tmp" --wildcards 'package/.jsii' 'package/lib/*/index.js'

# The manifest is 153 MB of JSON; parsing it needs more than Node's default heap.
node --max-old-space-size=3072 "$here/provider-schema.mjs" "$tmp/package" "$schema_dir/types.txt" "$schema_dir/aws.json"
