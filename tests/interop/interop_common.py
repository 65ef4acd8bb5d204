"""Shared pieces of the interop tests: driving lowbit_interop_tool, loading ggml
through ctypes, the error metrics and the result table.

Not a test by itself; test_gguf_decode.py, test_ggml_decode.py and
test_ggml_quality.py import it (Python puts the script's folder on sys.path).
"""
import argparse
import ctypes
import importlib.util
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

DISTRIBUTIONS = ("heavy_tailed", "gaussian", "outliers")


class ToolError(Exception):
    """lowbit_interop_tool exited non-zero; the message is its stderr."""


@dataclass(frozen=True)
class FormatInfo:
    name: str
    ggml_type: int
    block_elems: int
    block_bytes: int
    quantized: bool
    activation_only: bool

    def nbytes(self, rows, cols):
        return rows * cols // self.block_elems * self.block_bytes


class Tool:
    """Runs lowbit_interop_tool, passing arrays through files in a private temporary
    folder; each call removes its files, so a long run does not fill the disk."""

    def __init__(self, path):
        self.path = path
        self._tmp = tempfile.TemporaryDirectory(prefix="lowbit_interop_")
        self._n = 0

    def _run(self, args, inputs=(), n_outputs=0, env=None):
        """Writes `inputs` (arrays) to files, runs the tool with `args`, in which
        "<in0>", "<in1>", ... and "<out0>", ... stand for the files, and returns
        (stdout, [raw uint8 contents of each output file])."""
        names = [f"<in{i}>" for i in range(len(inputs))] + [f"<out{i}>" for i in range(n_outputs)]
        paths = {}
        for name in names:
            self._n += 1
            paths[name] = os.path.join(self._tmp.name, f"{self._n}.bin")
        for i, array in enumerate(inputs):
            np.ascontiguousarray(array).tofile(paths[f"<in{i}>"])
        try:
            cmd = [self.path, *(paths.get(str(a), str(a)) for a in args)]
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise ToolError(r.stderr.strip() or f"exit status {r.returncode}")
            outs = [np.fromfile(paths[f"<out{i}>"], dtype=np.uint8) for i in range(n_outputs)]
            return r.stdout, outs
        finally:
            for p in paths.values():
                if os.path.exists(p):
                    os.remove(p)

    def formats(self):
        out = []
        for line in self._run(["formats"])[0].splitlines():
            name, t, be, bb, q, act = line.split()
            out.append(FormatInfo(name, int(t), int(be), int(bb), q == "1", act == "1"))
        return out

    def gen(self, dist, rows, cols, seed):
        """(weights float32 [rows, cols], importance float32 [cols])"""
        _, (w, imp) = self._run(["gen", dist, rows, cols, seed, "<out0>", "<out1>"], n_outputs=2)
        return w.view(np.float32).reshape(rows, cols), imp.view(np.float32)

    def quantize(self, fmt, w, imp=None, effort=None):
        """lowbit's bytes (uint8) for the float32 matrix w, with or without importance,
        at the given effort ("fast", "default", "best"; the library default when None)."""
        rows, cols = w.shape
        inputs = [np.asarray(w, dtype=np.float32)]
        if imp is not None:
            inputs.append(np.asarray(imp, dtype=np.float32))
        imp_arg = "<in1>" if imp is not None else "-"
        args = ["quantize", fmt.name, rows, cols, "<in0>", imp_arg, "<out0>"] + ([effort] if effort else [])
        _, (data,) = self._run(args, inputs=inputs, n_outputs=1)
        return data

    def quantize_activations(self, fmt, x, isa=None):
        """lowbit::quantize_activations bytes for float32 x; isa pins LOWBIT_ISA."""
        rows, cols = x.shape
        env = dict(os.environ, LOWBIT_ISA=isa) if isa else None
        _, (data,) = self._run(["quantize-activations", fmt.name, rows, cols, "<in0>", "<out0>"],
                               inputs=[np.asarray(x, dtype=np.float32)], n_outputs=1, env=env)
        return data

    def dequantize(self, fmt, data, rows, cols):
        _, (out,) = self._run(["dequantize", fmt.name, rows, cols, "<in0>", "<out0>"],
                              inputs=[np.asarray(data, dtype=np.uint8)], n_outputs=1)
        return out.view(np.float32).reshape(rows, cols)


def decode_cases(tool, rows=16, cols=2048, seed=7):
    """(label, weights, importance or None) inputs whose lowbit bytes the decode tests
    feed to the oracles: every distribution with and without importance, plus scaled
    copies so that block scales land in fp16's subnormal range and near its top."""
    cases = []
    for dist in DISTRIBUTIONS:
        w, imp = tool.gen(dist, rows, cols, seed)
        cases.append((dist, w, None))
        cases.append((dist, w, imp))
    w, _ = tool.gen("heavy_tailed", rows, cols, seed + 1)
    cases.append(("heavy_tailed*1e-6", (w * np.float32(1e-6)).astype(np.float32), None))
    cases.append(("heavy_tailed*1e3", (w * np.float32(1e3)).astype(np.float32), None))
    return cases


def parse_args(doc):
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tool", required=True, help="path to lowbit_interop_tool")
    p.add_argument("--formats", default="", help="comma-separated subset of formats (default: all)")
    return p.parse_args()


def select_formats(tool, only):
    fmts = tool.formats()
    if only:
        wanted = {n.strip().upper() for n in only.split(",") if n.strip()}
        fmts = [f for f in fmts if f.name.upper() in wanted]
    return fmts


# ---------------------------------------------------------------- bit comparison

def bit_mismatch(ours, theirs):
    """None when the float32 arrays are equal bit for bit (compared as uint32, so
    -0.0 != 0.0 and NaN payloads count); otherwise a one-line description of the
    number of differing elements and the first one."""
    a = np.ascontiguousarray(ours, dtype=np.float32)
    b = np.ascontiguousarray(theirs, dtype=np.float32)
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    ua, ub = a.view(np.uint32), b.view(np.uint32)
    diff = np.flatnonzero(ua.ravel() != ub.ravel())
    if diff.size == 0:
        return None
    i = int(diff[0])
    where = np.unravel_index(i, a.shape)
    return (f"{diff.size}/{a.size} differ; first at {tuple(int(x) for x in where)}: "
            f"ours {float(a.ravel()[i]):.9g} (0x{int(ua.ravel()[i]):08x}) vs "
            f"{float(b.ravel()[i]):.9g} (0x{int(ub.ravel()[i]):08x})")


def check_decode(table, tool, fmt, cases, decode, decoder_name):
    """One table row for fmt: lowbit's bytes for every case, decoded by `decode(data,
    rows, cols)` and by lowbit, must agree bit for bit. Failing cases are listed in
    the row's detail (a lowbit error that every case shares is shown once)."""
    bad = []
    for label, w, imp in cases:
        case = f"{label} imp={'yes' if imp is not None else 'no'}"
        rows, cols = w.shape
        try:
            data = tool.quantize(fmt, w, imp)
            ours = tool.dequantize(fmt, data, rows, cols)
        except ToolError as e:
            bad.append((case, str(e)))
            continue
        try:
            theirs = decode(data, rows, cols)
        except Exception as e:  # an oracle exception fails this case, not the run
            bad.append((case, f"{decoder_name} raised {type(e).__name__}: {e}"))
            continue
        why = bit_mismatch(ours, np.asarray(theirs, dtype=np.float32).reshape(rows, cols))
        if why:
            bad.append((case, why))
    cells = [fmt.name, decoder_name, f"{len(cases) - len(bad)}/{len(cases)}"]
    if not bad:
        table.row(cells, "PASS")
    elif len({why for _, why in bad}) == 1 and len(bad) == len(cases):
        table.row(cells, "FAIL", f"every case: {bad[0][1]}")
    else:
        table.row(cells, "FAIL", "; ".join(f"[{case}] {why}" for case, why in bad))


# ---------------------------------------------------------------- metrics (float64)

def relative_rmse(w, q, imp=None):
    """||W - Q||_F / ||W||_F, or with importance (one weight per column)
    sqrt(sum_j imp_j sum_i (w_ij - q_ij)^2 / sum_j imp_j sum_i w_ij^2)."""
    w = np.asarray(w, dtype=np.float64)
    e = w - np.asarray(q, dtype=np.float64)
    if imp is None:
        return float(np.sqrt(np.sum(e * e) / np.sum(w * w)))
    imp = np.asarray(imp, dtype=np.float64)
    return float(np.sqrt(np.sum((e * e).sum(axis=0) * imp) / np.sum((w * w).sum(axis=0) * imp)))


# ---------------------------------------------------------------- ggml via ctypes

class GgmlTypeTraits(ctypes.Structure):
    # struct ggml_type_traits in ggml.h
    _fields_ = [
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.c_void_p),
        ("from_float_ref", ctypes.c_void_p),
    ]


_ROW_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


def find_libggml_base():
    """libggml-base.so inside the installed llama_cpp package (found without importing
    it, which would load all of llama.cpp)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        raise RuntimeError("the llama_cpp package is not installed in this Python "
                           f"({sys.executable}); run tests/interop/setup_venv.sh")
    libdir = os.path.join(os.path.dirname(spec.origin), "lib")
    for name in ("libggml-base.so", "libggml-base.dylib"):
        path = os.path.join(libdir, name)
        if os.path.exists(path):
            return path
    candidates = sorted(n for n in os.listdir(libdir) if n.startswith("libggml-base.")) \
        if os.path.isdir(libdir) else []
    if candidates:
        return os.path.join(libdir, candidates[0])
    raise RuntimeError(f"no libggml-base shared library in {libdir}")


class Ggml:
    """ggml's reference (de)quantizers through ctypes."""

    def __init__(self):
        self.path = find_libggml_base()
        lib = ctypes.CDLL(self.path)
        lib.ggml_get_type_traits.restype = ctypes.POINTER(GgmlTypeTraits)
        lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
        lib.ggml_quantize_init.argtypes = [ctypes.c_int]
        lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                            ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
        for fn in ("quantize_row_q8_0_ref", "quantize_row_q8_1_ref", "quantize_row_q8_K_ref", "dequantize_row_q8_K"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            getattr(lib, fn).restype = None
        self.lib = lib

    def traits(self, ggml_type):
        return self.lib.ggml_get_type_traits(ggml_type).contents

    def to_float_fn(self, fmt):
        """(callable(src, dst, n), description) for ggml's decoder of fmt, or (None, reason)."""
        t = self.traits(fmt.ggml_type)
        if t.blck_size != fmt.block_elems or t.type_size != fmt.block_bytes:
            return None, (f"layout differs: ggml {t.type_name.decode()} has {t.blck_size} elems/"
                          f"{t.type_size} bytes per block, lowbit {fmt.block_elems}/{fmt.block_bytes}")
        if t.to_float:
            return _ROW_FN(t.to_float), "type_traits.to_float"
        if fmt.name == "Q8_K":  # not in the traits, but exported
            return self.lib.dequantize_row_q8_K, "dequantize_row_q8_K"
        return None, f"ggml has no dequantizer for {fmt.name} (no to_float in its type traits)"

    def dequantize(self, fn, data, rows, cols):
        data = np.ascontiguousarray(data, dtype=np.uint8)
        out = np.empty((rows, cols), dtype=np.float32)
        # Rows are stored back to back and whole blocks, so one call decodes them all.
        fn(data.ctypes.data, out.ctypes.data, rows * cols)
        return out

    def quantize(self, fmt, w, imp=None):
        """ggml's own quantization of w: ggml_quantize_chunk (imp as imatrix), or the
        _ref row quantizer for the activation formats ggml_quantize_chunk rejects."""
        w = np.ascontiguousarray(w, dtype=np.float32)
        rows, cols = w.shape
        out = np.zeros(fmt.nbytes(rows, cols), dtype=np.uint8)
        if fmt.name in ("Q8_1", "Q8_K"):
            assert imp is None, "ggml's Q8_1/Q8_K quantizers take no imatrix"
            fn = self.lib.quantize_row_q8_1_ref if fmt.name == "Q8_1" else self.lib.quantize_row_q8_K_ref
            fn(w.ctypes.data, out.ctypes.data, rows * cols)
            return out
        imp_ptr = None
        if imp is not None:
            imp = np.ascontiguousarray(imp, dtype=np.float32)
            imp_ptr = imp.ctypes.data
        self.lib.ggml_quantize_init(fmt.ggml_type)
        n = self.lib.ggml_quantize_chunk(fmt.ggml_type, w.ctypes.data, out.ctypes.data, 0, rows, cols, imp_ptr)
        assert n == out.size, f"ggml_quantize_chunk wrote {n} bytes, expected {out.size}"
        return out


def dequantize_q8_1_numpy(data, rows, cols):
    """Q8_1 per ggml-common.h: blocks of {fp16 d, fp16 s, int8 qs[32]}, y = d * q.
    ggml ships no Q8_1 decoder, so its Q8_1 bytes are decoded from the layout."""
    blocks = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1, 36)
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
    q = blocks[:, 4:].copy().view(np.int8).astype(np.float32)
    return (d * q).reshape(rows, cols)


# ---------------------------------------------------------------- reporting

class Table:
    """Prints rows as they come (so progress shows) and collects failures for a summary."""

    def __init__(self, title, columns, widths, key_columns=3):
        """key_columns: how many leading cells name a row in the failure summary."""
        self.columns, self.widths, self.key_columns = columns, widths, key_columns
        self.failures, self.passed, self.skipped = [], 0, 0
        print(title)
        self._line(columns)
        print("-" * max(sum(widths) + 2 * len(widths), 72))

    def _line(self, cells):
        print("  ".join(str(c).ljust(w) for c, w in zip(cells, self.widths)).rstrip())

    def row(self, cells, status, detail=""):
        """status: PASS, FAIL or SKIP; detail explains FAIL/SKIP."""
        self._line(list(cells) + [status + (f": {detail}" if detail else "")])
        if status == "PASS":
            self.passed += 1
        elif status == "SKIP":
            self.skipped += 1
        else:
            key = " ".join(str(c) for c in list(cells)[:self.key_columns] if str(c))
            self.failures.append(f"{key}: {detail}")

    def finish(self):
        """Prints the failure summary and the closing count; returns the exit status."""
        print()
        if self.failures:
            print(f"FAILURES ({len(self.failures)}):")
            for f in self.failures:
                print(f"  {f}")
        print(f"{self.passed} passed, {len(self.failures)} failed, {self.skipped} skipped")
        return 1 if self.failures else 0
