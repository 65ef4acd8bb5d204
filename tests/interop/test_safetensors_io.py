"""safetensors interop: files written by the `safetensors` package (the reference,
Rust underneath) read identically in lowbit, and files lowbit writes load
identically in safetensors.

Directions, one table row per case:
  py->lowbit   safetensors.numpy.save_file (or safetensors.serialize for BF16/F8, which
               numpy lacks) writes; `lowbit_interop_tool st-dump` must report the same
               metadata, names, dtypes, shapes and data bytes, and for F32/F16/BF16 the
               same float32 values as numpy's own conversion, bit for bit.
  lowbit->py   `st-write` writes the same tensors; safetensors.numpy.load_file (or
               safetensors.deserialize) must return them unchanged, with the metadata.
  bytes        lowbit, given the tensors in the order the reference lays them out, must
               write the very same file bytes (header JSON, padding, data).
  sharded      save_file shards + a model.safetensors.index.json, read through lowbit.
  corrupt      random corruptions of a small valid file: lowbit must refuse every file the
               reference refuses; where both accept, the contents must agree. lowbit
               deliberately also refuses duplicate JSON keys (the reference keeps the last).

Run by hand (after building lowbit_interop_tool and running setup_venv.sh):
    ~/.cache/lowbit/venv/bin/python tests/interop/test_safetensors_io.py \\
        --tool build/tests/interop/lowbit_interop_tool
Exit status 0 when every row passes.
"""
import json
import os
import random
import struct
import subprocess
import tempfile
import time

import numpy as np
import safetensors
from safetensors import TensorSpec
from safetensors.numpy import load_file, save, save_file

from interop_common import Table, parse_args

# numpy dtype -> safetensors dtype name
NUMPY_DTYPES = {
    np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8",
    np.dtype(np.int16): "I16", np.dtype(np.uint16): "U16", np.dtype(np.float16): "F16",
    np.dtype(np.int32): "I32", np.dtype(np.uint32): "U32", np.dtype(np.float32): "F32",
    np.dtype(np.float64): "F64", np.dtype(np.int64): "I64", np.dtype(np.uint64): "U64",
    np.dtype(np.complex64): "C64",
}
# Dtypes numpy has no type for, written through TensorSpec: safetensors name ->
# (TensorSpec dtype, numpy storage type of the raw bits).
RAW_DTYPES = {
    "BF16": ("bfloat16", np.uint16),
    "F8_E4M3": ("float8_e4m3fn", np.uint8),
    "F8_E5M2": ("float8_e5m2", np.uint8),
}


class Tensor:
    """A tensor as both sides see it: safetensors dtype name, shape and raw bytes,
    plus the numpy array when numpy has the dtype."""

    def __init__(self, dtype, shape, data, array=None):
        self.dtype, self.shape, self.data, self.array = dtype, tuple(int(d) for d in shape), bytes(data), array

    @staticmethod
    def from_numpy(a):
        a = np.ascontiguousarray(a)
        return Tensor(NUMPY_DTYPES[a.dtype], a.shape, a.tobytes(), a)

    @staticmethod
    def raw(dtype, bits):
        bits = np.ascontiguousarray(bits, dtype=RAW_DTYPES[dtype][1])
        return Tensor(dtype, bits.shape, bits.tobytes())

    def float32_bits(self):
        """The float32 values numpy (not lowbit) derives, as uint32 bits; None when the
        dtype does not convert."""
        if self.dtype in ("F32", "F16"):
            return self.array.astype(np.float32).reshape(-1).view(np.uint32)
        if self.dtype == "BF16":  # bf16 is the top half of a float32
            return np.frombuffer(self.data, dtype=np.uint16).astype(np.uint32) << 16
        return None


def hexs(b):
    return "x" + b.hex()


def unhex(token):
    assert token.startswith("x"), token
    return bytes.fromhex(token[1:])


# ---------------------------------------------------------------------------- lowbit side

def run_tool(tool, *args):
    r = subprocess.run([tool, *args], capture_output=True)
    return r.returncode, r.stdout.decode(), r.stderr.decode(errors="replace")


def lowbit_dump(tool, path):
    """(metadata {str: str}, {name: (dtype, shape, data bytes, float32 bits or None)}) or
    raises RuntimeError with lowbit's message."""
    rc, out, err = run_tool(tool, "st-dump", path)
    if rc != 0:
        raise RuntimeError(err.strip())
    meta, tensors = {}, {}
    for line in out.splitlines():
        f = line.split()
        if f[0] == "meta":
            meta[unhex(f[1]).decode()] = unhex(f[2]).decode()
        else:
            name, dtype, rank = unhex(f[1]).decode(), f[2], int(f[3])
            shape = tuple(int(d) for d in f[4:4 + rank])
            data = unhex(f[4 + rank])
            f32 = None if f[5 + rank] == "-" else np.frombuffer(unhex(f[5 + rank]), dtype=np.uint32)
            if name in tensors:
                raise RuntimeError(f"st-dump listed tensor {name!r} twice")
            tensors[name] = (dtype, shape, data, f32)
    return meta, tensors


def lowbit_write(tool, path, tensors, metadata, order=None):
    manifest = path + ".manifest"
    with open(manifest, "w") as m:
        for k, v in (metadata or {}).items():
            m.write(f"meta {hexs(k.encode())} {hexs(v.encode())}\n")
        for name in order or tensors:
            t = tensors[name]
            dims = " ".join(str(d) for d in t.shape)
            m.write(f"tensor {hexs(name.encode())} {t.dtype} {len(t.shape)} {dims} {hexs(t.data)}\n")
    rc, _, err = run_tool(tool, "st-write", path, manifest)
    os.remove(manifest)
    if rc != 0:
        raise RuntimeError(err.strip())


# ---------------------------------------------------------------------------- reference side

def reference_bytes(tensors, metadata):
    """The file the reference writes: numpy arrays through safetensors.numpy.save, raw
    dtypes through safetensors.serialize."""
    if all(t.array is not None for t in tensors.values()):
        return save({n: t.array for n, t in tensors.items()}, metadata=metadata)
    keep, specs = [], {}
    for n, t in tensors.items():
        buf = np.frombuffer(t.data, dtype=np.uint8).copy() if t.data else np.zeros(1, np.uint8)
        keep.append(buf)
        spec_dtype = RAW_DTYPES[t.dtype][0] if t.dtype in RAW_DTYPES else t.array.dtype.name
        specs[n] = TensorSpec(dtype=spec_dtype, shape=list(t.shape), data_ptr=buf.ctypes.data, data_len=len(t.data))
    return bytes(safetensors.serialize(specs, metadata=metadata))


def reference_read(data):
    """{name: (dtype, shape, bytes)} as the reference deserializes `data`."""
    out = {}
    for name, info in safetensors.deserialize(data):
        out[name] = (info["dtype"], tuple(info["shape"]), bytes(info["data"]))
    return out


def header_order(data):
    """Tensor names in the order of the header JSON (the reference's layout)."""
    n = struct.unpack("<Q", data[:8])[0]
    pairs = json.loads(data[8:8 + n], object_pairs_hook=lambda p: p)
    return [k for k, _ in pairs if k != "__metadata__"]


# ---------------------------------------------------------------------------- comparisons

def compare_lowbit_view(expected, metadata, got_meta, got):
    """'' when lowbit's dump equals the expected tensors, else what differs."""
    if got_meta != (metadata or {}):
        return f"metadata {got_meta!r} != {metadata!r}"
    if set(got) != set(expected):
        return f"tensor names {sorted(got)} != {sorted(expected)}"
    for name, t in expected.items():
        dtype, shape, data, f32 = got[name]
        if dtype != t.dtype or shape != t.shape:
            return f"{name!r}: lowbit sees {dtype} {shape}, written {t.dtype} {t.shape}"
        if data != t.data:
            return f"{name!r}: data bytes differ"
        want = t.float32_bits()
        if (want is None) != (f32 is None):
            return f"{name!r}: float32 conversion offered for {dtype}: {f32 is not None}"
        if want is not None and not np.array_equal(want, f32):
            i = int(np.flatnonzero(want != f32)[0])
            return f"{name!r}: float32 bits at {i}: lowbit {f32[i]:#010x}, numpy {want[i]:#010x}"
    return ""


def compare_reference_view(expected, got):
    if set(got) != set(expected):
        return f"tensor names {sorted(got)} != {sorted(expected)}"
    for name, t in expected.items():
        dtype, shape, data = got[name]
        if (dtype, shape, data) != (t.dtype, t.shape, t.data):
            return f"{name!r}: reference reads {dtype} {shape} ({len(data)} bytes), written {t.dtype} {t.shape}"
    return ""


def compare_numpy_load(expected, loaded):
    if set(loaded) != set(expected):
        return f"load_file names {sorted(loaded)} != {sorted(expected)}"
    for name, t in expected.items():
        a = loaded[name]
        if a.dtype != t.array.dtype or a.shape != t.shape or a.tobytes() != t.data:
            return f"{name!r}: load_file gives {a.dtype} {a.shape}, written {t.array.dtype} {t.shape}"
    return ""


# ---------------------------------------------------------------------------- cases

def cases():
    rng = np.random.default_rng(42)
    out = []

    every = {}
    for i, dt in enumerate(NUMPY_DTYPES):
        shape = (3, i % 4 + 2)
        if dt == np.bool_:
            a = rng.integers(0, 2, size=shape).astype(np.bool_)
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
        elif dt.kind == "c":
            a = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
        else:
            a = (rng.standard_normal(shape) * 10).astype(dt)
        every[f"t.{dt.name}"] = Tensor.from_numpy(a)
    out.append(("every numpy dtype", every, {"format": "np"}))

    out.append(("shapes", {
        "scalar": Tensor.from_numpy(np.array(3.5, dtype=np.float32)),
        "empty": Tensor.from_numpy(np.zeros((0, 3), dtype=np.float32)),
        "empty_mid": Tensor.from_numpy(np.zeros((3, 0, 2), dtype=np.int64)),
        "vector": Tensor.from_numpy(np.arange(7, dtype=np.int16)),
        "rank4": Tensor.from_numpy(rng.standard_normal((2, 3, 1, 5)).astype(np.float16)),
    }, None))

    specials = np.array([0.0, -0.0, 1.0, -2.0, 65504.0, -65504.0, np.inf, -np.inf, np.nan,
                         2.0 ** -24, -(2.0 ** -24), 2.0 ** -14, 6.1e-5, 0.1], dtype=np.float16)
    f32_specials = np.array([np.inf, -np.inf, np.nan, 1e-45, -0.0, 3.4028235e38], dtype=np.float32)
    out.append(("float specials", {
        "h": Tensor.from_numpy(specials),
        "all_h": Tensor.from_numpy(np.arange(65536, dtype=np.uint16).view(np.float16)),  # every fp16 value
        "f": Tensor.from_numpy(f32_specials),
    }, {"note": "specials"}))

    out.append(("names and metadata", {
        "model.layers.0.self_attn.q_proj.weight": Tensor.from_numpy(rng.standard_normal((4, 8)).astype(np.float32)),
        "权重 😀": Tensor.from_numpy(np.arange(3, dtype=np.uint8)),
        'quote " back \\ slash': Tensor.from_numpy(np.arange(2, dtype=np.int32)),
        "ctrl\n\t\x01": Tensor.from_numpy(np.arange(1, dtype=np.int8)),
        "": Tensor.from_numpy(np.arange(2, dtype=np.float64)),
    }, {"escapes é€": 'a "q" \\ \n\t\x1f\x7f end'}))
    out.append(("two metadata keys", {
        "x": Tensor.from_numpy(np.arange(4, dtype=np.float32)),
    }, {"unicodé": "värde €", "format": "pt"}))

    out.append(("large", {
        "w": Tensor.from_numpy(rng.standard_normal((257, 300)).astype(np.float32)),
        "w16": Tensor.from_numpy(rng.standard_normal((129, 77)).astype(np.float16)),
    }, {"total": "2"}))

    out.append(("no tensors", {}, {"only": "metadata"}))
    out.append(("empty file", {}, None))

    bf16 = np.concatenate([np.array([0x3F80, 0xC040, 0x4049, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x8000], np.uint16),
                           rng.integers(0, 65536, size=200, dtype=np.uint16)])
    out.append(("raw BF16/F8", {
        "bf16": Tensor.raw("BF16", bf16.reshape(8, 26)),
        "e4m3": Tensor.raw("F8_E4M3", np.arange(256, dtype=np.uint8).reshape(16, 16)),
        "e5m2": Tensor.raw("F8_E5M2", np.arange(256, dtype=np.uint8)[::-1].copy()),
        "f32": Tensor.from_numpy(rng.standard_normal(5).astype(np.float32)),
    }, {"k": "v"}))
    return out


def check_case(table, tool, tmp, label, tensors, metadata):
    ref = reference_bytes(tensors, metadata)
    numpy_only = all(t.array is not None for t in tensors.values())

    # py -> lowbit
    path = os.path.join(tmp, "py.safetensors")
    if numpy_only:
        save_file({n: t.array for n, t in tensors.items()}, path, metadata=metadata)
    else:
        with open(path, "wb") as f:
            f.write(ref)
    try:
        why = compare_lowbit_view(tensors, metadata, *lowbit_dump(tool, path))
    except RuntimeError as e:
        why = f"lowbit refused: {e}"
    table.row([label, "py->lowbit", len(tensors)], "FAIL" if why else "PASS", why)

    # lowbit -> py
    path = os.path.join(tmp, "lowbit.safetensors")
    try:
        lowbit_write(tool, path, tensors, metadata)
        with open(path, "rb") as f:
            data = f.read()
        why = compare_reference_view(tensors, reference_read(data))
        if not why and numpy_only:
            why = compare_numpy_load(tensors, load_file(path))
        if not why:
            with safetensors.safe_open(path, framework="numpy") as f:
                meta = f.metadata() or {}
            if meta != (metadata or {}):
                why = f"safe_open metadata {meta!r} != {metadata!r}"
    except Exception as e:  # noqa: BLE001 - any failure is this row's failure
        why = f"{type(e).__name__}: {e}"
    table.row([label, "lowbit->py", len(tensors)], "FAIL" if why else "PASS", why)

    # Same bytes as the reference, given its tensor order. Its metadata map has no fixed
    # order, so only cases with at most one key compare.
    if metadata and len(metadata) > 1:
        table.row([label, "bytes", len(tensors)], "SKIP", "reference orders metadata keys by hash")
        return
    try:
        lowbit_write(tool, path, tensors, metadata, order=header_order(ref))
        with open(path, "rb") as f:
            ours = f.read()
        why = ""
        if ours != ref:
            i = next((k for k in range(min(len(ours), len(ref))) if ours[k] != ref[k]), min(len(ours), len(ref)))
            why = f"first difference at byte {i} (lowbit {len(ours)} bytes, reference {len(ref)})"
    except RuntimeError as e:
        why = str(e)
    table.row([label, "bytes", len(tensors)], "FAIL" if why else "PASS", why)


def check_sharded(table, tool, tmp):
    rng = np.random.default_rng(5)
    shard_dir = os.path.join(tmp, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    shards = {
        "model-00001-of-00002.safetensors": {
            "embed": rng.standard_normal((6, 4)).astype(np.float16),
            "layer.0.w": rng.standard_normal((4, 4)).astype(np.float32),
        },
        "model-00002-of-00002.safetensors": {
            "layer.1.w": rng.standard_normal((4, 4)).astype(np.float32),
            "head.bias": np.arange(4, dtype=np.int32),
        },
    }
    weight_map, expected, total = {}, {}, 0
    for fname, ts in shards.items():
        save_file(ts, os.path.join(shard_dir, fname), metadata={"format": "pt"})
        for n, a in ts.items():
            weight_map[n] = fname
            expected[n] = Tensor.from_numpy(a)
            total += a.nbytes
    index = os.path.join(shard_dir, "model.safetensors.index.json")
    with open(index, "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    try:
        why = compare_lowbit_view(expected, {"total_size": str(total)}, *lowbit_dump(tool, index))
    except RuntimeError as e:
        why = f"lowbit refused: {e}"
    table.row(["2 shards + index", "sharded", len(expected)], "FAIL" if why else "PASS", why)

    # A weight_map entry pointing at the wrong shard must be refused.
    with open(index, "w") as f:
        json.dump({"weight_map": {**weight_map, "head.bias": "model-00001-of-00002.safetensors"}}, f)
    rc, _, err = run_tool(tool, "st-dump", index)
    why = "" if rc != 0 and "head.bias" in err else f"exit {rc}, stderr {err.strip()!r}"
    table.row(["tensor in wrong shard", "sharded", ""], "FAIL" if why else "PASS", why)


def has_duplicate_keys(data):
    try:
        n = struct.unpack("<Q", data[:8])[0]
        dup = []

        def hook(pairs):
            keys = [k for k, _ in pairs]
            if len(keys) != len(set(keys)):
                dup.append(True)
            return dict(pairs)
        json.loads(data[8:8 + n].decode(), object_pairs_hook=hook)
        return bool(dup)
    except Exception:  # noqa: BLE001 - not parseable: no duplicate keys to speak of
        return False


def check_corruptions(table, tool, tmp, trials=1200):
    """Mutated copies of a small valid file, mostly inside the header (where the
    validation lives); both readers must agree on which to accept."""
    base = {
        "a": Tensor.from_numpy(np.array([1.0, -2.0], dtype=np.float16)),
        "b": Tensor.from_numpy(np.arange(6, dtype=np.int32).reshape(2, 3)),
        "c": Tensor.from_numpy(np.array([7], dtype=np.uint8)),
    }
    good = save({n: t.array for n, t in base.items()}, metadata={"k": "v"})
    header_end = 8 + struct.unpack("<Q", good[:8])[0]
    header = good[8:header_end]
    # Targeted edits of the header (length field recomputed), then random mutations.
    edits = [
        (b'"a":', b'"b":'),                                   # duplicate name, then a gap
        (b'"c":{"dtype":"U8","shape":[1],"data_offsets":[28,29]}',  # duplicate entry: the
         b'"c":{"dtype":"U8","shape":[1],"data_offsets":[28,29]},'  # reference keeps one
         b'"c":{"dtype":"U8","shape":[1],"data_offsets":[28,29]}'),
        (b'"I32"', b'"U32"'), (b'"F16"', b'"BF16"'),          # same size: accepted
        (b'"I32"', b'"I64"'), (b'"U8"', b'"Q8"'), (b'"F16"', b'"F4"'),
        (b"[2,3]", b"[3,2]"), (b"[2,3]", b"[6]"), (b"[2,3]", b"[2,3,1]"), (b"[2,3]", b"[2,-3]"),
        (b"[2,3]", b"[2.0,3]"), (b"[2,3]", b"[4294967296,4294967296,4]"),
        (b"[0,24]", b"[0,28]"), (b"[24,28]", b"[20,24]"), (b"[28,29]", b"[28,29,30]"),
        (b"[28,29]", b"[29,29]"), (b'"data_offsets":[24,28]', b'"data_offsets":[24,28],"x":1'),
        (b'{"k":"v"}', b'{"k":1}'), (b'{"k":"v"}', b"null"), (b'{"k":"v"}', b"{}"),
        (b'{"__metadata__"', b' {"__metadata__"'), (b"}} ", b"}}x"),
    ]

    def with_header(h):
        return struct.pack("<Q", len(h)) + h + good[header_end:]

    mutants = [with_header(header.replace(old, new, 1)) for old, new in edits]
    rnd = random.Random(11)
    path = os.path.join(tmp, "corrupt.safetensors")
    counts = {"both accept": 0, "both refuse": 0, "lowbit stricter (duplicate keys)": 0}
    failures = []
    for trial in range(len(mutants) + trials):
        data = bytearray(good)
        kind = rnd.random()
        if trial < len(mutants):
            data = bytearray(mutants[trial])
        elif kind < 0.1:
            data = data[:rnd.randrange(len(data))]
        elif kind < 0.2:
            data += bytes([rnd.randrange(256)])
        elif kind < 0.6:
            # Swap a digit for a digit or a letter for a letter: the JSON stays valid and the
            # offsets, shapes, dtypes and names change (a -> b makes duplicate names).
            for _ in range(rnd.randint(1, 2)):
                spots = [i for i in range(8, header_end) if chr(data[i]).isalnum()]
                pos = rnd.choice(spots)
                pool = "0123456789" if chr(data[pos]).isdigit() else "abcFUI86"
                data[pos] = ord(rnd.choice(pool))
        else:
            for _ in range(rnd.randint(1, 2)):
                pos = rnd.randrange(header_end) if rnd.random() < 0.9 else rnd.randrange(len(data))
                # Mostly plausible characters, so that the JSON often stays parseable.
                data[pos] = ord(rnd.choice('0123456789[]{},:" abcFUI')) if rnd.random() < 0.7 else rnd.randrange(256)
        data = bytes(data)
        with open(path, "wb") as f:
            f.write(data)
        try:
            ref = reference_read(data)
            ref_meta = safetensors.safe_open(path, framework="numpy").metadata() or {}
        except Exception:  # noqa: BLE001 - the reference refused the file
            ref = None
        try:
            ours = lowbit_dump(tool, path)
        except RuntimeError as e:
            ours = None
            err = str(e)
        if ref is None and ours is None:
            counts["both refuse"] += 1
        elif ref is None:
            failures.append(f"trial {trial}: lowbit accepts a file the reference refuses")
        elif ours is None:
            if has_duplicate_keys(data):
                counts["lowbit stricter (duplicate keys)"] += 1
            else:
                failures.append(f"trial {trial}: lowbit refuses a file the reference accepts: {err}")
        else:
            expected = {n: Tensor(d, s, b) for n, (d, s, b) in ref.items()}
            got_meta, got = ours
            why = ""
            if got_meta != ref_meta:
                why = f"metadata {got_meta!r} != {ref_meta!r}"
            elif set(got) != set(expected):
                why = f"names {sorted(got)} != {sorted(expected)}"
            else:
                for n, t in expected.items():
                    if got[n][:3] != (t.dtype, t.shape, t.data):
                        why = f"tensor {n!r} differs"
                        break
            if why:
                failures.append(f"trial {trial}: both accept, but {why}")
            else:
                counts["both accept"] += 1
    detail = ", ".join(f"{k} {v}" for k, v in counts.items())
    if failures:
        table.row([f"{len(mutants) + trials} mutations", "corrupt", ""], "FAIL",
                  f"{len(failures)} disagreements, first: " + "; ".join(failures[:3]) + f" ({detail})")
    else:
        table.row([f"{len(mutants) + trials} mutations", "corrupt", ""], "PASS", detail)


def main():
    args = parse_args(__doc__)
    start = time.time()
    table = Table(f"safetensors {safetensors.__version__} (reference) vs lowbit",
                  ["case", "direction", "tensors", "result"], [20, 11, 8, 0], key_columns=2)
    with tempfile.TemporaryDirectory(prefix="lowbit_st_interop_") as tmp:
        for label, tensors, metadata in cases():
            check_case(table, args.tool, tmp, label, tensors, metadata)
        check_sharded(table, args.tool, tmp)
        check_corruptions(table, args.tool, tmp)
    print(f"\n({time.time() - start:.1f} s)")
    return table.finish()


if __name__ == "__main__":
    raise SystemExit(main())
