#!/usr/bin/env bash
# Creates (first use) or reuses the venv the Python package tests run in, and installs
# the `lowbit` package from this checkout into it:
#
#   bash tests/python/setup_pyvenv.sh     # venv at ${LOWBIT_PY_VENV:-$HOME/.cache/lowbit/pyvenv}
#
# The venv holds pinned numpy, pytest, gguf (the numpy dequantizers the tests compare
# with) and the build backend (scikit-build-core, pybind11), all from PyPI. The package is
# built with `pip install --no-build-isolation` (no download per build) and a persistent
# CMake build directory under ${LOWBIT_PY_BUILD_CACHE:-$HOME/.cache/lowbit/pybuild}, one
# per checkout path, so a rebuild after an edit recompiles only what changed.
#
# LOWBIT_PY_PREBUILT=<a static lowbit build tree of this checkout> (what `make test`
# passes: its own tree) links that tree's liblowbit.a instead of compiling the library a
# second time (python/CMakeLists.txt, LOWBIT_PREBUILT_DIR); only the module is compiled.
#
# Reuse is decided by a stamp inside the venv: the hash of every file the build reads
# (python/, include/, src/, kernels/, cmake/, CMakeLists.txt), the pins and the Python
# version. When it matches and the package imports, nothing is built (a warm run costs two
# Python starts); otherwise pip reinstalls from the checkout. A venv an interrupted run
# left broken (no working python or pip) is recreated. Two build trees testing at once
# share the venv, so one sets it up at a time (flock).
set -euo pipefail

VENV="${LOWBIT_PY_VENV:-$HOME/.cache/lowbit/pyvenv}"
BUILD_CACHE="${LOWBIT_PY_BUILD_CACHE:-$HOME/.cache/lowbit/pybuild}"
PY="$VENV/bin/python"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
SPECS=("numpy==2.4.6" "pytest==8.4.2" "gguf==0.19.0" "scikit-build-core==0.11.6" "pybind11==2.13.6")

say() { echo "setup_pyvenv: $*"; }

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

venv_works() {
  [ -x "$PY" ] && "$PY" -c 'import sys' 2>/dev/null && "$PY" -m pip --version >/dev/null 2>&1
}

if venv_works; then
  say "reusing venv $VENV"
else
  if [ -e "$VENV" ]; then
    # Only ever delete something that is a venv (or an empty folder).
    if [ -f "$VENV/pyvenv.cfg" ] || [ -z "$(ls -A "$VENV" 2>/dev/null)" ]; then
      say "venv $VENV is broken (no working python or pip): recreating it"
      rm -rf "$VENV"
    else
      say "error: $VENV exists and is not a venv; set LOWBIT_PY_VENV to another path" >&2
      exit 1
    fi
  fi
  say "creating venv $VENV"
  /usr/bin/python3 -m venv "$VENV"
fi

# The pinned packages that are missing or at another version, one per line.
missing=$("$PY" - "${SPECS[@]}" <<'EOF'
import importlib.metadata as md
import sys

for spec in sys.argv[1:]:
    name, version = spec.split("==")
    try:
        ok = md.version(name) == version
    except md.PackageNotFoundError:
        ok = False
    if not ok:
        print(spec)
EOF
)
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086  # one spec per word
  say "installing: $(echo $missing)"
  # shellcheck disable=SC2086
  "$PY" -m pip install --disable-pip-version-check --no-input $missing
fi

# What the build reads, hashed: any edit (or another checkout's different sources) rebuilds.
source_hash() {
  (
    cd "$REPO"
    find python include src kernels cmake -type f \
      ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    sha256sum CMakeLists.txt
  ) | sha256sum | cut -d' ' -f1
}
PREBUILT="${LOWBIT_PY_PREBUILT:-}"
LINKED="compiled here"
if [ -n "$PREBUILT" ]; then
  if [ ! -f "$PREBUILT/lowbit-config.cmake" ] || [ ! -f "$PREBUILT/liblowbit.a" ]; then
    say "error: LOWBIT_PY_PREBUILT=$PREBUILT is not a built static lowbit tree (no lowbit-config.cmake or liblowbit.a)" >&2
    exit 1
  fi
  # The archive's bytes, not its path: a rebuilt library relinks the module.
  LINKED="prebuilt $PREBUILT $(sha256sum "$PREBUILT/liblowbit.a" | cut -d' ' -f1)"
fi
IDENTITY="$(source_hash) ${SPECS[*]} $("$PY" -c 'import sys; print(sys.version.split()[0])') $LINKED"
STAMP="$VENV/lowbit-python-build.txt"

installed_ok() {
  "$PY" -c 'import lowbit, lowbit._lowbit' 2>/dev/null
}

if [ "$(cat "$STAMP" 2>/dev/null)" = "$IDENTITY" ] && installed_ok; then
  say "lowbit $("$PY" -c 'import lowbit; print(lowbit.__version__)') is current (sources unchanged)"
  exit 0
fi

# One CMake build directory per checkout path, reused across runs (incremental); the
# least recently used beyond four are removed.
key=$(printf '%s %s' "$REPO" "$PREBUILT" | sha256sum | cut -c1-16)
BUILD_DIR="$BUILD_CACHE/$key"
mkdir -p "$BUILD_DIR"
touch "$BUILD_DIR"
# shellcheck disable=SC2012
ls -1dt "$BUILD_CACHE"/*/ 2>/dev/null | tail -n +5 | while read -r old; do rm -rf "$old"; done

say "building lowbit from $REPO/python (build directory $BUILD_DIR, library ${PREBUILT:+from }${PREBUILT:-compiled here})"
rm -f "$STAMP"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
start=$(date +%s)
settings=(--config-settings=build-dir="$BUILD_DIR")
if [ -n "$PREBUILT" ]; then
  settings+=(--config-settings=cmake.define.LOWBIT_PREBUILT_DIR="$PREBUILT")
fi
"$PY" -m pip install --disable-pip-version-check --no-input --no-build-isolation --no-deps --force-reinstall \
  "${settings[@]}" "$REPO/python"
installed_ok || { say "error: lowbit was installed but does not import" >&2; exit 1; }
echo "$IDENTITY" > "$STAMP"
say "installed lowbit $("$PY" -c 'import lowbit; print(lowbit.__version__)') in $(($(date +%s) - start)) s"
