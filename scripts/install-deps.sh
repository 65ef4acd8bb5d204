#!/usr/bin/env bash
# Installs the Debian packages lowbit builds and tests with, only those missing.
set -euo pipefail
pkgs=(cmake make g++ pkg-config libeigen3-dev libopenblas-dev libtbb-dev libspdlog-dev
      googletest libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
      python3 python3-venv python3-dev gcc binutils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "lowbit: installing missing packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq "${missing[@]}"
