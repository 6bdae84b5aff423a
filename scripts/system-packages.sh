#!/usr/bin/env bash
# Every Debian package that the build, the tests and the local stack need, each with its reason:
# the one place that names them. Installs what is missing in one apt-get run and is quick (one
# dpkg-query) when everything is there. A new machine with only the base image gets everything
# from here; nothing is to be installed by hand.
#
# Usage: scripts/system-packages.sh [--list] [group ...]
#   groups: build browser containers (default: all of them); --list prints the table
set -euo pipefail

# group       package                  why
PACKAGES=$(cat <<'EOF'
build       protobuf-compiler        protoc: tf-provider (tfstandin) compiles Terraform's plugin protocol at build time
build       libprotobuf-dev          google/protobuf/*.proto, the well-known types protoc imports (not pulled in without recommends)
browser     chromium                 the agent's tests drive Debian's full Chromium
browser     chromium-driver          chromedriver, which the agent drives Chromium through
browser     chromium-headless-shell  the browser of the agent image, also tested on the host
browser     strace                   agent/trace.sh: which packages the image's browser really loads (agent/Dockerfile's UNLOADED list)
browser     tesseract-ocr            the stand-in model of the computer-use tests reads the screenshots it is sent (OCR), as a model would
containers  podman                   builds and runs the agent image (no Docker engine here)
containers  runc                     the OCI runtime podman uses here (crun fails: cgroups in hybrid mode)
containers  catatonit                the container init process (the task definition sets initProcessEnabled)
containers  mmdebstrap               makes the bookworm base image from Debian's archive (no registry is reachable)
containers  iproute2                 ip: loopback-only network namespaces for tests that aim at refused addresses
containers  zstd                     make bench-image decompresses the image's zstd layers (what IMAGE_COMPRESSION=zstd pushes)
containers  docker-registry          make bench-image pushes the image to a registry on loopback and times its pull
EOF
)

list=false
groups=()
for arg in "$@"; do
  case "$arg" in
    --list) list=true ;;
    build|browser|containers) groups+=("$arg") ;;
    *) echo "usage: $0 [--list] [build|browser|containers ...]" >&2; exit 2 ;;
  esac
done
[ ${#groups[@]} -gt 0 ] || groups=(build browser containers)

if $list; then
  echo "$PACKAGES"
  exit 0
fi

wanted=()
for g in "${groups[@]}"; do
  while read -r group pkg _; do
    [ "$group" = "$g" ] && wanted+=("$pkg")
  done <<< "$PACKAGES"
done

installed() { # package -> its version when installed, else nothing (and success either way)
  { dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' "$1" 2>/dev/null || true; } | awk '$1 == "ii" {print $2}'
}

missing=()
for pkg in "${wanted[@]}"; do
  [ -n "$(installed "$pkg")" ] || missing+=("$pkg")
done

# One chromedriver drives both browsers, so the three Chromium packages must be one version:
# when one is missing or they differ, all three are installed together (apt takes one version).
chromium_set=(chromium chromium-driver chromium-headless-shell)
if [[ " ${groups[*]} " == *" browser "* ]]; then
  versions=$(for p in "${chromium_set[@]}"; do installed "$p"; done | sort -u | wc -l)
  if [ ${#missing[@]} -gt 0 ] || [ "$versions" -ne 1 ]; then
    for p in "${chromium_set[@]}"; do
      [[ " ${missing[*]} " == *" $p "* ]] || missing+=("$p")
    done
  fi
fi

[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "system packages: installing ${missing[*]}"
install() {
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
# The package lists of a new machine may be stale (the archive replaced a version): refresh and
# retry once.
if ! install 2>/dev/null; then
  $sudo apt-get update -q >/dev/null
  install
fi
for pkg in "${missing[@]}"; do
  [ -n "$(installed "$pkg")" ] || { echo "system packages: $pkg did not install" >&2; exit 1; }
done
# docker-registry's package starts a registry on every interface (:5000) where an init system
# runs; the benchmark starts its own on loopback, so the package's service stays off.
if [[ " ${missing[*]} " == *" docker-registry "* ]] && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
