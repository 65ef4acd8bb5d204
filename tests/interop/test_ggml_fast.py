"""ggml identity check: lowbit's `fast` effort is ggml's own quantizer.

For the formats whose `fast` search reproduces ggml's (ggml_quantize_chunk of
libggml-base, through ctypes) and on 128 x 4096 synthetic matrices (seed 1;
heavy_tailed, gaussian and outliers), with and without the importance vector as
imatrix: every block's bytes must equal ggml's. The only differences lowbit allows
itself (docs/formats.md#effort-levels: fp16 saturation, overflowing inverse scales,
all-zero importance) cannot occur on these inputs, so a single differing block fails.
A second check, on blocks whose objective is degenerate (constant, two-level,
alternating-sign, one-spike and on-grid rows), requires the same.

Run by hand (after building lowbit_interop_tool and running setup_venv.sh):
    ~/.cache/lowbit/venv/bin/python tests/interop/test_ggml_fast.py \\
        --tool build/tests/interop/lowbit_interop_tool [--formats Q4_0,IQ4_XS]
"""
import time

import numpy as np

from interop_common import DISTRIBUTIONS, Ggml, Table, Tool, ToolError, parse_args, select_formats

ROWS, COLS, SEED = 128, 4096, 1
FAST_IS_GGML = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL", "IQ4_XS")


def patterns(cols, seed=3):
    """Rows whose blocks are degenerate for a scale search: the cases where lowbit's
    default search once lost to ggml's (issue 11)."""
    rng = np.random.default_rng(seed)
    j = np.arange(cols)
    rows = [
        np.full(cols, 0.37),                                   # constant
        np.where(j % 7 < 3, -0.8, 1.3),                        # two levels
        np.where(j % 2 == 0, 1.0, -1.0) * (1 + (j // 32) % 5),  # alternating signs
        np.where(j % 32 == 11, 9.0, 0.01 * rng.standard_normal(cols)),  # one spike per block
        0.05 * rng.integers(0, 16, cols) - 0.4,                # on a 16-level grid (decoded Q4_1-like)
        0.031 * (rng.integers(0, 16, cols) - 8),               # on a symmetric grid (decoded Q4_0-like)
    ]
    return np.asarray(rows, dtype=np.float32)


def block_diff(fmt, ours, theirs):
    a = ours.reshape(-1, fmt.block_bytes)
    b = theirs.reshape(-1, fmt.block_bytes)
    bad = np.flatnonzero((a != b).any(axis=1))
    return bad, a.shape[0]


def check(table, tool, ggml, fmt, name, w, imp):
    cells = [fmt.name, name, "imatrix" if imp is not None else "none"]
    try:
        ours = tool.quantize(fmt, w, imp, effort="fast")
    except ToolError as e:
        table.row(cells, "FAIL", str(e))
        return
    theirs = ggml.quantize(fmt, w, imp)
    bad, total = block_diff(fmt, ours, theirs)
    if bad.size == 0:
        table.row(cells, "PASS", f"{total} blocks identical to ggml_quantize_chunk")
    else:
        table.row(cells, "FAIL", f"{bad.size}/{total} blocks differ from ggml's, first block {bad[0]}")


def main():
    args = parse_args(__doc__)
    tool = Tool(args.tool)
    ggml = Ggml()
    start = time.time()
    fmts = [f for f in select_formats(tool, args.formats) if f.name in FAST_IS_GGML]
    table = Table(f"lowbit fast vs ggml_quantize_chunk, block by block ({ROWS}x{COLS}, seed {SEED})",
                  ["format", "data", "imatrix", "result"], [7, 13, 8, 0])
    data = {dist: tool.gen(dist, ROWS, COLS, SEED) for dist in DISTRIBUTIONS}
    degenerate = patterns(COLS)
    for fmt in fmts:
        for dist, (w, imp) in data.items():
            for importance in (None, imp):
                check(table, tool, ggml, fmt, dist, w, importance)
        imp = data[next(iter(data))][1]
        for importance in (None, imp):
            check(table, tool, ggml, fmt, "degenerate", degenerate, importance)
    print(f"\n({time.time() - start:.1f} s)")
    return table.finish()


if __name__ == "__main__":
    raise SystemExit(main())
