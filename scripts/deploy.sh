#!/usr/bin/env bash
# Helpers for `make deploy` and `make destroy`: prerequisite checks, the agent image's
# content-derived tag, building and pushing the image, and emptying what Terraform cannot delete.
# The Makefile holds the sequence of steps; this script holds the parts that are not one command.
set -euo pipefail
cd "$(dirname "$0")/.."

TF="terraform -chdir=generated"

# Every missing prerequisite is named at once, with how to get it.
check() {
  local missing=()
  command -v aws >/dev/null || missing+=("aws: the AWS CLI v2 (https://docs.aws.amazon.com/cli/)")
  if command -v terraform >/dev/null; then
    local v
    v=$(terraform version -json 2>/dev/null | sed -n 's/.*"terraform_version": *"\([0-9.]*\)".*/\1/p')
    if [ -z "$v" ] || [ "$(printf '%s\n1.5.0\n' "$v" | sort -V | head -n1)" != "1.5.0" ]; then
      missing+=("terraform >= 1.5 (found ${v:-an unknown version})")
    fi
  else
    missing+=("terraform >= 1.5")
  fi
  if [ "${1:-}" != destroy ]; then
    if ! command -v docker >/dev/null; then
      missing+=("docker: to build and push the agent image")
    elif ! docker info >/dev/null 2>&1; then
      missing+=("a running Docker engine (docker info failed)")
    fi
  fi
  if command -v aws >/dev/null && ! aws sts get-caller-identity >/dev/null 2>&1; then
    missing+=("AWS credentials: aws sts get-caller-identity failed (set AWS_PROFILE or run aws configure / aws sso login)")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "deploy: cannot continue; missing:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
  echo "deploy: prerequisites present (aws, terraform, docker, credentials)"
}

# The agent image tag: the git tree of everything the image is built from, so the same sources
# always give the same tag (ECR tags are immutable) and any change gives a new one.
image_tag() {
  local tree
  tree=$( { git rev-parse HEAD:agent HEAD:names HEAD:Cargo.lock 2>/dev/null; git diff HEAD -- agent names Cargo.lock; } | sha256sum | cut -c1-16)
  echo "agent-$tree"
}

push_image() {
  local repo tag region arch
  repo=$($TF output -raw ecr_repository_url)
  region=${AWS_REGION:-$(aws configure get region || echo us-east-1)}
  tag=$(image_tag)
  arch=${LAMBDA_ARCH:-arm64}
  if aws ecr describe-images --region "$region" --repository-name "${repo#*/}" --image-ids "imageTag=$tag" >/dev/null 2>&1; then
    echo "deploy: image $repo:$tag already pushed"
    return 0
  fi
  aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "${repo%%/*}"
  docker build --platform "linux/$arch" -f agent/Dockerfile -t "$repo:$tag" .
  docker push "$repo:$tag"
}

case "${1:-}" in
  check) check "${2:-}" ;;
  image-tag) image_tag ;;
  push-image) push_image ;;
  *) echo "usage: $0 check [destroy] | image-tag | push-image" >&2; exit 2 ;;
esac
