"""lowbit.quantize / lowbit.dequantize against the gguf package's numpy dequantizers:
for every format gguf can decode, the bytes lowbit writes decode to the same floats in
gguf as in lowbit, bit for bit, on three distributions, with and without importance, at
unit scale and with block scales deep in fp16's subnormal range; plus the plain float
formats against numpy's own conversions, and the no-copy paths (strided rows, buffers,
N-D shapes)."""
import gguf
import gguf.quants
import numpy as np
import pytest

import lowbit
from conftest import importance, relative_rmse, weights


def gguf_decodable():
    out = []
    for f in lowbit.formats():
        qtype = gguf.GGMLQuantizationType(f.ggml_type)
        if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16) or \
                qtype in gguf.quants._type_traits:
            out.append((f.name, qtype))
    return out


DECODABLE = gguf_decodable()


def test_gguf_decodes_most_formats():
    names = {n for n, _ in DECODABLE}
    # gguf 0.19.0 decodes everything lowbit writes into models but Q8_1 and Q8_K.
    assert names >= {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                     "Q6_K", "IQ4_NL", "IQ4_XS"}, names


@pytest.mark.parametrize("name,qtype", DECODABLE, ids=[n for n, _ in DECODABLE])
@pytest.mark.parametrize("dist", ["heavy_tailed", "gaussian", "outliers"])
def test_gguf_decodes_lowbit_bytes_bit_for_bit(name, qtype, dist):
    rows, cols = 8, 1024
    for scale, imp in ((1.0, None), (1.0, importance(cols, 3)), (1e-6, None)):
        w = weights(rows, cols, seed=7, dist=dist, scale=scale)
        q = lowbit.quantize(w, name, importance=imp)
        info = lowbit.format_info(name)
        assert q.dtype == np.uint8 and q.shape == (rows, cols // info.block_size * info.type_size)
        ours = lowbit.dequantize(q, name, (rows, cols))
        theirs = gguf.quants.dequantize(q, qtype).astype(np.float32)
        assert theirs.shape == (rows, cols)
        assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32)), \
            f"{name} {dist} scale {scale} importance {imp is not None}: lowbit and gguf decode differently"
        if scale == 1.0:
            bound = 2.0 ** -(min(info.bits_per_weight, 8) - 2.5)
            assert relative_rmse(w, ours) < bound, name


def test_float_formats_match_numpy_conversions():
    w = weights(4, 64, seed=2) * 1000
    assert np.array_equal(lowbit.quantize(w, "F32").view(np.float32), w)
    assert np.array_equal(lowbit.quantize(w, "F16").view(np.float16), w.astype(np.float16))
    # bfloat16: round to nearest even on the upper 16 bits.
    u = w.view(np.uint32).astype(np.uint64)
    bf = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    assert np.array_equal(lowbit.quantize(w, "BF16").view(np.uint16), bf)


@pytest.mark.parametrize("name", ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"])
def test_no_worse_than_ggufs_quantizer(name):
    """Where gguf has a numpy quantizer (ggml's reference), lowbit's error is not larger."""
    w = weights(32, 1024, seed=5)
    qtype = gguf.GGMLQuantizationType[name]
    try:
        theirs = gguf.quants.quantize(w, qtype)
    except NotImplementedError:
        pytest.skip(f"gguf has no quantizer for {name}")
    err_theirs = relative_rmse(w, gguf.quants.dequantize(theirs, qtype))
    err_ours = relative_rmse(w, lowbit.dequantize(lowbit.quantize(w, name), name, w.shape))
    assert err_ours <= err_theirs * (1 + 1e-6), (name, err_ours, err_theirs)


def test_strided_rows_nd_shapes_dtypes_and_buffers():
    w = weights(6, 512, seed=9)
    expect = lowbit.quantize(w, "Q4_K")
    # Rows inside a wider array are read in place (row stride 600 floats).
    wide = np.zeros((6, 600), np.float32)
    wide[:, :512] = w
    assert np.array_equal(lowbit.quantize(wide[:, :512], "Q4_K"), expect)
    # Non-contiguous columns and float64 are converted first; same bytes.
    assert np.array_equal(lowbit.quantize(np.asfortranarray(w), "Q4_K"), expect)
    assert np.array_equal(lowbit.quantize(w.astype(np.float64), "Q4_K"), expect)
    # N-D: rows along the last axis, the result keeps the leading dimensions.
    q3 = lowbit.quantize(w.reshape(2, 3, 512), "Q4_K")
    assert q3.shape == (2, 3, 288) and np.array_equal(q3.reshape(6, 288), expect)
    back = lowbit.dequantize(q3, "Q4_K")  # shape inferred from the uint8 array
    assert back.shape == (2, 3, 512)
    assert np.array_equal(back.reshape(6, 512), lowbit.dequantize(expect, "Q4_K", (6, 512)))
    # One row.
    assert lowbit.quantize(w[0], "Q4_K").shape == (288,)
    # bytes, bytearray and memoryview decode the same.
    for data in (expect.tobytes(), bytearray(expect.tobytes()), memoryview(expect.tobytes())):
        assert np.array_equal(lowbit.dequantize(data, "Q4_K", (6, 512)), back.reshape(6, 512))
    # Importance as a Hessian's diagonal / 2 or an array give the same bytes.
    h = lowbit.Hessian(512)
    h.add(weights(64, 512, seed=1, dist="gaussian"))
    assert np.array_equal(lowbit.quantize(w, "Q4_K", importance=h), lowbit.quantize(w, "Q4_K", h.importance()))


def test_empty_and_zero():
    assert lowbit.quantize(np.zeros((0, 256), np.float32), "Q4_K").shape == (0, 144)
    z = lowbit.quantize(np.zeros((2, 256), np.float32), "Q4_K")
    assert not lowbit.dequantize(z, "Q4_K", (2, 256)).any()
