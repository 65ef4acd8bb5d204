"""lowbit.formats() and format lookups against gguf's own tables (GGML_QUANT_SIZES,
GGMLQuantizationType), and the package's version against its metadata."""
import importlib.metadata

import gguf
import numpy as np
import pytest

import lowbit


def test_every_format_matches_gguf_tables():
    fmts = lowbit.formats()
    assert len(fmts) == 17
    for f in fmts:
        qtype = gguf.GGMLQuantizationType(f.ggml_type)
        assert qtype.name == f.name
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        if f.name == "Q8_1":
            # gguf's table still has Q8_1's d and s as float32 (40 bytes); ggml's
            # block_q8_1 stores them as fp16 (ggml-common.h): 2 + 2 + 32 bytes.
            assert (block, size) == (32, 40)
            size = 36
        assert (f.block_size, f.type_size) == (block, size), f.name
        assert f.bits_per_weight == pytest.approx(8 * size / block)
        assert f.quantized == (block > 1)
        assert f.activation_only == (f.name in ("Q8_1", "Q8_K"))


def test_lookup_by_name_id_info_and_gguf_enum():
    q4k = lowbit.format_info("q4_k")
    assert q4k.name == "Q4_K" and q4k.ggml_type == 12
    assert lowbit.format_info(12) == q4k
    assert lowbit.format_info(q4k) == q4k
    assert lowbit.format_info(gguf.GGMLQuantizationType.Q4_K) == q4k
    assert lowbit.quantized_size("Q4_K", (3, 512)) == 3 * 2 * 144
    assert lowbit.quantized_size("F16", (7,)) == 14


@pytest.mark.parametrize("bad", ["Q4_Z", "", 4, 99, -1, 3.5, None])
def test_unknown_formats_raise(bad):
    with pytest.raises(lowbit.Error) as e:
        lowbit.format_info(bad)
    assert isinstance(e.value, ValueError) and isinstance(e.value, RuntimeError)


def test_version_matches_package_metadata():
    assert lowbit.__version__ == importlib.metadata.version("lowbit")
    assert lowbit.__version__.count(".") == 2


def test_threads_and_log_level():
    lowbit.set_num_threads(1)
    assert lowbit.num_threads() == 1
    lowbit.set_num_threads(0)
    assert lowbit.num_threads() >= 1
    lowbit.set_log_level("off")
    with pytest.raises(lowbit.Error, match="unknown log level 'loud'"):
        lowbit.set_log_level("loud")
    # Results do not depend on the thread count.
    w = np.random.default_rng(1).standard_normal((64, 256)).astype(np.float32)
    lowbit.set_num_threads(1)
    one = lowbit.quantize(w, "Q4_K")
    lowbit.set_num_threads(0)
    assert np.array_equal(one, lowbit.quantize(w, "Q4_K"))
