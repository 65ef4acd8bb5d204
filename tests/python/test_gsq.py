"""lowbit.gsq_quantize against the independent numpy reference tests/reference/gsq_ref.py
(codes, scales, zero points and minimums equal exactly), the packed layout against a
numpy unpacking of AutoGPTQ's LSB-first bit stream, decode and GEMV against numpy."""
import gsq_ref
import numpy as np
import pytest

import lowbit
from conftest import importance, weights

SCHEMES = {"sym": "symmetric", "asym": "asymmetric", "asym-fmin": "asymmetric_float"}


def unpack(qweight, bits, cols):
    """Codes from 32-bit words holding a continuous LSB-first bit stream, per row."""
    rows = qweight.shape[0]
    bitsarr = np.unpackbits(qweight.astype("<u4").view(np.uint8).reshape(rows, -1), axis=1, bitorder="little")
    bitsarr = bitsarr[:, :cols * bits].reshape(rows, cols, bits).astype(np.int64)
    return (bitsarr << np.arange(bits)).sum(axis=2)


@pytest.mark.parametrize("search", ["rtn", "mse", "importance"])
@pytest.mark.parametrize("scheme", ["sym", "asym", "asym-fmin"])
@pytest.mark.parametrize("bits,group", [(4, 128), (3, 32), (2, 0), (8, 64)])
def test_matches_numpy_reference(search, scheme, bits, group):
    rows, cols = 6, 256
    w = weights(rows, cols, seed=bits * 10 + group)
    imp = importance(cols, seed=bits)
    imp[64:96] = 0.0  # a zero-importance group: the documented fallback
    r = lowbit.gsq_quantize(w, bits=bits, group_size=group, scheme=SCHEMES[scheme], search=search,
                            importance=imp if search == "importance" else None)
    codes, scales, zeros, mins = gsq_ref.quantize(w, bits, group, scheme, search, imp)
    assert np.array_equal(r.codes(), codes)
    assert np.array_equal(unpack(r.qweight, bits, cols), codes)  # the packing, independently
    assert np.array_equal(r.scales, scales)
    assert np.array_equal(r.zeros, zeros)
    if scheme == "asym-fmin":
        assert np.array_equal(r.mins, mins)
    else:
        assert r.mins is None
    g = cols if group == 0 else group
    assert r.qweight.shape == (rows, (cols * bits + 31) // 32) and r.scales.shape == (rows, cols // g)
    assert r.g_idx is None and r.scale_codes is None


def test_decode_gemv_views_and_config():
    rows, cols = 16, 512
    w = weights(rows, cols, seed=4)
    cfg = lowbit.GsqConfig(bits=4, group_size=64, scheme="asymmetric", search="mse")
    r = lowbit.gsq_quantize(w, config=cfg)
    assert r.config.describe() == cfg.describe() and r.rows == rows and r.cols == cols and r.group_size == 64
    s = np.repeat(r.scales, 64, axis=1)
    z = np.repeat(r.zeros, 64, axis=1)
    deq = s * (r.codes().astype(np.float32) - z.astype(np.float32))
    assert np.allclose(r.dequantize(), deq, rtol=0, atol=1e-7)
    x = np.random.default_rng(3).standard_normal(cols).astype(np.float32)
    y64 = r.dequantize().astype(np.float64) @ x.astype(np.float64)
    mag = np.abs(r.dequantize().astype(np.float64)) @ np.abs(x.astype(np.float64))
    assert np.all(np.abs(r.gemv(x) - y64) <= 1e-5 * mag)
    # The arrays are read-only views that keep the result alive.
    q = r.qweight
    assert not q.flags.writeable and not q.flags.owndata
    with pytest.raises(ValueError):
        q[0, 0] = 1
    del r
    assert q.sum() >= 0  # still valid
    # 4 bits + fp16 scale + 4-bit zero per 64 weights.
    assert lowbit.gsq_quantize(w, bits=4, group_size=64).bits_per_weight == pytest.approx(4 + 20 / 64)


def test_double_quant_and_hqq():
    w = weights(8, 256, seed=6)
    r = lowbit.gsq_quantize(w, bits=4, group_size=32, double_quant=True, search="hqq")
    assert r.scale_codes.shape == (8, 8) and r.scale_blocks.shape == (1,)
    assert np.array_equal(r.scales, (r.scale_codes.astype(np.float32) * r.scale_blocks[0]).astype(np.float32))


def test_bad_arguments():
    w = weights(2, 256)
    with pytest.raises(lowbit.Error, match="bits"):
        lowbit.gsq_quantize(w, bits=7)
    with pytest.raises(lowbit.Error, match="unknown GSQ scheme 'skew'"):
        lowbit.GsqConfig(scheme="skew")
    with pytest.raises(lowbit.Error, match="group size 64 does not divide the row length 288"):
        lowbit.gsq_quantize(weights(2, 288), group_size=64)
    with pytest.raises(lowbit.Error, match="importance"):
        lowbit.gsq_quantize(w, search="importance")
    with pytest.raises(lowbit.Error, match="2-D"):
        lowbit.gsq_quantize(w.reshape(2, 2, 128))
    with pytest.raises(lowbit.Error, match="either config= or settings"):
        lowbit.gsq_quantize(w, config=lowbit.GsqConfig(), mse_grid=5)
    with pytest.raises(lowbit.Error, match="x must have 256 entries"):
        lowbit.gsq_quantize(w).gemv(np.ones(3, np.float32))
