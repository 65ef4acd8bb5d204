"""ggml quality check: lowbit's quantizers are at least as accurate as ggml's own.

ggml is libggml-base.so from the llama_cpp package of the running Python (found
through importlib, loaded with ctypes). On 128 x 4096 synthetic matrices (seed 1;
heavy_tailed, gaussian and outliers) and for every quantized lowbit format:

  rmse    ours: lowbit::quantize without importance, decoded by lowbit
          ggml: ggml_quantize_chunk(imatrix=NULL) (Q8_1/Q8_K: quantize_row_*_ref),
                decoded by ggml (Q8_1, which ggml cannot decode: y = d*q from its layout)
          metric ||W - deq||_F / ||W||_F, both in float64; require ours <= ggml
  w-rmse  ours: lowbit::quantize with the importance vector
          ggml: ggml_quantize_chunk with the same vector as imatrix
          metric sqrt(sum_j imp_j sum_i (w_ij - deq_ij)^2 / sum_j imp_j sum_i w_ij^2);
          require ours <= ggml. Q8_1/Q8_K have no ggml imatrix quantizer: SKIP.

ratio = ours / ggml (below 1 means lowbit is more accurate). The plain float formats
(F32, F16, BF16) have nothing to search, so their bytes must equal ggml's exactly.

Run by hand (after building lowbit_interop_tool and running setup_venv.sh):
    ~/.cache/lowbit/venv/bin/python tests/interop/test_ggml_quality.py \\
        --tool build/tests/interop/lowbit_interop_tool [--formats Q4_K,Q6_K]
Exit status 0 when every row passes; a table and a failure summary are printed.
"""
import time

import numpy as np

from interop_common import (DISTRIBUTIONS, Ggml, Table, Tool, ToolError, dequantize_q8_1_numpy, parse_args,
                            relative_rmse, select_formats)

ROWS, COLS, SEED = 128, 4096, 1
NO_IMATRIX = ("Q8_1", "Q8_K")  # ggml quantizes these only with quantize_row_*_ref


def ggml_roundtrip(ggml, fmt, w, imp):
    """ggml's quantization of w (imp as imatrix or None), decoded by ggml."""
    data = ggml.quantize(fmt, w, imp)
    fn, _ = ggml.to_float_fn(fmt)
    if fn is not None:
        return ggml.dequantize(fn, data, *w.shape)
    if fmt.name == "Q8_1":
        return dequantize_q8_1_numpy(data, *w.shape)
    raise RuntimeError(f"no way to decode ggml's {fmt.name} bytes")


def check_plain(table, tool, ggml, fmt, dist, w):
    """F32/F16/BF16: one correct answer (round to nearest even), so bytes must match ggml's."""
    cells = [fmt.name, dist, "bytes", "", "", ""]
    try:
        ours = tool.quantize(fmt, w)
    except ToolError as e:
        table.row(cells, "FAIL", str(e))
        return
    theirs = ggml.quantize(fmt, w)
    diff = np.flatnonzero(ours != theirs)
    if diff.size == 0:
        table.row(cells, "PASS", "identical to ggml_quantize_chunk")
    else:
        table.row(cells, "FAIL", f"{diff.size}/{ours.size} bytes differ from ggml's, first at byte {diff[0]}")


def check_quantized(table, tool, ggml, fmt, dist, w, imp):
    variants = [("rmse", None)]
    if fmt.name not in NO_IMATRIX:
        variants.append(("w-rmse", imp))
    for metric, importance in variants:
        cells = [fmt.name, dist, metric]
        # ggml's number first, so a lowbit failure still shows the bar to meet.
        e_ggml = relative_rmse(w, ggml_roundtrip(ggml, fmt, w, importance), importance)
        try:
            ours = tool.dequantize(fmt, tool.quantize(fmt, w, importance), *w.shape)
        except ToolError as e:
            table.row(cells + ["", f"{e_ggml:.6e}", ""], "FAIL", str(e))
            continue
        e_ours = relative_rmse(w, ours, importance)
        ratio = e_ours / e_ggml if e_ggml > 0 else (1.0 if e_ours == 0 else float("inf"))
        nums = [f"{e_ours:.6e}", f"{e_ggml:.6e}", f"{ratio:.4f}"]
        if e_ours <= e_ggml:
            table.row(cells + nums, "PASS")
        else:
            table.row(cells + nums, "FAIL", f"lowbit {metric} {e_ours:.6e} > ggml {e_ggml:.6e} "
                                            f"(ratio {ratio:.4f}, {ROWS}x{COLS} seed {SEED})")
    if fmt.name in NO_IMATRIX:
        table.row([fmt.name, dist, "w-rmse", "", "", ""], "SKIP", "ggml has no imatrix quantizer for it")


def main():
    args = parse_args(__doc__)
    tool = Tool(args.tool)
    ggml = Ggml()
    start = time.time()
    fmts = select_formats(tool, args.formats)
    table = Table(f"quantization error, lowbit vs ggml ({ROWS}x{COLS}, seed {SEED}; ratio = ours/ggml)",
                  ["format", "dist", "metric", "ours", "ggml", "ratio", "result"], [7, 13, 7, 13, 13, 7, 0])
    data = {dist: tool.gen(dist, ROWS, COLS, SEED) for dist in DISTRIBUTIONS}
    for fmt in fmts:
        for dist, (w, imp) in data.items():
            if fmt.quantized:
                check_quantized(table, tool, ggml, fmt, dist, w, imp)
            else:
                check_plain(table, tool, ggml, fmt, dist, w)
    print(f"\n({time.time() - start:.1f} s)")
    return table.finish()


if __name__ == "__main__":
    raise SystemExit(main())
