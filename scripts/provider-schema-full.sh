#!/usr/bin/env bash
# Regenerates tfstandin/schema/aws.json, the Terraform schema (attribute types, required / optional / computed
# flags, block nesting) that the provider stand-in serves to `terraform validate` and `terraform plan`, from the
# same pinned CDK for Terraform bindings as scripts/provider-schema.sh and for the same types.txt.
#
#   scripts/provider-schema-full.sh                    # npm pack the pinned package into a temp dir
#   PROVIDER_AWS_TGZ=/path/to.tgz scripts/provider-schema-full.sh
#
# Idempotent: the output only changes when the package or the type list does.
set -euo pipefail

PACKAGE="@cdktn/provider-aws@25.7.0"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

tgz="${PROVIDER_AWS_TGZ:-}"
if [[ -z "$tgz" ]]; then
  echo "provider-schema-full: npm pack $PACKAGE (about 46 MB)" >&2
  tgz="$tmp/$(cd "$tmp" && npm pack --silent "$PACKAGE" | tail -n 1)"
fi
[[ -f "$tgz" ]] || { echo "provider-schema-full: no tarball at $tgz" >&2; exit 1; }

tar -xzf "$tgz" -C "$tmp" --wildcards 'package/.jsii' 'package/lib/*/index.js'
node --max-old-space-size=3072 "$here/provider-schema-full.mjs" "$tmp/package" \
  "$root/infra-gen/provider-schema/types.txt" "$root/tfstandin/schema/aws.json"
