#!/usr/bin/env bash
# Installs the Debian packages lowbit builds and tests with, only those missing.
set -euo pipefail
pkgs=(cmake make g++ pkg-config libeigen3-dev libopenblas-dev libtbb-dev libspdlog-dev
      googletest libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
      python3 python3-venv python3-dev gcc binutils ccache)
# The NEON kernels are cross-compiled and run under qemu-user (ctest -L neon). Where
# these cannot be installed the build still works and those tests report a skip.
neon_pkgs=(g++-aarch64-linux-gnu qemu-user)
missing() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing_pkgs < <(missing "${pkgs[@]}")
mapfile -t missing_neon < <(missing "${neon_pkgs[@]}")
[ ${#missing_pkgs[@]} -eq 0 ] && [ ${#missing_neon[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  echo "lowbit: installing missing packages: ${missing_pkgs[*]}"
  $SUDO apt-get install -y -qq "${missing_pkgs[@]}"
fi
if [ ${#missing_neon[@]} -gt 0 ]; then
  echo "lowbit: installing missing packages: ${missing_neon[*]}"
  $SUDO apt-get install -y -qq "${missing_neon[@]}" ||
    echo "lowbit: WARNING: could not install ${missing_neon[*]}: the neon tests (NEON kernels under qemu) will be skipped"
fi
