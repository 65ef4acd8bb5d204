"""Measures lowbit's reference quantizers next to ggml's on one synthetic matrix and
prints a markdown table for docs/formats.md: relative RMSE without importance, and
importance-weighted RMSE with it (ggml given the same vector as imatrix). Speeds
come from benchmarks/bench_quantize, which times ggml's quantizers in the same run.

    ~/.cache/lowbit/venv/bin/python scripts/compare_ggml.py \
        --tool build/tests/interop/lowbit_interop_tool [--rows 4096 --cols 4096 --dist heavy_tailed]

Uses the interop helpers (tests/interop/interop_common.py) and the venv that
`make test` creates.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
from interop_common import Ggml, Tool, dequantize_q8_1_numpy, relative_rmse  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--dist", default="heavy_tailed")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    tool, ggml = Tool(a.tool), Ggml()
    w, imp = tool.gen(a.dist, a.rows, a.cols, a.seed)
    print(f"{a.rows} x {a.cols} {a.dist} (seed {a.seed})\n")
    print("| format | bits/wt | rel. RMSE lowbit | ggml | ratio | weighted lowbit | ggml (imatrix) | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt in tool.formats():
        if not fmt.quantized:
            continue
        row = [fmt.name, f"{8 * fmt.block_bytes / fmt.block_elems:.4g}"]
        ours = tool.dequantize(fmt, tool.quantize(fmt, w), *w.shape)
        theirs_q = ggml.quantize(fmt, w)
        fn, _ = ggml.to_float_fn(fmt)
        theirs = ggml.dequantize(fn, theirs_q, *w.shape) if fn else dequantize_q8_1_numpy(theirs_q, *w.shape)
        e0, e1 = relative_rmse(w, ours), relative_rmse(w, theirs)
        row += [f"{e0:.5f}", f"{e1:.5f}", f"{e0 / e1:.3f}"]
        ours_w = relative_rmse(w, tool.dequantize(fmt, tool.quantize(fmt, w, imp), *w.shape), imp)
        if fmt.name in ("Q8_1", "Q8_K"):
            row += [f"{ours_w:.5f}", "n/a", ""]
        else:
            data = ggml.quantize(fmt, w, imp)
            theirs_w = relative_rmse(w, ggml.dequantize(fn, data, *w.shape), imp)
            row += [f"{ours_w:.5f}", f"{theirs_w:.5f}", f"{ours_w / theirs_w:.3f}"]
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
