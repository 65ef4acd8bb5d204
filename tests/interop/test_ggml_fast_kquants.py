"""The K-quants' `fast` effort is ggml's own quantizer, and the default and best
efforts never lose a block to it.

ggml is libggml-base.so from the llama_cpp package of the interop venv (loaded with
ctypes, as in test_ggml_quality.py). On 64 x 4096 synthetic matrices (seed 1;
heavy_tailed, gaussian, outliers) plus a matrix that already lies on a Q4_K grid
(lowbit's Q4_K of heavy_tailed with importance, decoded), with and without the
importance vector as imatrix, for Q2_K, Q3_K, Q4_K, Q5_K and Q6_K:

  fast     lowbit::quantize(effort=fast) against ggml_quantize_chunk, per 256-element
           block: the share of blocks whose bytes are identical must be at least
           MIN_IDENTICAL (the float operations are ggml's, in ggml's order; a block
           can still differ where the compiler that built libggml contracted a
           multiply-add into an FMA, which rounds once instead of twice, and a
           near-tie between two trial scales tips the other way).
  default  lowbit::quantize(effort=default) never worse than ggml's block on the
  best     objective sum_i imp_i (x_i - decoded_i)^2 (imp = 1 without importance),
           float64, decoded by ggml, except on blocks where lowbit's fast already
           differs from ggml's bytes (there "ggml's block" is a float-rounding coin
           flip away; those are counted and reported, never hidden).

Run by hand (after building lowbit_interop_tool and running setup_venv.sh):
    ~/.cache/lowbit/venv/bin/python tests/interop/test_ggml_fast_kquants.py \\
        --tool build/tests/interop/lowbit_interop_tool [--formats Q4_K,Q6_K]
Exit status 0 when every row passes.
"""
import time

import numpy as np

from interop_common import DISTRIBUTIONS, Ggml, Table, Tool, ToolError, parse_args, select_formats

ROWS, COLS, SEED = 64, 4096, 1
QK = 256
KQUANTS = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
MIN_IDENTICAL = 0.99


def block_objective(w, deq, imp):
    """Per-block sum imp * (w - deq)^2 in float64, blocks in row-major order."""
    e = (np.asarray(w, dtype=np.float64) - np.asarray(deq, dtype=np.float64)) ** 2
    if imp is not None:
        e = e * np.asarray(imp, dtype=np.float64)[None, :]
    return e.reshape(-1, QK).sum(axis=1)


def main():
    args = parse_args(__doc__)
    tool = Tool(args.tool)
    ggml = Ggml()
    start = time.time()
    fmts = [f for f in select_formats(tool, args.formats) if f.name in KQUANTS]
    table = Table(f"K-quant efforts vs ggml_quantize_chunk ({ROWS}x{COLS}, seed {SEED})",
                  ["format", "data", "imatrix", "check", "blocks", "result"], [6, 13, 8, 8, 24, 0])
    data = {dist: tool.gen(dist, ROWS, COLS, SEED) for dist in DISTRIBUTIONS}
    q4k = next(f for f in tool.formats() if f.name == "Q4_K")
    w, imp = data["heavy_tailed"]
    data["q4_K_grid"] = (tool.dequantize(q4k, tool.quantize(q4k, w, imp), ROWS, COLS), imp)
    for fmt in fmts:
        to_float, _ = ggml.to_float_fn(fmt)
        for name, (w, imp_all) in data.items():
            for imp in (None, imp_all):
                cells = [fmt.name, name, "yes" if imp is not None else "no"]
                theirs = ggml.quantize(fmt, w, imp)
                try:
                    fast = tool.quantize(fmt, w, imp, "fast")
                except ToolError as e:
                    table.row(cells + ["fast", ""], "FAIL", str(e))
                    continue
                same = np.all(fast.reshape(-1, fmt.block_bytes) == theirs.reshape(-1, fmt.block_bytes), axis=1)
                share = same.mean()
                cells_fast = cells + ["fast", f"{same.sum()}/{same.size} identical"]
                if share >= MIN_IDENTICAL:
                    table.row(cells_fast, "PASS")
                else:
                    table.row(cells_fast, "FAIL", f"only {share:.4f} of blocks identical to ggml's (need {MIN_IDENTICAL})")
                e_ggml = block_objective(w, ggml.dequantize(to_float, theirs, ROWS, COLS), imp)
                for effort in ("default", "best"):
                    try:
                        ours = tool.quantize(fmt, w, imp, effort)
                    except ToolError as e:
                        table.row(cells + [effort, ""], "FAIL", str(e))
                        continue
                    e_ours = block_objective(w, ggml.dequantize(to_float, ours, ROWS, COLS), imp)
                    worse = e_ours > e_ggml * (1 + 1e-9)
                    bad = worse & same
                    note = f"{int(worse.sum())} worse, all where fast differs" if worse.any() else ""
                    total = f"sum {e_ours.sum() / e_ggml.sum():.4f}x ggml"
                    c = cells + [effort, total]
                    if bad.any():
                        i = int(np.flatnonzero(bad)[0])
                        table.row(c, "FAIL", f"{int(bad.sum())} blocks worse than ggml's, first {i}: "
                                             f"{e_ours[i]:.6e} > {e_ggml[i]:.6e}")
                    else:
                        table.row(c, "PASS", note)
    print(f"\n({time.time() - start:.1f} s)")
    return table.finish()


if __name__ == "__main__":
    raise SystemExit(main())
