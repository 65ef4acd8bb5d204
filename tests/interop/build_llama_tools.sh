#!/usr/bin/env bash
# Builds llama.cpp once, from the llama.cpp tree that the pinned llama-cpp-python
# sdist vendors: its shared libraries (libllama, libggml*, libllama-common) and its
# command-line tools (llama-quantize, llama-imatrix, llama-perplexity, llama-bench),
# into
#   ${LOWBIT_LLAMA_TOOLS:-$HOME/.cache/lowbit/llama-tools}/<version>-<stamp>/{bin,lib}/
# and reuses that build afterwards. The interop tests use the tools as oracles
# (test_llama_tools.py) and scripts/study.py as the peer in the quality study; the
# venv's llama-cpp-python loads the libraries (setup_venv.sh installs its Python code
# only and copies them in), so ggml is compiled once per machine, not twice.
#
#   bash tests/interop/build_llama_tools.sh          # build if needed; last line: the folder
#   bash tests/interop/build_llama_tools.sh --find   # print the folder of a usable build, or exit 1
#   ... --own                                        # only a build with this host's own options
#
# The tools are byte oracles, so any build this CPU can run serves them; the venv's
# libraries are also the ggml peer whose speed `lowbit bench` reports, so setup_venv.sh
# asks for --own (a build made on a CPU with fewer extensions would understate it).
#
# Same llama.cpp as the venv's llama-cpp-python (the version is pinned in both), so
# the tools and the Python bindings agree. CPU only, and never -march=native: the ISA
# options come from /proc/cpuinfo as for the venv (ggml_isa.sh, AMX never). Binaries
# and libraries find each other through their RUNPATH ($ORIGIN/../lib, $ORIGIN), so
# the folder (and libraries copied elsewhere together) can move. <stamp> is a hash of
# those options and the layout; the build records the CPU flags it needs, and any
# finished build whose flags this CPU has is reused, so one cache serves every CPU
# kind that has the builder's extensions (a CPU without them builds its own).
# Cold cost: the sdist (~77 MB, pip's cache keeps it) and 5-10 minutes of compiling
# on two cores (317 s alone on a Zen 4, about 10 minutes beside the unit tests); then
# one `ls`. Exit status 77 (ctest: skipped) when it
# truly cannot build (no sdist reachable, no C++ compiler); any other failure is 1.
#
# LOWBIT_LLAMA_SDIST=path/to/llama_cpp_python-<version>.tar.gz skips the download.
set -euo pipefail

VERSION=0.3.36
ROOT="${LOWBIT_LLAMA_TOOLS:-$HOME/.cache/lowbit/llama-tools}"
VENV="${LOWBIT_VENV:-$HOME/.cache/lowbit/venv}"
TOOLS=(llama-quantize llama-imatrix llama-perplexity llama-bench)
# What the venv's llama-cpp-python and lowbit's ggml tests load (libggml loads the rest).
LIBS=(libllama.so libggml.so libggml-base.so libggml-cpu.so)
# Part of the stamp: a build with another layout (the static tools of earlier
# versions of this script, no libraries) is never mistaken for this one.
LAYOUT=shared-v1
HERE="$(cd "$(dirname "$0")" && pwd)"

say() { echo "build_llama_tools: $*" >&2; }
skip() { say "SKIPPED: $*"; exit 77; }

# shellcheck source=ggml_isa.sh
source "$HERE/ggml_isa.sh"
GGML_ARGS=$(ggml_cmake_args)
HOST_FLAGS=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | tr -s ' \t' '  ') "

# The /proc/cpuinfo flags a build with GGML_ARGS needs (the ON options' flags).
needed_flags() {
  local f out=""
  for f in $GGML_ARGS; do
    case "$f" in
      -DGGML_AVX=ON) out+=" avx" ;; -DGGML_AVX2=ON) out+=" avx2" ;; -DGGML_FMA=ON) out+=" fma" ;;
      -DGGML_F16C=ON) out+=" f16c" ;; -DGGML_BMI2=ON) out+=" bmi2" ;; -DGGML_AVX_VNNI=ON) out+=" avx_vnni" ;;
      -DGGML_AVX512=ON) out+=" avx512f avx512cd avx512vl avx512dq avx512bw" ;;
      -DGGML_AVX512_VBMI=ON) out+=" avx512vbmi" ;; -DGGML_AVX512_VNNI=ON) out+=" avx512_vnni" ;;
      -DGGML_AVX512_BF16=ON) out+=" avx512_bf16" ;;
    esac
  done
  echo "${out# }"
}

# A finished build this CPU can run: every tool there, and every flag it needs present.
usable() {
  local dir=$1 t f
  [ -f "$dir/features" ] && [ "$(cat "$dir/arch" 2>/dev/null)" = "$(uname -m)" ] || return 1
  for t in "${TOOLS[@]}"; do [ -x "$dir/bin/$t" ] || return 1; done
  for t in "${LIBS[@]}"; do [ -e "$dir/lib/$t" ] || return 1; done
  for f in $(cat "$dir/features"); do [[ $HOST_FLAGS == *" $f "* ]] || return 1; done
}

find_build() {
  local stamp dir
  stamp=$(echo "$VERSION $LAYOUT $(uname -m) $GGML_ARGS" | sha256sum | cut -c1-12)
  # This host's own build first, then (unless --own) any other one it can run.
  local candidates=("$ROOT/$VERSION-$stamp")
  [ "$OWN" = 1 ] || candidates+=("$ROOT/$VERSION"-*)
  for dir in "${candidates[@]}"; do
    if [ -d "$dir" ] && usable "$dir"; then echo "$dir"; return 0; fi
  done
  return 1
}

FIND=0
OWN=0
for arg in "$@"; do
  case "$arg" in
    --find) FIND=1 ;;
    --own) OWN=1 ;;
    *) say "unknown option $arg (--find, --own)"; exit 1 ;;
  esac
done

if [ "$FIND" = 1 ]; then
  find_build || exit 1
  exit 0
fi

mkdir -p "$ROOT"
# Two build trees testing at once: one builds, the other waits and reuses.
exec 9>"$ROOT/.lock"
flock 9

if dir=$(find_build); then
  say "reusing $dir"
  echo "$dir"
  exit 0
fi

command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || skip "no C++ compiler"
command -v cmake >/dev/null 2>&1 || skip "no cmake"

STAMP=$(echo "$VERSION $LAYOUT $(uname -m) $GGML_ARGS" | sha256sum | cut -c1-12)
DEST="$ROOT/$VERSION-$STAMP"
WORK="$ROOT/.work-$STAMP-$$"
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)

SDIST="${LOWBIT_LLAMA_SDIST:-}"
if [ -z "$SDIST" ]; then
  [ -x "$VENV/bin/python" ] || skip "no venv at $VENV to download the sdist with (run tests/interop/setup_venv.sh)"
  say "downloading the llama-cpp-python==$VERSION sdist"
  # Only llama-cpp-python from source: its build requirements come as wheels.
  if ! "$VENV/bin/python" -m pip download --disable-pip-version-check --no-input --no-deps \
      --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -d "$WORK/dl" >"$WORK/pip.log" 2>&1; then
    tail -5 "$WORK/pip.log" >&2
    skip "cannot download the llama-cpp-python==$VERSION sdist (set LOWBIT_LLAMA_SDIST to a local copy)"
  fi
  SDIST=$(ls "$WORK"/dl/llama_cpp_python-"$VERSION".tar.gz)
fi
[ -f "$SDIST" ] || skip "no sdist at $SDIST"
say "unpacking $SDIST"
tar -xzf "$SDIST" -C "$WORK" "llama_cpp_python-$VERSION/vendor/llama.cpp"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"

say "configuring with $GGML_ARGS"
# Shared, as llama-cpp-python builds it, with a RUNPATH that holds after the copy.
# shellcheck disable=SC2086
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON "-DCMAKE_INSTALL_RPATH=\$ORIGIN/../lib;\$ORIGIN" \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DGGML_CCACHE=OFF \
  $GGML_ARGS >"$WORK/configure.log" 2>&1 || { tail -30 "$WORK/configure.log" >&2; exit 1; }
say "building ${TOOLS[*]} and the libraries (-j${LOWBIT_LLAMA_TOOLS_JOBS:-2}; 5-10 minutes on two cores)"
nice cmake --build "$WORK/build" -j"${LOWBIT_LLAMA_TOOLS_JOBS:-2}" --target "${TOOLS[@]}" llama ggml ggml-base ggml-cpu \
  >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log" >&2; exit 1; }

mkdir -p "$WORK/out/bin" "$WORK/out/lib"
for t in "${TOOLS[@]}"; do cp "$WORK/build/bin/$t" "$WORK/out/bin/"; done
# Every shared library with its soname links (llama.cpp puts them next to the tools).
cp -a "$WORK"/build/bin/lib*.so* "$WORK/out/lib/"
for t in "${LIBS[@]}"; do [ -e "$WORK/out/lib/$t" ] || { say "error: the build made no $t"; exit 1; }; done
# A build that cannot run here (an ISA the OS does not grant) fails now, with its cause.
"$WORK/out/bin/llama-quantize" --help >"$WORK/smoke.log" 2>&1 || true
grep -q "Q4_K_M" "$WORK/smoke.log" || { cat "$WORK/smoke.log" >&2; say "error: llama-quantize does not run"; exit 1; }
echo "$GGML_ARGS" >"$WORK/out/cmake-args"
uname -m >"$WORK/out/arch"
needed_flags >"$WORK/out/features"
rm -rf "$DEST"
mv "$WORK/out" "$DEST"
say "built in $(( $(date +%s) - start )) s: $DEST"
echo "$DEST"
