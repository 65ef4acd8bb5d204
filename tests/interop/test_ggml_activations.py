"""Activation quantization against ggml: lowbit::quantize_activations writes the bytes
of ggml's quantize_row_q8_0_ref / q8_1_ref / q8_K_ref (libggml-base, through ctypes)
for the same float32 input, with every CPU-feature set lowbit offers on this machine
(LOWBIT_ISA=scalar and the default dispatch).

Inputs: three weight-like distributions and activation-like data at several scales,
rows made of exact rounding ties (k + 0.5 steps, where roundf and round-half-even
differ), a block whose largest magnitude is negative and appears twice, all-zero
blocks, and values near fp16's range for the Q8_0/Q8_1 scale.

Run by hand (after building lowbit_interop_tool and running setup_venv.sh):
    ~/.cache/lowbit/venv/bin/python tests/interop/test_ggml_activations.py \\
        --tool build/tests/interop/lowbit_interop_tool
"""
import numpy as np

from interop_common import DISTRIBUTIONS, Ggml, Table, Tool, ToolError, parse_args, select_formats


def cases(tool):
    rng = np.random.default_rng(11)
    out = []
    for dist in DISTRIBUTIONS:
        w, _ = tool.gen(dist, 8, 1024, 5)
        out.append((dist, w))
    for scale in (1e-6, 1e-3, 1.0, 1e3, 5e4):
        out.append((f"normal*{scale:g}", (rng.standard_normal((4, 1024)) * scale).astype(np.float32)))
    # Exact ties: amax 127 makes d = 1 and id = 1, so x = k + 0.5 rounds away from zero
    # in Q8_0/Q8_1 (roundf) and to even in Q8_K (its iscale is -127/max = -1 here too).
    ties = np.tile(np.arange(-126.5, 127.0, 1.0, dtype=np.float32), 8)[:1024].reshape(4, 256)
    ties[:, ::32] = 127.0  # every 32-element block's amax is 127
    ties[:, 1] = -127.0    # two of the largest magnitude in a block, the first positive
    out.append(("ties", ties))
    neg = (rng.standard_normal((2, 512)) * 0.1).astype(np.float32)
    neg[:, 3] = -9.0  # largest magnitude negative: Q8_K's iscale flips sign
    neg[:, 300] = -9.0
    out.append(("negative-max", neg))
    zeros = np.zeros((2, 512), dtype=np.float32)
    zeros[1, 256:] = 1.0
    out.append(("zero-blocks", zeros))
    return out


def main():
    args = parse_args(__doc__)
    tool = Tool(args.tool)
    ggml = Ggml()
    print(f"ggml: {ggml.path}")
    table = Table("lowbit::quantize_activations vs ggml quantize_row_*_ref, byte for byte",
                  ["format", "isa", "cases", "result"], [6, 8, 6, 0], key_columns=2)
    fns = {"Q8_0": ggml.lib.quantize_row_q8_0_ref, "Q8_1": ggml.lib.quantize_row_q8_1_ref,
           "Q8_K": ggml.lib.quantize_row_q8_K_ref}
    all_cases = cases(tool)
    for fmt in select_formats(tool, args.formats):
        if fmt.name not in fns:
            continue
        for isa in ("scalar", None):
            bad = []
            for label, x in all_cases:
                rows, cols = x.shape
                want = np.zeros(fmt.nbytes(rows, cols), dtype=np.uint8)
                fns[fmt.name](np.ascontiguousarray(x).ctypes.data, want.ctypes.data, rows * cols)
                try:
                    got = tool.quantize_activations(fmt, x, isa)
                except ToolError as e:
                    bad.append(f"[{label}] {e}")
                    continue
                diff = np.flatnonzero(got != want)
                if diff.size:
                    i = int(diff[0])
                    bad.append(f"[{label}] {diff.size} bytes differ; first at byte {i} (block {i // fmt.block_bytes}):"
                               f" ggml {want[i]}, lowbit {got[i]}")
            table.row([fmt.name, isa or "default", f"{len(all_cases) - len(bad)}/{len(all_cases)}"],
                      "FAIL" if bad else "PASS", "; ".join(bad))
    return table.finish()


if __name__ == "__main__":
    raise SystemExit(main())
