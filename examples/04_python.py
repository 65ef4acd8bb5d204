"""Example 4: lowbit from Python, numpy in and out (`pip install ./python` first).

    python examples/04_python.py [WORK_DIR]

1. quantizes a weight matrix to GGML blocks and decodes it, with and without an
   importance vector, and with GSQ (packed codes as AutoGPTQ lays them out);
2. GPTQ: accumulates a layer's Hessian from calibration activations and quantizes the
   layer into Q4_K with it, next to plain Q4_K;
3. writes a tiny llama-shaped GGUF model with the `gguf` package (skipped when it is not
   installed);
4. quantizes that model to Q4_K_M with a progress bar and reads the result back.

Files go to WORK_DIR (default: a temporary folder).
"""
import os
import sys
import tempfile

import numpy as np

import lowbit


def layer_error(w, q, h):
    """||X (W - Q)^T||^2 / ||X W^T||^2 from H = (2/N) X^T X."""
    e = (w - q).astype(np.float64)
    w = w.astype(np.float64)
    return float(np.einsum("ri,ij,rj->", e, h, e) / np.einsum("ri,ij,rj->", w, h, w))


def main():
    work = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="lowbit_example_04_")
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(0)
    print(f"lowbit {lowbit.__version__}")

    # 1. Block formats and GSQ.
    w = (rng.standard_t(4, size=(256, 1024)) * 0.02).astype(np.float32)  # [out x in]
    x = rng.standard_normal((2048, 1024)).astype(np.float32) * np.exp(rng.standard_normal(1024)).astype(np.float32)
    imp = (x.astype(np.float64) ** 2).mean(axis=0).astype(np.float32)  # llama.cpp's imatrix: mean x^2
    for fmt in ("Q8_0", "Q4_K", "Q2_K"):
        q = lowbit.quantize(w, fmt)  # uint8 [256, row bytes]: GGML's bytes, GGUF-ready
        qi = lowbit.quantize(w, fmt, importance=imp)
        err = np.sqrt(np.mean((lowbit.dequantize(q, fmt, w.shape) - w) ** 2) / np.mean(w ** 2))
        werr = np.sqrt(np.sum(imp * (lowbit.dequantize(qi, fmt, w.shape) - w) ** 2) / np.sum(imp * w ** 2))
        print(f"1. {fmt:5s} {lowbit.format_info(fmt).bits_per_weight:6.3f} bits/weight, {q.nbytes:7d} bytes, "
              f"relative RMSE {err:.4f}, importance-weighted (with imatrix) {werr:.4f}")
    g = lowbit.gsq_quantize(w, bits=4, group_size=128, scheme="asymmetric", search="mse")
    print(f"   GSQ {g.config.describe()}: qweight {g.qweight.dtype}{list(g.qweight.shape)}, "
          f"scales {list(g.scales.shape)}, {g.bits_per_weight:.3f} bits/weight, "
          f"relative RMSE {np.sqrt(np.mean((g.dequantize() - w) ** 2) / np.mean(w ** 2)):.4f}")

    # 2. GPTQ with the layer's Hessian.
    h = lowbit.Hessian(w.shape[1])
    for batch in np.array_split(x, 4):
        h.add(batch)
    hm = h.matrix().astype(np.float64)
    gptq = lowbit.gptq(w, h, "Q4_K")
    plain = lowbit.quantize(w, "Q4_K", importance=h)
    e_gptq = layer_error(w, lowbit.dequantize(gptq, "Q4_K", w.shape), hm)
    e_plain = layer_error(w, lowbit.dequantize(plain, "Q4_K", w.shape), hm)
    print(f"2. layer output error, Q4_K: GPTQ {e_gptq:.5f} vs plain {e_plain:.5f} ({h.tokens} tokens)")
    if not e_gptq < e_plain:
        raise SystemExit("GPTQ should beat plain quantization on the layer's output")

    # 3. A tiny llama-shaped model in GGUF (written with the gguf package).
    try:
        import gguf
    except ImportError:
        print("3./4. skipped: the gguf package is not installed (pip install gguf)")
        return 0
    src = os.path.join(work, "tiny-f32.gguf")
    writer = gguf.GGUFWriter(src, "llama")
    writer.add_block_count(2)
    writer.add_embedding_length(256)
    writer.add_feed_forward_length(512)
    writer.add_head_count(4)
    for name, shape in [("token_embd.weight", (32, 256))] + [
            (f"blk.{i}.{n}.weight", s) for i in range(2)
            for n, s in (("attn_q", (256, 256)), ("attn_k", (256, 256)), ("attn_v", (256, 256)),
                         ("attn_output", (256, 256)), ("ffn_gate", (512, 256)), ("ffn_up", (512, 256)),
                         ("ffn_down", (256, 512)))] + [("output.weight", (32, 256))]:
        writer.add_tensor(name, (rng.standard_t(4, size=shape) * 0.02).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    # 4. Quantize it (progress bar on stderr) and read the result with lowbit.
    out = os.path.join(work, "tiny-Q4_K_M.gguf")
    summary = lowbit.quantize_model(src, out, "Q4_K_M")
    print(f"4. {summary['type']}: {summary['converted']} tensors converted, "
          f"{summary['bytes_in']} -> {summary['bytes_out']} bytes")
    with lowbit.GGUFFile(out) as f:
        print(f"   {os.path.basename(out)}: GGUF v{f.version}, architecture {f.metadata['general.architecture']}, "
              f"file type {f.metadata['general.file_type']}")
        for t in f.tensors[:4]:
            print(f"   {t.name:24s} {t.type:5s} {str(t.shape):12s} data {t.data.dtype}{list(t.data.shape)} "
                  f"mean |w| {np.abs(t.to_float()).mean():.5f}")
    os.remove(src)
    os.remove(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
