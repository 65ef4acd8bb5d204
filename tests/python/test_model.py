"""lowbit.quantize_model on a tiny llama-shaped model written by the gguf package, read
back with gguf's GGUFReader and numpy dequantizers: tensor types, values, the imatrix
path, progress (callback and bar), cancellation and bad arguments."""
import os
import struct

import gguf
import gguf.quants
import numpy as np
import pytest

import lowbit
from conftest import relative_rmse


def read(path):
    r = gguf.GGUFReader(path)
    return {t.name: t for t in r.tensors}, r


def test_q8_0_every_linear_weight_and_summary(tiny_model, tmp_path):
    src, arrays = tiny_model
    out = str(tmp_path / "q8.gguf")
    s = lowbit.quantize_model(src, out, "Q8_0", progress=False)
    tensors, reader = read(out)
    assert reader.fields["general.file_type"].parts[-1][0] == 7  # LLAMA_FTYPE_MOSTLY_Q8_0
    for name, a in arrays.items():
        t = tensors[name]
        if a.ndim == 1:
            assert t.tensor_type == gguf.GGMLQuantizationType.F32
            continue
        assert t.tensor_type == gguf.GGMLQuantizationType.Q8_0, name
        back = gguf.quants.dequantize(t.data, t.tensor_type).reshape(a.shape)
        # The bytes are lowbit.quantize's.
        assert np.array_equal(np.asarray(t.data).reshape(-1), lowbit.quantize(a.astype(np.float32), "Q8_0").reshape(-1))
        assert relative_rmse(a, back) < 0.01, name
    assert s["type"] == "Q8_0" and s["converted"] == sum(a.ndim == 2 for a in arrays.values())
    assert len(s["tensors"]) == len(arrays) and s["bytes_out"] < s["bytes_in"]
    assert s["tensors"][0][:3] == ("token_embd.weight", "F16", "Q8_0")


def test_q4_k_m_mixture(tiny_model, tmp_path):
    src, arrays = tiny_model
    out = str(tmp_path / "q4km.gguf")
    lowbit.quantize_model(src, out, "Q4_K_M", progress=False)
    types = {n: t.tensor_type.name for n, t in read(out)[0].items()}
    # llama-quantize's Q4_K_M (llama.cpp src/llama-quant.cpp): output.weight in Q6_K;
    # attn_v and ffn_down in Q6_K where use_more_bits(layer, n_layer) holds, else Q4_K; the
    # other matrices Q4_K; norms untouched.
    def use_more_bits(i, n):
        return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2

    assert types["output.weight"] == "Q6_K"
    for layer in range(2):
        more = "Q6_K" if use_more_bits(layer, 2) else "Q4_K"
        assert types[f"blk.{layer}.attn_v.weight"] == more and types[f"blk.{layer}.ffn_down.weight"] == more
        assert types[f"blk.{layer}.attn_q.weight"] == "Q4_K" and types[f"blk.{layer}.ffn_up.weight"] == "Q4_K"
        assert types[f"blk.{layer}.attn_norm.weight"] == "F32"
    assert {types["blk.0.attn_v.weight"], types["blk.1.attn_v.weight"]} == {"Q4_K", "Q6_K"}
    # Decoded by gguf, close to the originals.
    tensors, _ = read(out)
    for name in ("blk.1.attn_q.weight", "blk.1.ffn_down.weight"):
        t = tensors[name]
        back = gguf.quants.dequantize(t.data, t.tensor_type).reshape(arrays[name].shape)
        assert relative_rmse(arrays[name], back) < 0.1


def write_legacy_imatrix(path, entries, ncall=10):
    """llama.cpp's legacy .dat format: i32 count, then per entry name, ncall, nval and
    nval floats holding mean(x^2) * ncall."""
    with open(path, "wb") as f:
        f.write(struct.pack("<i", len(entries)))
        for name, v in entries.items():
            b = name.encode()
            f.write(struct.pack("<i", len(b)) + b + struct.pack("<ii", ncall, len(v)))
            f.write((np.asarray(v, np.float32) * ncall).astype("<f4").tobytes())


def test_imatrix_weights_the_quantizer(tiny_model, tmp_path):
    src, arrays = tiny_model
    rng = np.random.default_rng(5)
    imp = {n: np.exp(rng.standard_normal(a.shape[1])).astype(np.float32)
           for n, a in arrays.items() if n.startswith("blk.") and a.ndim == 2}
    path = str(tmp_path / "imatrix.dat")
    write_legacy_imatrix(path, imp)
    out = str(tmp_path / "q4_0.gguf")
    lowbit.quantize_model(src, out, "Q4_0", imatrix=path, progress=False)
    tensors, _ = read(out)
    name = "blk.1.attn_k.weight"
    expect = lowbit.quantize(arrays[name], "Q4_0", importance=imp[name])
    assert np.array_equal(np.asarray(tensors[name].data).reshape(-1), expect.reshape(-1))
    assert not np.array_equal(expect, lowbit.quantize(arrays[name], "Q4_0"))


def test_progress_callback_and_bar(tiny_model, tmp_path, capsys):
    src, _ = tiny_model
    seen = []
    lowbit.quantize_model(src, str(tmp_path / "a.gguf"), "Q8_0", progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] and all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    capsys.readouterr()
    lowbit.quantize_model(src, str(tmp_path / "b.gguf"), "Q8_0")  # progress=True: a bar on stderr
    err = capsys.readouterr().err
    assert "quantizing 100%|" in err and "weights/s]" in err and err.endswith("\n")


class Stop(Exception):
    pass


def test_an_exception_in_the_callback_cancels_and_leaves_no_file(tiny_model, tmp_path):
    src, _ = tiny_model
    out = tmp_path / "cancelled.gguf"
    calls = []

    def stop(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise Stop("enough")

    with pytest.raises(Stop, match="enough"):
        lowbit.quantize_model(src, str(out), "Q4_K_M", progress=stop)
    assert len(calls) == 2
    assert not out.exists() and os.listdir(tmp_path) == ["tiny-f32.gguf"]

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lowbit.quantize_model(src, str(out), "Q8_0", progress=interrupt)
    assert not out.exists()


def test_gptq_with_a_hessian_folder(tiny_model, tmp_path):
    src, arrays = tiny_model
    hdir = tmp_path / "hessians"
    hdir.mkdir()
    h = lowbit.Hessian(256)
    h.add(np.random.default_rng(2).standard_normal((512, 256)).astype(np.float32))
    h.save(str(hdir / "blk.0.attn_q.weight.hess"))
    out = str(tmp_path / "gptq.gguf")
    lowbit.quantize_model(src, out, "Q8_0", method="gptq", hessians=hdir, progress=False)
    t = read(out)[0]["blk.0.attn_q.weight"]
    expect = lowbit.gptq(arrays["blk.0.attn_q.weight"], h, "Q8_0")
    assert np.array_equal(np.asarray(t.data).reshape(-1), expect.reshape(-1))


def test_bad_arguments(tiny_model, tmp_path):
    src, _ = tiny_model
    out = str(tmp_path / "x.gguf")
    with pytest.raises(lowbit.Error, match="unknown type 'Q4_Z'.*Q4_K_M"):
        lowbit.quantize_model(src, out, "Q4_Z", progress=False)
    with pytest.raises(lowbit.Error, match="unknown method 'best'"):
        lowbit.quantize_model(src, out, "Q8_0", method="best", progress=False)
    with pytest.raises(lowbit.Error, match="needs hessians="):
        lowbit.quantize_model(src, out, "Q8_0", method="gptq", progress=False)
    with pytest.raises(lowbit.Error, match="does not exist"):
        lowbit.quantize_model(src, str(tmp_path / "no" / "x.gguf"), "Q8_0", progress=False)
    with pytest.raises(lowbit.Error, match="missing.gguf"):
        lowbit.quantize_model(str(tmp_path / "missing.gguf"), out, "Q8_0", progress=False)
    with pytest.raises(lowbit.Error, match="none.dat"):
        lowbit.quantize_model(src, out, "Q8_0", imatrix=str(tmp_path / "none.dat"), progress=False)
    with pytest.raises(lowbit.Error, match="progress must be"):
        lowbit.quantize_model(src, out, "Q8_0", progress="yes")
    with pytest.raises(lowbit.Error, match="negative"):
        lowbit.quantize_model(src, out, "Q8_0", threads=-2, progress=False)
    assert not os.path.exists(out)
