"""ggml decode check: ggml's own dequantizers read lowbit's bytes exactly as lowbit does.

ggml is libggml-base.so from the llama_cpp package of the running Python (found
through importlib, loaded with ctypes). For every lowbit format, quantize synthetic
weights with lowbit (three distributions, with and without an importance vector,
and scaled copies that push block scales into fp16's subnormal range and towards
its top: 8 cases of 16 x 2048), then decode the bytes with ggml's
type_traits.to_float (for Q8_K the exported dequantize_row_q8_K) and with lowbit,
and require the float32 results to be equal bit for bit (compared as uint32).
A format ggml has no decoder for (Q8_1; F32, which needs none) is listed as SKIP.
Q8_1's s field, which no decoder reads but ggml's q4_1/q5_1 dot products do, must
hold d * sum(qs) as ggml's quantize_row_q8_1_ref defines it (to fp16 rounding).

Run by hand (after building lowbit_interop_tool and running setup_venv.sh):
    ~/.cache/lowbit/venv/bin/python tests/interop/test_ggml_decode.py \\
        --tool build/tests/interop/lowbit_interop_tool [--formats Q4_K,Q6_K]
Exit status 0 when every row passes; a table and a failure summary are printed.
"""
import time

import numpy as np

from interop_common import Ggml, Table, Tool, ToolError, check_decode, decode_cases, parse_args, select_formats


def check_q8_1_sum(table, tool, fmt, cases):
    """Q8_1 blocks are {fp16 d, fp16 s, int8 qs[32]} with s = d * sum(qs). ggml rounds
    d and s to fp16 separately, so allow two fp16 roundings (relative 2^-10) plus
    half an fp16 subnormal step per unit of sum for tiny scales."""
    bad = []
    for label, w, imp in cases:
        try:
            blocks = tool.quantize(fmt, w, imp).reshape(-1, fmt.block_bytes)
        except ToolError as e:
            bad.append(f"[{label}] {e}")
            continue
        d = blocks[:, 0:2].copy().view(np.float16).astype(np.float64).ravel()
        s = blocks[:, 2:4].copy().view(np.float16).astype(np.float64).ravel()
        qsum = blocks[:, 4:].copy().view(np.int8).astype(np.float64).sum(axis=1)
        want = d * qsum
        off = np.flatnonzero(np.abs(s - want) > 2.0**-10 * np.abs(want) + (np.abs(qsum) + 1) * 2.0**-25)
        if off.size:
            i = int(off[0])
            bad.append(f"[{label}] {off.size}/{s.size} blocks; first block {i}: s {s[i]:.9g}, d*sum(qs) {want[i]:.9g}")
    cells = [fmt.name, "layout: s = d*sum(qs)", f"{len(cases) - len(bad)}/{len(cases)}"]
    table.row(cells, "FAIL" if bad else "PASS", "; ".join(bad))


def main():
    args = parse_args(__doc__)
    tool = Tool(args.tool)
    ggml = Ggml()
    start = time.time()
    cases = decode_cases(tool)
    print(f"ggml: {ggml.path}")
    table = Table(f"lowbit bytes decoded by ggml vs lowbit::dequantize, bit for bit ({len(cases)} cases per format)",
                  ["format", "decoder", "cases", "result"], [7, 22, 6, 0], key_columns=1)
    for fmt in select_formats(tool, args.formats):
        if fmt.name == "Q8_1":
            check_q8_1_sum(table, tool, fmt, cases)
        fn, how = ggml.to_float_fn(fmt)
        if fn is None:
            table.row([fmt.name, "", ""], "SKIP", how)
            continue
        check_decode(table, tool, fmt, cases,
                     lambda data, rows, cols, fn=fn: ggml.dequantize(fn, data, rows, cols), how)
    print(f"\n({time.time() - start:.1f} s)")
    return table.finish()


if __name__ == "__main__":
    raise SystemExit(main())
