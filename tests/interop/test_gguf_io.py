"""gguf I/O check: lowbit's GGUF reader and writer agree with the gguf package.

1. gguf.GGUFWriter writes files (default alignment and general.alignment = 64) with
   metadata of all 13 value types (edge values: NaN, -0.0, infinities, denormals,
   integer extremes, empty and non-ASCII strings, arrays of every kind, nested
   arrays) and one tensor of every lowbit format (random bytes, 1 to 4 dims).
   lowbit reads them (lowbit_interop_tool gguf-dump) and must report every key,
   value (floats by bit pattern), tensor name, shape, type, offset, size and data
   hash exactly as the values that were written, and as gguf.GGUFReader reads them.
2. lowbit writes files from a spec (gguf-write), including empty arrays and
   deeper nesting that GGUFWriter cannot produce; gguf.GGUFReader must read back
   identical values, shapes, types and tensor bytes.
3. lowbit copies each GGUFWriter file (gguf-copy: read, copy metadata, borrow the
   mapped tensors, write): the copy must be byte-identical to the original.
4. A truncated file must make gguf-dump fail with an error naming a byte offset.

Run by hand (after building lowbit_interop_tool and running setup_venv.sh):
    ~/.cache/lowbit/venv/bin/python tests/interop/test_gguf_io.py \\
        --tool build/tests/interop/lowbit_interop_tool
Exit status 0 when every row passes.
"""
import json
import os
import subprocess
import tempfile
import time

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter

from interop_common import Table, Tool, parse_args

VT = GGUFValueType
NAMES = {VT.UINT8: "uint8", VT.INT8: "int8", VT.UINT16: "uint16", VT.INT16: "int16", VT.UINT32: "uint32",
         VT.INT32: "int32", VT.FLOAT32: "float32", VT.BOOL: "bool", VT.STRING: "string", VT.ARRAY: "array",
         VT.UINT64: "uint64", VT.INT64: "int64", VT.FLOAT64: "float64"}


# ---------------------------------------------------------------- canonical values
# A value is [TYPE, PAYLOAD] as lowbit_interop_tool gguf-dump prints it: integers as
# ints, floats as their bit patterns, bool 0/1, strings as hex of their bytes, an
# array as ["array", [ELEM_TYPE, [values...]]].

def infer_type(x):
    """The element type GGUFWriter infers for a nested (untyped) list item."""
    if isinstance(x, str):
        return VT.STRING
    if isinstance(x, list):
        return VT.ARRAY
    if isinstance(x, float):
        return VT.FLOAT32
    if isinstance(x, bool):
        return VT.BOOL
    return VT.INT32


def canon(vtype, value, sub_type=None):
    if vtype == VT.ARRAY:
        et = sub_type if sub_type is not None else infer_type(value[0])
        return ["array", [NAMES[et], [canon(et, x) for x in value]]]
    if vtype == VT.STRING:
        return ["string", value.encode("utf-8").hex()]
    if vtype == VT.FLOAT32:
        return ["float32", int(np.array([value], dtype=np.float32).view(np.uint32)[0])]
    if vtype == VT.FLOAT64:
        return ["float64", int(np.array([value], dtype=np.float64).view(np.uint64)[0])]
    if vtype == VT.BOOL:
        return ["bool", 1 if value else 0]
    return [NAMES[vtype], int(value)]


def decode_parts(parts, i, vtype):
    """Canonical value from a GGUFReader field's raw parts, starting at parts[i]."""
    if vtype == VT.STRING:
        return ["string", bytes(parts[i + 1]).hex()], i + 2
    if vtype == VT.ARRAY:
        et = VT(int(parts[i][0]))
        n = int(parts[i + 1][0])
        i += 2
        items = []
        for _ in range(n):
            v, i = decode_parts(parts, i, et)
            items.append(v)
        return ["array", [NAMES[et], items]], i
    x = parts[i]
    if vtype == VT.FLOAT32:
        return ["float32", int(x.view(np.uint32)[0])], i + 1
    if vtype == VT.FLOAT64:
        return ["float64", int(x.view(np.uint64)[0])], i + 1
    if vtype == VT.BOOL:
        return ["bool", 1 if bool(x[0]) else 0], i + 1
    return [NAMES[vtype], int(x[0])], i + 1


def reader_metadata(reader):
    """[(key, canonical value)] in file order, without GGUFReader's pseudo-fields."""
    out = []
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        # parts: key length, key bytes, value type, then the value's own parts.
        value, end = decode_parts(field.parts, 3, VT(int(field.parts[2][0])))
        assert end == len(field.parts), f"{name}: {len(field.parts) - end} parts left over"
        out.append((name, value))
    return out


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in bytes(data):
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


# ---------------------------------------------------------------- test content

def gguf_py_metadata():
    """(key, vtype, value, sub_type) entries GGUFWriter can write."""
    nan, inf = float("nan"), float("inf")
    return [
        ("t.u8.min", VT.UINT8, 0, None), ("t.u8.max", VT.UINT8, 255, None),
        ("t.i8", VT.INT8, -128, None), ("t.u16", VT.UINT16, 65535, None), ("t.i16", VT.INT16, -32768, None),
        ("t.u32", VT.UINT32, 2**32 - 1, None), ("t.i32", VT.INT32, -2**31, None),
        ("t.u64", VT.UINT64, 2**64 - 1, None), ("t.i64", VT.INT64, -2**63, None),
        ("t.f32", VT.FLOAT32, 1.5, None), ("t.f32.nan", VT.FLOAT32, nan, None),
        ("t.f32.negzero", VT.FLOAT32, -0.0, None), ("t.f32.inf", VT.FLOAT32, -inf, None),
        ("t.f32.denorm", VT.FLOAT32, 1e-45, None), ("t.f32.max", VT.FLOAT32, 3.4028234663852886e38, None),
        ("t.f64", VT.FLOAT64, 0.1, None), ("t.f64.inf", VT.FLOAT64, inf, None),
        ("t.f64.denorm", VT.FLOAT64, 5e-324, None),
        ("t.bool.true", VT.BOOL, True, None), ("t.bool.false", VT.BOOL, False, None),
        ("t.str.empty", VT.STRING, "", None), ("t.str.utf8", VT.STRING, "h\u00e9llo \u65e5\u672c \U0001F600", None),
        ("t.str.escapes", VT.STRING, 'tab\there "quoted" back\\slash\nnewline', None),
        ("tokenizer.ggml.tokens", VT.ARRAY, ["<unk>", "<s>", "</s>", "\u2581the", "", "\u00e9"], VT.STRING),
        ("tokenizer.ggml.scores", VT.ARRAY, [0.0, -1.25, -1e30, 3.5], VT.FLOAT32),
        ("tokenizer.ggml.token_type", VT.ARRAY, [2, 3, 3, 1, 1, 6], VT.INT32),
        ("t.arr.u64", VT.ARRAY, [0, 2**64 - 1, 12345678901234], VT.UINT64),
        ("t.arr.i8", VT.ARRAY, [-128, 0, 127], VT.INT8),
        ("t.arr.f64", VT.ARRAY, [float("nan"), -0.0, 1e300], VT.FLOAT64),
        ("t.arr.bool", VT.ARRAY, [True, False, True], VT.BOOL),
        ("t.arr.u16", VT.ARRAY, list(range(0, 65536, 4099)), VT.UINT16),
        ("t.nested.int", VT.ARRAY, [[1, 2], [3, 4, 5]], None),
        ("t.nested.str", VT.ARRAY, [["a"], ["b", "c\u00e9"]], None),
        ("t.nested.deep", VT.ARRAY, [[[1.5], [2.5, -3.0]], [[0.25]]], None),
    ]


def tensor_cases(formats, rng):
    """(name, lowbit format, GGUF shape [ne0, ...], bytes) for every lowbit format."""
    shapes = [[1], [2], [3, 2], [2, 1, 2]]  # rows shape (ne1, ne2, ...) cycled over formats
    cases = []
    for k, fmt in enumerate(formats):
        ne0 = fmt.block_elems * (1 + k % 3) if fmt.block_elems > 1 else 5 + k
        rows = shapes[k % len(shapes)]
        n_rows = int(np.prod(rows))
        nbytes = ne0 // fmt.block_elems * fmt.block_bytes * n_rows
        data = rng.integers(0, 256, nbytes, dtype=np.uint8).tobytes()
        cases.append((f"blk.{k}.{fmt.name.lower()}.weight", fmt, [ne0] + rows, data))
    return cases


# ---------------------------------------------------------------- helpers

def run_tool(tool, *args):
    r = subprocess.run([tool, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def first_difference(a, b):
    if type(a) is not type(b):
        return f"{a!r} vs {b!r}"
    if isinstance(a, list):
        if len(a) != len(b):
            return f"length {len(a)} vs {len(b)}: {a!r} vs {b!r}"
        for x, y in zip(a, b):
            d = first_difference(x, y)
            if d:
                return d
        return ""
    return "" if a == b else f"{a!r} vs {b!r}"


def compare_metadata(got, expected, who):
    """got: [(key, value)] in file order; expected: dict key -> value. '' when equal."""
    keys = [k for k, _ in got]
    if sorted(keys) != sorted(expected):
        return f"{who}: keys differ: missing {sorted(set(expected) - set(keys))}, extra {sorted(set(keys) - set(expected))}"
    if len(set(keys)) != len(keys):
        return f"{who}: duplicate keys"
    for k, v in got:
        d = first_difference(v, expected[k])
        if d:
            return f"{who}: key {k}: {d}"
    return ""


def compare_tensors(dump, reader, cases, alignment):
    """lowbit's dump and GGUFReader's tensors against the written cases. '' when equal."""
    if len(dump["tensors"]) != len(cases) or len(reader.tensors) != len(cases):
        return f"tensor counts: lowbit {len(dump['tensors'])}, gguf {len(reader.tensors)}, written {len(cases)}"
    for ours, theirs, (name, fmt, shape, data) in zip(dump["tensors"], reader.tensors, cases):
        want = {"name": name, "shape": shape, "type": fmt.ggml_type, "nbytes": len(data), "fnv1a64": fnv1a64(data)}
        got_ours = {k: ours[k] for k in want}
        got_theirs = {"name": theirs.name, "shape": [int(x) for x in theirs.shape], "type": int(theirs.tensor_type),
                      "nbytes": int(theirs.n_bytes), "fnv1a64": fnv1a64(theirs.data.tobytes())}
        if got_ours != want:
            return f"{name}: lowbit read {got_ours}, written {want}"
        if got_theirs != want:
            return f"{name}: gguf read {got_theirs}, written {want}"
        if ours["file_offset"] != theirs.data_offset or ours["file_offset"] % alignment:
            return f"{name}: lowbit offset {ours['file_offset']}, gguf {theirs.data_offset} (alignment {alignment})"
    return ""


# ---------------------------------------------------------------- directions

def write_with_gguf_py(path, metadata, cases, alignment):
    w = GGUFWriter(path, "llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, vtype, value, sub in metadata:
        w.add_key_value(key, value, vtype, sub)
    for name, fmt, shape, data in cases:
        rows = list(reversed(shape[1:]))
        raw = np.frombuffer(data, dtype=np.uint8).reshape(rows + [len(data) // max(1, int(np.prod(rows)))])
        w.add_tensor(name, raw, raw_dtype=GGMLQuantizationType(fmt.ggml_type))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    expected = {"general.architecture": canon(VT.STRING, "llama")}
    if alignment is not None:
        expected["general.alignment"] = canon(VT.UINT32, alignment)
    for key, vtype, value, sub in metadata:
        expected[key] = canon(vtype, value, sub)
    return expected


def spec_value(v):
    """The gguf-write spec tokens of a canonical value."""
    t, payload = v
    if t == "array":
        et, items = payload
        return " ".join([t, et, str(len(items))] + [spec_value(x) for x in items])
    if t == "string":
        return f"{t} {payload or '-'}"
    return f"{t} {payload}"


def lowbit_metadata(alignment):
    """Canonical values for lowbit to write, beyond what GGUFWriter can express."""
    meta = {k: canon(vt, v, sub) for k, vt, v, sub in gguf_py_metadata()}
    meta["t.arr.empty.f32"] = ["array", ["float32", []]]
    meta["t.arr.empty.str"] = ["array", ["string", []]]
    meta["t.nested.empty"] = ["array", ["array", [["array", ["uint8", []]], ["array", ["uint8", [["uint8", 9]]]]]]]
    meta["t.nested.mixed"] = ["array", ["array", [["array", ["string", [["string", ""]]]],
                                                  ["array", ["bool", [["bool", 1]]]]]]]
    meta["t.key.\u00e9\u65e5"] = ["int16", -1]
    if alignment is not None:
        meta["general.alignment"] = ["uint32", alignment]
    return meta


def write_with_lowbit(tool, tmp, path, meta, cases):
    lines = [f"kv {k.encode('utf-8').hex()} {spec_value(v)}" for k, v in meta.items()]
    for i, (name, fmt, shape, data) in enumerate(cases):
        data_path = os.path.join(tmp, f"tensor{i}.bin")
        with open(data_path, "wb") as f:
            f.write(data)
        lines.append(f"tensor {name.encode().hex()} {fmt.name} {len(shape)} {' '.join(map(str, shape))} {data_path}")
    spec = os.path.join(tmp, "spec.txt")
    with open(spec, "w") as f:
        f.write("\n".join(lines) + "\n")
    rc, _, err = run_tool(tool, "gguf-write", spec, path)
    if rc != 0:
        raise RuntimeError(f"gguf-write failed: {err.strip()}")


def dump(tool, path):
    rc, out, err = run_tool(tool, "gguf-dump", path)
    if rc != 0:
        raise RuntimeError(f"gguf-dump failed: {err.strip()}")
    return json.loads(out)


def main():
    args = parse_args(__doc__)
    start = time.time()
    rng = np.random.default_rng(20240611)
    table = Table("GGUF files between lowbit (GgufFile / GgufWriter) and the gguf package",
                  ["direction", "alignment", "check", "result"], [18, 9, 40, 0], key_columns=3)
    formats = []
    for fmt in Tool(args.tool).formats():
        try:
            theirs = GGML_QUANT_SIZES[GGMLQuantizationType(fmt.ggml_type)]
        except (ValueError, KeyError):
            theirs = None
        if theirs != (fmt.block_elems, fmt.block_bytes):
            # gguf's size table is its own: a type it sizes differently cannot be exchanged.
            table.row(["tensor type", "", f"{fmt.name} (ggml type {fmt.ggml_type})"], "SKIP",
                      f"gguf sizes it {theirs}, lowbit ({fmt.block_elems}, {fmt.block_bytes})")
        else:
            formats.append(fmt)
    with tempfile.TemporaryDirectory(prefix="lowbit_gguf_io_") as tmp:
        for alignment in (None, 64):
            align = alignment or 32
            cases = tensor_cases(formats, rng)

            # 1. gguf-py writes, lowbit and gguf-py read.
            path = os.path.join(tmp, f"py_{align}.gguf")
            expected = write_with_gguf_py(path, gguf_py_metadata(), cases, alignment)
            reader = GGUFReader(path)
            cut_at = int(reader.tensors[-1].data_offset) + 1  # inside the last tensor's data
            d = dump(args.tool, path)
            ours = [(k, v) for k, v in d["metadata"]]
            why = (compare_metadata(ours, expected, "lowbit") or compare_metadata(reader_metadata(reader), expected, "gguf")
                   or ("" if [k for k, _ in ours] == [k for k, _ in reader_metadata(reader)] else "key order differs")
                   or ("" if (d["version"], d["alignment"], d["data_offset"]) == (3, align, reader.data_offset)
                       else f"header {d['version']}/{d['alignment']}/{d['data_offset']} vs gguf data_offset {reader.data_offset}"))
            table.row(["gguf-py -> lowbit", align, f"{len(expected)} metadata keys"], "FAIL" if why else "PASS", why)
            why = compare_tensors(d, reader, cases, align)
            table.row(["gguf-py -> lowbit", align, f"{len(cases)} tensors (all lowbit formats)"],
                      "FAIL" if why else "PASS", why)

            # 3. lowbit copies the gguf-py file byte for byte.
            copy = os.path.join(tmp, f"copy_{align}.gguf")
            rc, _, err = run_tool(args.tool, "gguf-copy", path, copy)
            with open(path, "rb") as f1:
                original = f1.read()
            copied = open(copy, "rb").read() if rc == 0 else b""
            why = err.strip() if rc else ("" if copied == original else
                                          f"copy differs ({len(copied)} vs {len(original)} bytes)")
            table.row(["lowbit copy", align, f"byte-identical ({len(original)} bytes)"], "FAIL" if why else "PASS", why)

            # 2. lowbit writes, gguf-py and lowbit read.
            cases = tensor_cases(formats, rng)
            meta = lowbit_metadata(alignment)
            out = os.path.join(tmp, f"lowbit_{align}.gguf")
            write_with_lowbit(args.tool, tmp, out, meta, cases)
            reader = GGUFReader(out)
            d = dump(args.tool, out)
            why = (compare_metadata(reader_metadata(reader), meta, "gguf")
                   or compare_metadata([(k, v) for k, v in d["metadata"]], meta, "lowbit")
                   or ("" if reader.alignment == align else f"gguf alignment {reader.alignment}"))
            table.row(["lowbit -> gguf-py", align, f"{len(meta)} metadata keys"], "FAIL" if why else "PASS", why)
            why = compare_tensors(d, reader, cases, align)
            table.row(["lowbit -> gguf-py", align, f"{len(cases)} tensors (all lowbit formats)"],
                      "FAIL" if why else "PASS", why)

        # 4. A truncated file is refused with the offset named, not read past its end.
        cut = os.path.join(tmp, "cut.gguf")
        with open(cut, "wb") as f:
            f.write(original[:cut_at])
        rc, _, err = run_tool(args.tool, "gguf-dump", cut)
        why = "" if rc == 1 and "byte offset" in err else f"exit {rc}, stderr {err.strip()!r}"
        table.row(["truncated file", "", "gguf-dump fails naming a byte offset"], "FAIL" if why else "PASS", why)
    print(f"\n({time.time() - start:.1f} s)")
    return table.finish()


if __name__ == "__main__":
    raise SystemExit(main())
