#!/usr/bin/env bash
# Helpers for `make deploy` and `make destroy`: prerequisite checks, the Terraform state backend,
# the agent image's content-derived tag, and building and pushing the image.
# The Makefile holds the sequence of steps; this script holds the parts that are not one command.
# It reads AWS_REGION, AGENT_ARCH, PROJECT_NAME and ENVIRONMENT from the Makefile (one source for
# each), TF_STATE_BUCKET (optional: an existing bucket to keep the state in), TF_STATE_KMS_KEY
# (optional: a KMS key ARN for the state) and TF_LOCAL_STATE (where a local state from before the
# backend is looked for; default generated/terraform.tfstate).
set -euo pipefail
cd "$(dirname "$0")/.."

TF="terraform -chdir=generated"
# The oldest Terraform with S3 native state locking (generated/ requires it too).
TF_MIN=1.11.0

# Every missing prerequisite is named at once, with how to get it.
check() {
  local missing=()
  command -v aws >/dev/null || missing+=("aws: the AWS CLI v2 (https://docs.aws.amazon.com/cli/)")
  if command -v terraform >/dev/null; then
    local v
    v=$(terraform version -json 2>/dev/null | sed -n 's/.*"terraform_version": *"\([0-9.]*\)".*/\1/p')
    if [ -z "$v" ] || [ "$(printf '%s\n%s\n' "$v" "$TF_MIN" | sort -V | head -n1)" != "$TF_MIN" ]; then
      missing+=("terraform >= $TF_MIN (found ${v:-an unknown version})")
    fi
  else
    missing+=("terraform >= $TF_MIN")
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

# The agent image tag: a hash of everything the image is made of (the agent binary as built for
# the architecture, agent/Dockerfile, the base image's digest, the layers' compression) and the
# architecture, which it also names. The same inputs give the same tag (ECR tags are immutable);
# any change gives a new one: in any crate the agent links, the toolchain, uncommitted files,
# the base (its digest moves with every Debian update of it), the compression.
image_tag_of() { # binary, base image digest, compression
  local sum
  sum=$( { sha256sum "$1" agent/Dockerfile | cut -d' ' -f1; printf '%s\n%s\n' "$2" "$3"; } | sha256sum | cut -c1-16)
  echo "agent-$sum-$(arch)"
}

# push-image records the tag it pushed (or found pushed) for the apply that follows.
tag_file() { echo "target/deploy/agent-image-tag-$(arch)"; }
image_tag() {
  if [ ! -s "$(tag_file)" ]; then
    echo "deploy: no agent image was pushed from this checkout for $(arch) ($(tag_file) is missing): make deploy pushes one" >&2
    exit 1
  fi
  cat "$(tag_file)"
}

# The base image by digest: the tag moves, the digest does not, and the image records it.
BASE_TAG=${AGENT_BASE_IMAGE:-debian:bookworm-slim}
base_digest() {
  docker pull --quiet --platform "linux/$(oci_arch)" "$BASE_TAG" >/dev/null
  docker image inspect --format '{{index .RepoDigests 0}}' "$BASE_TAG"
}

oci_arch() { [ "$(arch)" = x86_64 ] && echo amd64 || echo arm64; }

push_image() {
  local repo tag base bin
  repo=$($TF output -raw ecr_repository_url)
  base=$(base_digest)
  bin=$(agent/image.sh binary "$(arch)")
  tag=$(image_tag_of "$bin" "$base" "${IMAGE_COMPRESSION:=zstd}")
  mkdir -p "$(dirname "$(tag_file)")"
  echo "$tag" > "$(tag_file)"
  if aws ecr describe-images --region "$(region)" --repository-name "${repo#*/}" --image-ids "imageTag=$tag" >/dev/null 2>&1; then
    echo "deploy: image $repo:$tag already pushed"
    return 0
  fi
  echo "deploy: building $repo:$tag for linux/$(oci_arch) on $base, pushing its layers ${IMAGE_COMPRESSION:=zstd}-compressed"
  aws ecr get-login-password --region "$(region)" | docker login --username AWS --password-stdin "${repo%%/*}"
  agent/image.sh docker-push "$(arch)" "$repo:$tag" "$base" "$IMAGE_COMPRESSION"
}

# Where Terraform keeps the state: S3, one object per stack (<project>/<environment>), encrypted,
# locked by S3 itself (use_lockfile: a .tflock object beside it). The state holds every API key's
# value and every resource's attributes, so the bucket is private, TLS-only, versioned (a bad
# apply can be rolled back) and outlives `make destroy`. Without TF_STATE_BUCKET, the account's
# bucket infra-gen-tfstate-<account>-<region> is made (or brought to these settings) here.
# Prints the arguments of `terraform init`: the backend settings, and how to move a local state
# into S3 (the first deploy after one made before the backend) or to switch stacks.
state_backend() {
  local bucket key account partition owner
  key="${PROJECT_NAME:?PROJECT_NAME is set by the Makefile}/${ENVIRONMENT:?ENVIRONMENT is set by the Makefile}/terraform.tfstate"
  read -r account partition < <(aws sts get-caller-identity --region "$(region)" --query '[Account, Arn]' --output text)
  partition=$(cut -d: -f2 <<<"$partition")
  # The state holds every API key: it goes only to a bucket of the expected account (this one, or
  # TF_STATE_BUCKET_OWNER), checked on every call with S3's bucket owner condition. A bucket name
  # is global and the default one is predictable: another account could have made it first.
  owner=${TF_STATE_BUCKET_OWNER:-$account}
  if [ -n "${TF_STATE_BUCKET:-}" ]; then
    bucket=$TF_STATE_BUCKET
    if ! aws s3api head-bucket --bucket "$bucket" --expected-bucket-owner "$owner" --region "$(region)" >/dev/null 2>&1; then
      echo "deploy: TF_STATE_BUCKET=$bucket does not exist, is not account $owner's, or cannot be read with these credentials" >&2
      exit 1
    fi
    if [ "$(aws s3api get-bucket-versioning --bucket "$bucket" --expected-bucket-owner "$owner" --region "$(region)" --query Status --output text 2>/dev/null)" != Enabled ]; then
      echo "deploy: warning: TF_STATE_BUCKET=$bucket has no versioning; an overwritten state cannot be recovered" >&2
    fi
  else
    bucket="infra-gen-tfstate-$account-$(region)"
    state_bucket "$bucket" "$partition" "$owner"
  fi
  local args=(-backend-config="bucket=$bucket" -backend-config="key=$key" -backend-config="region=$(region)")
  # encrypt = true is SSE-S3; with TF_STATE_KMS_KEY (a key ARN) the state is encrypted with that key
  # and reading it also takes kms:Decrypt on it.
  [ -z "${TF_STATE_KMS_KEY:-}" ] || args+=(-backend-config="kms_key_id=$TF_STATE_KMS_KEY")
  local local_state=${TF_LOCAL_STATE:-generated/terraform.tfstate}
  if [ -s "$local_state" ]; then
    echo "deploy: moving the local state $local_state to s3://$bucket/$key" >&2
    args+=(-migrate-state -force-copy)
  else
    args+=(-reconfigure)
  fi
  echo "${args[*]}"
}

# The state bucket, made if missing and brought to its settings (each call is idempotent).
state_bucket() {
  local bucket=$1 partition=$2 owner=$3 r created
  r=$(region)
  if ! aws s3api head-bucket --bucket "$bucket" --expected-bucket-owner "$owner" --region "$r" >/dev/null 2>&1; then
    echo "deploy: creating the Terraform state bucket $bucket" >&2
    if [ "$r" = us-east-1 ]; then
      created=$(aws s3api create-bucket --bucket "$bucket" --region "$r" 2>&1 >/dev/null) || true
    else
      created=$(aws s3api create-bucket --bucket "$bucket" --region "$r" --create-bucket-configuration "LocationConstraint=$r" 2>&1 >/dev/null) || true
    fi
    # Made now, or ours already (BucketAlreadyOwnedByYou): either way it must pass the owner check.
    if ! aws s3api head-bucket --bucket "$bucket" --expected-bucket-owner "$owner" --region "$r" >/dev/null 2>&1; then
      echo "deploy: the state bucket $bucket exists but is not account $owner's (${created:-no answer}); set TF_STATE_BUCKET to a bucket of yours" >&2
      exit 1
    fi
  fi
  local own=(--expected-bucket-owner "$owner")
  aws s3api put-public-access-block --bucket "$bucket" "${own[@]}" --region "$r" \
    --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
  aws s3api put-bucket-ownership-controls --bucket "$bucket" "${own[@]}" --region "$r" \
    --ownership-controls 'Rules=[{ObjectOwnership=BucketOwnerEnforced}]'
  aws s3api put-bucket-versioning --bucket "$bucket" "${own[@]}" --region "$r" --versioning-configuration Status=Enabled
  aws s3api put-bucket-encryption --bucket "$bucket" "${own[@]}" --region "$r" --server-side-encryption-configuration \
    '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
  aws s3api put-bucket-lifecycle-configuration --bucket "$bucket" "${own[@]}" --region "$r" --lifecycle-configuration \
    '{"Rules":[{"ID":"old-state-versions","Status":"Enabled","Filter":{"Prefix":""},"NoncurrentVersionExpiration":{"NoncurrentDays":90},"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1}}]}'
  aws s3api put-bucket-policy --bucket "$bucket" "${own[@]}" --region "$r" --policy \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"DenyInsecureTransport\",\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":[\"arn:$partition:s3:::$bucket\",\"arn:$partition:s3:::$bucket/*\"],\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}}]}"
}

# Before `terraform destroy`: nothing may start a task any more (the process function, which
# starts jobs' tasks and refills the warm pool, is throttled to zero concurrent runs), every task of
# the cluster is stopped, and ECS must report none left, so that the cluster, the subnets and the
# security group are free when Terraform deletes them (its cluster deletion waits 10 minutes and
# fails while tasks run). Queued jobs stay queued; they go with the table.
drain() {
  local r cluster fn
  r=$(region)
  if ! cluster=$($TF output -raw ecs_cluster 2>/dev/null) || [ -z "$cluster" ]; then
    echo "deploy: no ecs_cluster in the state: nothing to drain"
    return 0
  fi
  fn="${PROJECT_NAME:?PROJECT_NAME is set by the Makefile}-${ENVIRONMENT:?ENVIRONMENT is set by the Makefile}-process"
  if aws lambda get-function --region "$r" --function-name "$fn" >/dev/null 2>&1; then
    aws lambda put-function-concurrency --region "$r" --function-name "$fn" --reserved-concurrent-executions 0 >/dev/null
    echo "deploy: $fn throttled to 0: no new tasks, no warm-pool refills (if you keep the stack, undo it: aws lambda delete-function-concurrency --function-name $fn)"
  fi
  # Stop what runs (a process invocation already under way may still start one: list again
  # until none is left to stop), then wait until ECS reports each stopped task STOPPED (a stopped
  # task is no longer listed as RUNNING, but it holds its ENI until it is gone).
  local stopped=() round tasks t
  for round in $(seq 1 "${DRAIN_ROUNDS:-30}"); do
    tasks=$( { aws ecs list-tasks --region "$r" --cluster "$cluster" --desired-status RUNNING --query 'taskArns' --output text
               aws ecs list-tasks --region "$r" --cluster "$cluster" --desired-status PENDING --query 'taskArns' --output text; } \
             | tr '\t' '\n' | grep -v '^None$' | grep . || true)
    [ -n "$tasks" ] || break
    for t in $tasks; do
      aws ecs stop-task --region "$r" --cluster "$cluster" --task "$t" --reason "make destroy: draining the cluster" >/dev/null
      stopped+=("$t")
    done
    echo "deploy: stopped $(wc -l <<<"$tasks") task(s) of $cluster (round $round)"
    sleep "${DRAIN_POLL_SECONDS:-5}"
  done
  if [ -n "$tasks" ]; then
    echo "deploy: tasks of $cluster keep starting: $(tr '\n' ' ' <<<"$tasks")" >&2
    exit 1
  fi
  # DescribeTasks takes 100 tasks at a time; the waiter polls each batch for up to 10 minutes.
  local i
  for ((i = 0; i < ${#stopped[@]}; i += 100)); do
    aws ecs wait tasks-stopped --region "$r" --cluster "$cluster" --tasks "${stopped[@]:i:100}"
  done
  echo "deploy: cluster $cluster drained (${#stopped[@]} task(s) stopped)"
}

case "${1:-}" in
  check) check "${2:-}" ;;
  drain) drain ;;
  state-backend) state_backend ;;
  image-tag) image_tag ;;
  image-tag-of) image_tag_of "${2:?agent binary}" "${3:?base image digest}" "${4:?compression}" ;;
  push-image) push_image ;;
  *) echo "usage: $0 check [destroy] | state-backend | drain | image-tag | image-tag-of BINARY BASE COMPRESSION | push-image" >&2; exit 2 ;;
esac
