#!/usr/bin/env bash
# Builds the agent image from agent/Dockerfile, one path for both architectures and both engines:
#   - the agent binary is compiled by the workspace's toolchain for the target architecture
#     (cargo for the host's, cargo-lambda's zig for the other) and is the whole build context;
#   - here (no registry reachable) the base is a bookworm made by mmdebstrap from Debian's archive
#     and imported into podman; at deploy the base is debian:bookworm-slim pinned by digest.
#
# Usage:
#   agent/image.sh build [ARCH]    podman image $AGENT_IMAGE (default infra-demo-agent:local), ARCH
#                                  x86_64 (amd64) or arm64 (default: the host's); UNSLIMMED=1
#                                  keeps what the image never loads (the image as before)
#   agent/image.sh binary ARCH     just the stripped release binary; prints its path
#   agent/image.sh base            the mmdebstrap base image (cached; REFRESH_BASE=1 remakes it)
#   agent/image.sh packages        the packages the built image holds (name, version, arch)
#   agent/image.sh resolve         the Dockerfile's package scheme against today's archive, in the
#                                  base image: prints the versions a build would take today
#   agent/image.sh docker-build ARCH TAG BASE   the same build with docker
#   agent/image.sh docker-push ARCH TAG BASE COMPRESSION
#                                               that build pushed to TAG's registry with its layers
#                                               compressed as COMPRESSION (zstd or gzip; make deploy)
#
# Every podman call needs runc (crun fails here: cgroups in hybrid mode) and explicit ulimits (the
# defaults exceed the host's hard limits); testenv::container passes the same for runs.
set -euo pipefail
cd "$(dirname "$0")/.."

AGENT_IMAGE=${AGENT_IMAGE:-infra-demo-agent:local}
BASE_IMAGE=${BASE_IMAGE:-localhost/infra-demo-base:bookworm}
PODMAN=(podman --runtime runc)
# As testenv::container::ULIMITS (why there).
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=16384:16384)
# The sources of debian:bookworm-slim: the release, its updates and the security archive.
SOURCES=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
# What debian:bookworm-slim leaves out, kept as dpkg configuration in the base so that packages
# the Dockerfile installs leave it out too.
SLIM=('/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/groff/*'
      '/usr/share/lintian/*' '/usr/share/linda/*' '/usr/share/locale/*')

die() { echo "agent image: $*" >&2; exit 1; }

need() { # command package-or-hint
  command -v "$1" >/dev/null || die "$1 is missing (${2}); scripts/system-packages.sh containers installs it"
}

normalize_arch() {
  case "${1:-$(uname -m)}" in
    x86_64|amd64) echo x86_64 ;;
    arm64|aarch64) echo arm64 ;;
    *) die "unknown architecture '$1' (x86_64 or arm64)" ;;
  esac
}

oci_arch() { [ "$1" = x86_64 ] && echo amd64 || echo arm64; }

rust_target() { [ "$1" = x86_64 ] && echo x86_64-unknown-linux-gnu || echo aarch64-unknown-linux-gnu; }

check_podman() {
  need podman "Debian package podman"
  command -v runc >/dev/null || die "runc is missing (Debian package runc; crun does not work here)"
  "${PODMAN[@]}" info >/dev/null 2>&1 || die "podman cannot run here: $("${PODMAN[@]}" info 2>&1 | tail -1)"
}

# The stripped release binary for ARCH, built by this workspace's toolchain.
binary() {
  local arch target
  arch=$(normalize_arch "$1")
  target=$(rust_target "$arch")
  local bin="target/$target/release/agent"
  if [ "$arch" = "$(normalize_arch)" ]; then
    CARGO_PROFILE_RELEASE_STRIP=symbols cargo build -q --release --locked -p agent --target "$target" >&2
  else
    # cargo-lambda's zig is a cross linker for any binary of the workspace (C code of ring too);
    # it leaves the binary as <lambda-dir>/agent/bootstrap.
    make -s lambda-tools LAMBDA_ARCH="$arch" >&2
    PATH="$PWD/.tools/venv/bin:$PATH" CARGO_PROFILE_RELEASE_STRIP=symbols \
      cargo lambda build -q --release --locked -p agent --bin agent --lambda-dir target/agent-cross \
      "$([ "$arch" = arm64 ] && echo --arm64 || echo --x86-64)" >&2
    bin="target/agent-cross/$arch/agent"
    mkdir -p "$(dirname "$bin")"
    mv target/agent-cross/agent/bootstrap "$bin"
  fi
  [ -x "$bin" ] || die "the agent binary for $arch was not built ($bin)"
  echo "$bin"
}

# The bookworm base, made once from Debian's archive and imported into podman.
base() {
  check_podman
  need mmdebstrap "Debian package mmdebstrap"
  if [ "${REFRESH_BASE:-0}" != 1 ] && "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    return 0
  fi
  local work opts=()
  work=$(mktemp -d)
  for p in "${SLIM[@]}"; do opts+=(--dpkgopt="path-exclude=$p"); done
  opts+=(--dpkgopt='path-include=/usr/share/doc/*/copyright')
  echo "agent image: making the bookworm base with mmdebstrap (about a minute, once)"
  # The merged-/usr hook talks on stderr even with --quiet: kept in a log, shown on failure.
  if ! mmdebstrap --quiet --variant=minbase --format=tar "${opts[@]}" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --aptopt='APT::Install-Recommends "false"' \
    bookworm "$work/base.tar" "${SOURCES[@]}" >"$work/mmdebstrap.log" 2>&1; then
    tail -20 "$work/mmdebstrap.log" >&2
    rm -rf "$work"
    die "mmdebstrap could not make the base (its last lines are above; is deb.debian.org reachable?)"
  fi
  "${PODMAN[@]}" import --quiet \
    --change 'CMD ["/bin/bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$work/base.tar" "$BASE_IMAGE" >/dev/null
  rm -rf "$work"
}

# A build context holding only the binary (the Dockerfile comes with -f).
context() { # binary arch
  local bin=$1 dir="target/agent-image/$2"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$bin" "$dir/agent"
  echo "$dir"
}

build() {
  local arch bin dir
  arch=$(normalize_arch "${1:-}")
  base
  bin=$(binary "$arch")
  dir=$(context "$bin" "$arch")
  echo "agent image: building $AGENT_IMAGE for linux/$(oci_arch "$arch") on $BASE_IMAGE"
  # --network host: apt reaches Debian's archive without a container network.
  # --format docker: the OCI format has no SHELL instruction; ECR takes both.
  "${PODMAN[@]}" build --quiet --format docker --network host "${ULIMITS[@]}" --pull=never \
    --platform "linux/$(oci_arch "$arch")" --build-arg "DEBIAN_IMAGE=$BASE_IMAGE" \
    ${CHROMIUM_VERSION:+--build-arg "CHROMIUM_VERSION=$CHROMIUM_VERSION"} \
    $([ "${NO_CACHE:-0}" = 1 ] && echo --no-cache) \
    $([ "${UNSLIMMED:-0}" = 1 ] && echo --build-arg UNLOADED= --build-arg UNLOADED_FILES=) \
    --label "org.opencontainers.image.base.name=$BASE_IMAGE" \
    -f agent/Dockerfile -t "$AGENT_IMAGE" "$dir" >/dev/null \
    || die "podman build failed (the step that failed is printed above)"
  local size
  size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$AGENT_IMAGE")
  echo "agent image: $AGENT_IMAGE, $((size / 1024 / 1024)) MiB, $(packages | wc -l) packages:"
  packages | awk -F'\t' '/^(chromium[a-z-]*|chromedriver|fonts-liberation|libc6)\t/ {printf "  %s %s\n", $1, $2}'
}

packages() {
  "${PODMAN[@]}" run --rm "${ULIMITS[@]}" --network none --entrypoint cat "$AGENT_IMAGE" \
    /usr/share/agent/packages.tsv
}

# What a build would install today: the headless shell's current version (or CHROMIUM_VERSION),
# the fonts, and chromium-driver at exactly that version, resolved and located (not downloaded)
# in the base image. Fails, naming the package, when the archive no longer has one.
resolve() {
  check_podman
  base
  "${PODMAN[@]}" run --rm --network host "${ULIMITS[@]}" -e "CHROMIUM_VERSION=${CHROMIUM_VERSION:-}" \
    "$BASE_IMAGE" bash -euo pipefail -c '
      apt-get update -qq
      pin=${CHROMIUM_VERSION:+=$CHROMIUM_VERSION}
      plan=$(apt-get install --dry-run -qq --no-install-recommends "chromium-headless-shell$pin" fonts-liberation 2>&1) \
        || { echo "agent image: cannot install chromium-headless-shell$pin fonts-liberation today: $plan" >&2; exit 1; }
      version=$(awk "/^Inst chromium-headless-shell /{gsub(/[()]/, \"\", \$3); print \$3}" <<< "$plan")
      apt-get download --print-uris "chromium-driver=$version" | grep -q chromium-driver \
        || { echo "agent image: chromium-driver=$version is not in the archive" >&2; exit 1; }
      echo "agent image: today a build takes chromium-headless-shell and chromedriver $version, $(grep -c "^Inst " <<< "$plan") packages"
    '
}

# make deploy: the same Dockerfile and context with docker, for the task definition's
# architecture, on a base given by digest.
docker_build() {
  local arch tag base_ref bin dir
  arch=$(normalize_arch "$1"); tag=$2; base_ref=$3
  bin=$(binary "$arch")
  dir=$(context "$bin" "$arch")
  docker build --platform "linux/$(oci_arch "$arch")" --build-arg "DEBIAN_IMAGE=$base_ref" \
    --label "org.opencontainers.image.base.name=$base_ref" -f agent/Dockerfile -t "$tag" "$dir"
}

# Built and pushed in one step by buildx: only its image exporter recompresses layers. zstd layers
# decompress faster than gzip (AWS measured up to 27% faster Fargate task starts with zstd, Fargate
# platform 1.4); gzip is for a SOCI index, which indexes gzip layers only.
docker_push() {
  local arch tag base_ref compression bin dir level
  arch=$(normalize_arch "$1"); tag=$2; base_ref=$3; compression=$4
  case "$compression" in
    zstd) level=3 ;;
    gzip) level=6 ;;
    *) die "IMAGE_COMPRESSION must be zstd or gzip, not '$compression'" ;;
  esac
  bin=$(binary "$arch")
  dir=$(context "$bin" "$arch")
  docker buildx build --platform "linux/$(oci_arch "$arch")" --build-arg "DEBIAN_IMAGE=$base_ref" \
    --label "org.opencontainers.image.base.name=$base_ref" -f agent/Dockerfile \
    --output "type=image,name=$tag,push=true,compression=$compression,compression-level=$level,force-compression=true,oci-mediatypes=true" \
    "$dir"
}

case "${1:-}" in
  build) build "${2:-}" ;;
  binary) binary "${2:?architecture}" ;;
  base) base ;;
  packages) packages ;;
  resolve) resolve ;;
  docker-build) docker_build "${2:?architecture}" "${3:?tag}" "${4:?base image by digest}" ;;
  docker-push) docker_push "${2:?architecture}" "${3:?tag}" "${4:?base image by digest}" "${5:?compression: zstd or gzip}" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2 ;;
esac
