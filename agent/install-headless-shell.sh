#!/usr/bin/env bash
# Installs Debian's chromium-headless-shell (the browser of agent/Dockerfile) at the version of the
# installed chromium, so one chromedriver drives both; idempotent and quick when present.
set -euo pipefail
[ -x /usr/lib/chromium/chromium-headless-shell ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
version=$(dpkg-query -W -f='${Version}' chromium)
install() { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
echo "agent: installing chromium-headless-shell $version (once)"
install "chromium-headless-shell=$version" && exit 0
$sudo apt-get update -qq
install "chromium-headless-shell=$version" && exit 0
# The archive moved on from the installed version: take the current one of all three together.
echo "agent: chromium $version is gone from the archive; upgrading chromium, chromium-driver and the headless shell"
install chromium chromium-driver chromium-headless-shell
