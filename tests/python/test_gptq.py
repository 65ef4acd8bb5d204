"""lowbit.Hessian and lowbit.gptq against the independent numpy reference
tests/reference/gptq_ref.py, with the criteria of tests/interop/test_gptq_reference.py:
codes equal except at most 0.1% that differ by one step (float32 summation order),
g_idx identical, layer output error equal to 1e-4 relative. GPTQ into a GGML format is
decoded by the gguf package and must beat plain quantization on the layer's output."""
import gguf
import gguf.quants
import gptq_ref
import numpy as np
import pytest

import lowbit
from conftest import weights

ROWS, COLS, TOKENS = 96, 256, 1024
SCHEMES = {"sym": "symmetric", "asym": "asymmetric", "asym-fmin": "asymmetric_float"}


def activations(rng, tokens, cols):
    """Correlated, LLM-like inputs: a low-rank shared part and a few loud channels."""
    z = rng.standard_normal((tokens, 16))
    mix = 0.5 * rng.standard_normal((16, cols))
    scale = np.exp(0.5 * rng.standard_normal(cols))
    big = rng.random(cols) < 1 / 32
    scale[big] *= 10 ** (1 + rng.random(big.sum()))
    return ((z @ mix + rng.standard_normal((tokens, cols))) * scale).astype(np.float32)


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(1234)
    w = weights(ROWS, COLS, seed=5)
    x = activations(rng, TOKENS, COLS)
    x[:, 7] = 0.0  # a dead input channel
    h = lowbit.Hessian(COLS)
    h.add(x[:600])
    h.add(x[600:])  # two batches: a running average
    return w, x, h


def output_error(w, q, h):
    e = (w - q).astype(np.float64)
    w = w.astype(np.float64)
    return float(np.einsum("ri,ij,rj->", e, h, e) / np.einsum("ri,ij,rj->", w, h, w))


def test_hessian_matches_numpy(layer):
    _, x, h = layer
    assert (h.cols, h.tokens, h.batches) == (COLS, TOKENS, 2)
    ref = 2.0 / TOKENS * (x.astype(np.float64).T @ x.astype(np.float64))
    m = h.matrix()
    assert m.shape == (COLS, COLS) and m.dtype == np.float32
    assert np.allclose(m, ref, rtol=2e-5, atol=1e-6 * np.abs(ref).max())
    assert np.allclose(h.importance(), np.diag(ref) / 2, rtol=2e-5, atol=1e-7)
    # fp16 activations equal float32 activations of the same (rounded) values; bf16 too.
    x16 = x[:64].astype(np.float16)
    a, b = lowbit.Hessian(COLS), lowbit.Hessian(COLS)
    a.add(x16)
    b.add(x16.astype(np.float32))
    assert np.array_equal(a.matrix(), b.matrix())
    bf = (x[:64].view(np.uint32) >> 16).astype(np.uint16)  # truncated: exact bf16 values
    c, d = lowbit.Hessian(COLS), lowbit.Hessian(COLS)
    c.add(bf, dtype="bf16")
    d.add((bf.astype(np.uint32) << 16).view(np.float32))
    assert np.array_equal(c.matrix(), d.matrix())
    a.merge(b)
    assert a.tokens == 128


def test_hessian_save_load(layer, tmp_path):
    _, _, h = layer
    path = str(tmp_path / "layer.hess")
    h.save(path)
    back = lowbit.Hessian.load(path)
    assert back.tokens == h.tokens and np.array_equal(back.matrix(), h.matrix())


CASES = [  # bits, group, scheme, search, act_order, static_groups
    (4, 128, "asym", "rtn", False, False),
    (4, 64, "asym", "rtn", True, False),
    (4, 64, "sym", "mse", True, True),
    (3, 32, "sym", "rtn", True, False),
    (2, 0, "asym-fmin", "rtn", False, False),
    (4, 128, "asym", "importance", False, False),
]


@pytest.mark.parametrize("bits,group,scheme,search,act,static", CASES,
                         ids=[f"{c[0]}b-g{c[1]}-{c[2]}-{c[3]}-act{int(c[4])}-static{int(c[5])}" for c in CASES])
def test_gsq_target_matches_numpy_reference(layer, bits, group, scheme, search, act, static):
    w, _, h = layer
    hm = h.matrix()
    cfg = lowbit.GsqConfig(bits=bits, group_size=group, scheme=SCHEMES[scheme], search=search)
    r, report = lowbit.gptq(w, h, cfg, act_order=act, static_groups=static, return_report=True)
    ref_codes, ref_scales, ref_zeros, ref_mins, ref_gidx = gptq_ref.gptq(
        w, hm, bits, group, scheme, search, act, static, importance=np.diag(hm) / 2)
    codes = r.codes().astype(np.int64)
    diff = np.abs(codes - ref_codes)
    assert (diff != 0).mean() <= 1e-3 and diff.max() <= 1
    g_idx = r.g_idx if r.g_idx is not None else np.arange(COLS) // r.group_size
    assert np.array_equal(g_idx, ref_gidx)
    assert report["dead_columns"] == 1
    if act:
        assert sorted(report["perm"]) == list(range(COLS)) and report["perm"] != list(range(COLS))

    def decode(codes, scales, zeros, mins):
        s, z, m = scales[:, g_idx], zeros[:, g_idx], mins[:, g_idx]
        if scheme == "asym-fmin":
            return s * codes.astype(np.float32) + m
        return s * (codes - z).astype(np.float32)

    ours = r.dequantize()
    mins = r.mins if r.mins is not None else np.zeros_like(r.scales)
    assert np.array_equal(ours, decode(codes, r.scales, r.zeros.astype(np.int64), mins))
    h64 = hm.astype(np.float64)
    e_ours = output_error(w, ours, h64)
    e_ref = output_error(w, decode(ref_codes, ref_scales, ref_zeros, ref_mins), h64)
    assert abs(e_ours - e_ref) / e_ref <= 1e-4, (e_ours, e_ref)
    # A float Hessian array gives the same result as the Hessian object.
    r2 = lowbit.gptq(w, hm, cfg, act_order=act, static_groups=static)
    assert np.array_equal(r2.qweight, r.qweight) and np.array_equal(r2.scales, r.scales)


@pytest.mark.parametrize("name", ["Q4_K", "Q4_0", "Q6_K", "IQ4_NL"])
def test_ggml_target_decodes_in_gguf_and_beats_plain_quantization(layer, name):
    w, _, h = layer
    hm = h.matrix().astype(np.float64)
    q = lowbit.gptq(w, h, name)
    plain = lowbit.quantize(w, name, importance=h.importance())
    assert q.shape == plain.shape and q.dtype == np.uint8
    qtype = gguf.GGMLQuantizationType[name]
    ours = gguf.quants.dequantize(q, qtype)
    assert np.array_equal(ours, lowbit.dequantize(q, name, w.shape))
    e_gptq = output_error(w, ours, hm)
    e_plain = output_error(w, gguf.quants.dequantize(plain, qtype), hm)
    assert e_gptq < e_plain, (name, e_gptq, e_plain)


def test_bad_arguments(layer):
    w, _, h = layer
    with pytest.raises(lowbit.Error, match="static"):
        lowbit.gptq(w, h, "Q4_K", act_order=True)  # GGML blocks need static groups with act-order
    with pytest.raises(lowbit.Error, match="the Hessian has 256 columns, the weight 128"):
        lowbit.gptq(w[:, :128], h, "Q8_0")
    with pytest.raises(lowbit.Error, match=r"\[256 x 256\] float array"):
        lowbit.gptq(w, np.eye(10, dtype=np.float32), "Q8_0")
    with pytest.raises(lowbit.Error, match="double quantization"):
        lowbit.gptq(w, h, lowbit.GsqConfig(double_quant=True))
    with pytest.raises(lowbit.Error, match="activations have 100 columns, the Hessian 256"):
        h.add(np.ones((3, 100), np.float32))
    bad = np.ones((3, COLS), np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(lowbit.Error, match=r"activation \[1, 2\]"):
        lowbit.Hessian(COLS).add(bad)
    with pytest.raises(lowbit.Error, match="dtype must be 'bf16' or 'f16'"):
        h.add(np.ones((3, COLS), np.uint16), dtype="int4")
