#!/usr/bin/env bash
# A tenant's webhook signing secrets, in SSM Parameter Store, where the webhook function reads them:
#
#   scripts/webhook-secret.sh create TENANT   a first secret (refused if the tenant has one)
#   scripts/webhook-secret.sh rotate TENANT   a new secret; the current one stays valid beside it,
#                                             and every event is signed with both
#   scripts/webhook-secret.sh retire TENANT   only the newest secret stays (after the receiver
#                                             verifies with it)
#   scripts/webhook-secret.sh show TENANT     the tenant's secrets, newest first (give them to the
#                                             receiver)
#
# A secret is `whsec_` and the base64 of 32 random bytes (Standard Webhooks). The parameter is
# /<PROJECT_NAME>/<ENVIRONMENT>/webhooks/<TENANT> (defaults infra-demo, dev), a SecureString under
# SSM's default key, holding one secret, or two separated by a space while they rotate. The AWS CLI
# runs with the usual settings (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL). New secrets are printed
# on stdout, nothing else is. Exit codes: 0 done, 1 refused (no secret yet, or one already), 2 usage.
set -euo pipefail

usage() { echo "usage: $0 create|rotate|retire|show TENANT   (PROJECT_NAME, ENVIRONMENT, AWS_REGION)" >&2; exit 2; }
step=${1:-}
tenant=${2:-}
case "$step" in create | rotate | retire | show) ;; *) usage ;; esac
[[ "$tenant" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || { echo "webhook-secret: tenant ids are 1-63 lower-case letters, digits and dashes" >&2; usage; }
command -v aws >/dev/null || { echo "webhook-secret: the AWS CLI is needed (pip install awscli, or scripts/tools.sh puts it in .tools/venv/bin)" >&2; exit 2; }

name="/${PROJECT_NAME:-infra-demo}/${ENVIRONMENT:-dev}/webhooks/${tenant}"

current() {
  # The parameter's value, or nothing when it does not exist (any other error stops the script).
  local out
  if out=$(aws ssm get-parameter --name "$name" --with-decryption --query Parameter.Value --output text 2>&1); then
    printf '%s' "$out"
  elif [[ "$out" == *ParameterNotFound* ]]; then
    return 0
  else
    echo "webhook-secret: reading $name: $out" >&2
    exit 1
  fi
}

new_secret() { printf 'whsec_%s' "$(head -c 32 /dev/urandom | base64 -w0)"; }

put() {
  aws ssm put-parameter --name "$name" --type SecureString --overwrite --value "$1" \
    --description "Webhook signing secrets of tenant $tenant (newest first)" >/dev/null
}

secrets=$(current)
read -r -a have <<<"$secrets"
case "$step" in
  create)
    [ ${#have[@]} -eq 0 ] || { echo "webhook-secret: $tenant has a secret already; rotate it instead" >&2; exit 1; }
    secret=$(new_secret)
    put "$secret"
    echo "webhook-secret: created $name" >&2
    echo "$secret"
    ;;
  rotate)
    [ ${#have[@]} -ge 1 ] || { echo "webhook-secret: $tenant has no secret yet; create one" >&2; exit 1; }
    [ ${#have[@]} -eq 1 ] || { echo "webhook-secret: $tenant is rotating already (two secrets); retire the old one first" >&2; exit 1; }
    secret=$(new_secret)
    put "$secret ${have[0]}"
    echo "webhook-secret: $tenant's events are now signed with the new secret and the old one; retire the old when the receiver verifies with the new" >&2
    echo "$secret"
    ;;
  retire)
    [ ${#have[@]} -eq 2 ] || { echo "webhook-secret: $tenant has one secret; nothing to retire" >&2; exit 1; }
    put "${have[0]}"
    echo "webhook-secret: $tenant's events are signed with the newest secret only" >&2
    ;;
  show)
    [ ${#have[@]} -ge 1 ] || { echo "webhook-secret: $tenant has no secret; create one" >&2; exit 1; }
    printf '%s\n' "${have[@]}"
    ;;
esac
