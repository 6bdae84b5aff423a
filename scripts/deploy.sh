#!/usr/bin/env bash
# Helpers for `make deploy` and `make destroy`: prerequisite checks, the agent image's
# content-derived tag, building and pushing the image, and emptying what Terraform cannot delete.
# The Makefile holds the sequence of steps; this script holds the parts that are not one command.
# It reads AWS_REGION and AGENT_ARCH from the Makefile (one source for each).
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
    elif ! docker buildx inspect --bootstrap 2>/dev/null | grep -q "linux/$(oci_arch)"; then
      # The image's RUN steps execute for the target architecture.
      missing+=("docker buildx for linux/$(oci_arch) (on another architecture: docker run --privileged --rm tonistiigi/binfmt --install $(oci_arch))")
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

region() { echo "${AWS_REGION:?AWS_REGION is set by the Makefile}"; }
arch() { echo "${AGENT_ARCH:?AGENT_ARCH is set by the Makefile}"; }

# The agent image tag: the git tree of everything the image is built from and its architecture,
# so the same sources always give the same tag (ECR tags are immutable), any change gives a new
# one, and an image of one architecture is never taken for the other.
image_tag() {
  local tree
  tree=$( { git rev-parse HEAD:agent HEAD:names HEAD:testenv HEAD:Cargo.lock 2>/dev/null; git diff HEAD -- agent names Cargo.lock; } | sha256sum | cut -c1-16)
  echo "agent-$tree-$(arch)"
}

# The base image by digest: the tag moves, the digest does not, and the image records it.
BASE_TAG=${AGENT_BASE_IMAGE:-debian:bookworm-slim}
base_digest() {
  docker pull --quiet --platform "linux/$(oci_arch)" "$BASE_TAG" >/dev/null
  docker image inspect --format '{{index .RepoDigests 0}}' "$BASE_TAG"
}

oci_arch() { [ "$(arch)" = x86_64 ] && echo amd64 || echo arm64; }

push_image() {
  local repo tag base
  repo=$($TF output -raw ecr_repository_url)
  tag=$(image_tag)
  if aws ecr describe-images --region "$(region)" --repository-name "${repo#*/}" --image-ids "imageTag=$tag" >/dev/null 2>&1; then
    echo "deploy: image $repo:$tag already pushed"
    return 0
  fi
  base=$(base_digest)
  echo "deploy: building $repo:$tag for linux/$(oci_arch) on $base"
  agent/image.sh docker-build "$(arch)" "$repo:$tag" "$base"
  aws ecr get-login-password --region "$(region)" | docker login --username AWS --password-stdin "${repo%%/*}"
  docker push "$repo:$tag"
}

case "${1:-}" in
  check) check "${2:-}" ;;
  image-tag) image_tag ;;
  push-image) push_image ;;
  *) echo "usage: $0 check [destroy] | image-tag | push-image" >&2; exit 2 ;;
esac
