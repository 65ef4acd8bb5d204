"""lowbit.GGUFFile against files written by the gguf package's GGUFWriter and read by
its GGUFReader: metadata of every type, tensor facts, bytes as views of the mapping,
decoding, and the file's lifetime."""
import gguf
import gguf.quants
import numpy as np
import pytest

import lowbit
from conftest import weights


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("gguf") / "t.gguf")
    w = gguf.GGUFWriter(path, "llama")
    kv = gguf.GGUFValueType
    w.add_key_value("t.u8", 200, kv.UINT8)
    w.add_key_value("t.i8", -100, kv.INT8)
    w.add_key_value("t.u16", 60000, kv.UINT16)
    w.add_key_value("t.i16", -30000, kv.INT16)
    w.add_key_value("t.u32", 4_000_000_000, kv.UINT32)
    w.add_key_value("t.i32", -2_000_000_000, kv.INT32)
    w.add_key_value("t.u64", 2**64 - 1, kv.UINT64)
    w.add_key_value("t.i64", -(2**62), kv.INT64)
    w.add_key_value("t.f32", 0.25, kv.FLOAT32)
    w.add_key_value("t.f64", 0.1, kv.FLOAT64)
    w.add_key_value("t.bool", True, kv.BOOL)
    w.add_key_value("t.str", "héllo", kv.STRING)
    w.add_key_value("t.ints", [1, -2, 3], kv.ARRAY, sub_type=kv.INT32)
    w.add_key_value("t.strs", ["a", "", "ccc"], kv.ARRAY, sub_type=kv.STRING)
    f32 = weights(3, 64, seed=1)
    f16 = weights(2, 32, seed=2).astype(np.float16)
    q = lowbit.quantize(weights(4, 256, seed=3), "Q4_K")
    t3 = weights(6, 32, seed=4).reshape(2, 3, 32)
    w.add_tensor("a.f32", f32)
    w.add_tensor("b.f16", f16)
    w.add_tensor("c.q4k", q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q4_K)
    w.add_tensor("d.3d", t3)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path, {"a.f32": f32, "b.f16": f16, "c.q4k": q, "d.3d": t3}


def test_metadata_every_type(written):
    path, _ = written
    with lowbit.GGUFFile(path) as f:
        md = f.metadata
        types = f.metadata_types
        assert f.version == 3 and f.alignment == 32
    assert md["general.architecture"] == "llama"
    expect = {"t.u8": 200, "t.i8": -100, "t.u16": 60000, "t.i16": -30000, "t.u32": 4_000_000_000,
              "t.i32": -2_000_000_000, "t.u64": 2**64 - 1, "t.i64": -(2**62), "t.f32": 0.25, "t.f64": 0.1,
              "t.bool": True, "t.str": "héllo", "t.ints": [1, -2, 3], "t.strs": ["a", "", "ccc"]}
    for k, v in expect.items():
        assert md[k] == v and type(md[k]) is type(v), k
    assert [k for k in md if k.startswith("t.")] == list(expect)  # file order
    assert types["t.u8"] == "uint8" and types["t.strs"] == "array[string]" and types["t.f64"] == "float64"
    # The same keys and values as gguf's own reader.
    reader = gguf.GGUFReader(path)
    for field in reader.fields.values():
        if field.name.startswith("GGUF."):
            continue
        assert field.name in md
        if field.types[0] == gguf.GGUFValueType.STRING:
            assert md[field.name] == str(bytes(field.parts[field.data[0]]), "utf-8")


def test_tensors_views_and_decoding(written):
    path, arrays = written
    reader = gguf.GGUFReader(path)
    theirs = {t.name: t for t in reader.tensors}
    f = lowbit.GGUFFile(path)
    assert len(f) == 4 and [t.name for t in f] == list(arrays) and "c.q4k" in f and "zz" not in f
    for t in f.tensors:
        r = theirs[t.name]
        assert t.type == r.tensor_type.name and t.ggml_type == int(r.tensor_type)
        assert t.ggml_shape == tuple(int(d) for d in r.shape)  # GGUF order
        assert t.shape == tuple(reversed(t.ggml_shape))  # numpy order
        assert t.nbytes == r.n_bytes and t.offset == r.data_offset and t.n_elements == r.n_elements
        data = t.data
        assert data.dtype == np.uint8 and not data.flags.writeable and not data.flags.owndata
        assert data.nbytes == t.nbytes and data.shape[:-1] == t.shape[:-1]
        assert np.array_equal(data.reshape(-1), np.asarray(r.data).reshape(-1).view(np.uint8))
    assert np.array_equal(f["a.f32"].to_float(), arrays["a.f32"])
    assert np.array_equal(f["b.f16"].to_float(), arrays["b.f16"].astype(np.float32))
    assert np.array_equal(f["d.3d"].to_float(), arrays["d.3d"]) and f["d.3d"].shape == (2, 3, 32)
    q = f["c.q4k"]
    assert q.shape == (4, 256) and q.data.shape == (4, 144)
    assert np.array_equal(q.data, arrays["c.q4k"])
    assert np.array_equal(q.to_float(), gguf.quants.dequantize(arrays["c.q4k"], gguf.GGMLQuantizationType.Q4_K))
    assert f[0].name == "a.f32"

    # Views outlive close(); the file itself refuses further use.
    view = q.data
    tensor = f["a.f32"]
    f.close()
    assert f.closed
    assert np.array_equal(view, arrays["c.q4k"])
    assert np.array_equal(tensor.to_float(), arrays["a.f32"])
    with pytest.raises(lowbit.Error, match="closed"):
        f.metadata
    with pytest.raises(lowbit.Error, match="closed"):
        len(f)


def test_bad_files(tmp_path):
    with pytest.raises(lowbit.Error, match="missing.gguf"):
        lowbit.GGUFFile(str(tmp_path / "missing.gguf"))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 8)
    with pytest.raises(lowbit.Error, match="junk.gguf"):
        lowbit.GGUFFile(junk)  # a pathlib.Path works too
    f = lowbit.GGUFFile
    with pytest.raises(lowbit.Error, match="no tensor 'x'"):
        path = tmp_path / "empty.gguf"
        w = gguf.GGUFWriter(str(path), "llama")
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        f(path)["x"]
