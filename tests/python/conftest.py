"""Shared fixtures of the Python package tests (tests/python, ctest label `python`).

The package under test is the one tests/python/setup_pyvenv.sh installed into the venv
from this checkout; the oracles are independent of it: the `gguf` package (its numpy
dequantizers, GGUFWriter and GGUFReader) and the numpy references in tests/reference/.
"""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))


def weights(rows, cols, seed=0, dist="heavy_tailed", scale=1.0):
    """LLM-like test weights: heavy-tailed (Student t, 4 dof), gaussian, or gaussian with
    a few large outliers, as float32."""
    rng = np.random.default_rng(seed)
    if dist == "heavy_tailed":
        w = rng.standard_t(4, size=(rows, cols)) * 0.02
    elif dist == "gaussian":
        w = rng.standard_normal((rows, cols)) * 0.02
    elif dist == "outliers":
        w = rng.standard_normal((rows, cols)) * 0.02
        idx = rng.random((rows, cols)) < 0.002
        w[idx] *= 40
    else:
        raise ValueError(dist)
    return (w * scale).astype(np.float32)


def importance(cols, seed=0):
    rng = np.random.default_rng(seed + 1000)
    v = np.exp(rng.standard_normal(cols)).astype(np.float32)
    v[rng.random(cols) < 0.05] = 0.0
    return v


def relative_rmse(ref, approx):
    ref = np.asarray(ref, np.float64)
    return float(np.sqrt(np.mean((ref - np.asarray(approx, np.float64)) ** 2) / np.mean(ref ** 2)))


def write_tiny_model(path, layers=2, embd=256, ffn=512, vocab=32, seed=0):
    """A llama-shaped GGUF written by the gguf package (an independent writer): F32
    linear weights [out x in], F32 norms, an F16 token embedding. Returns {name: array}."""
    import gguf

    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(layers)
    w.add_context_length(128)
    w.add_embedding_length(embd)
    w.add_feed_forward_length(ffn)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    tensors = {"token_embd.weight": (rng.standard_normal((vocab, embd)) * 0.02).astype(np.float16)}
    for layer in range(layers):
        p = f"blk.{layer}."
        tensors[p + "attn_norm.weight"] = np.ones(embd, np.float32)
        for k, name in enumerate(("attn_q", "attn_k", "attn_v", "attn_output")):
            tensors[p + name + ".weight"] = weights(embd, embd, seed=layer * 10 + 4 + k)
        tensors[p + "ffn_norm.weight"] = np.ones(embd, np.float32)
        tensors[p + "ffn_gate.weight"] = weights(ffn, embd, seed=layer * 10 + 1)
        tensors[p + "ffn_up.weight"] = weights(ffn, embd, seed=layer * 10 + 2)
        tensors[p + "ffn_down.weight"] = weights(embd, ffn, seed=layer * 10 + 3)
    tensors["output_norm.weight"] = np.ones(embd, np.float32)
    tensors["output.weight"] = weights(vocab, embd, seed=99)
    for name, a in tensors.items():
        w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


@pytest.fixture
def tiny_model(tmp_path):
    path = str(tmp_path / "tiny-f32.gguf")
    return path, write_tiny_model(path)
