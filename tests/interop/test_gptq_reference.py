"""GPTQ against the independent numpy reference (tests/reference/gptq_ref.py).

Random layers with correlated, LLM-like activations (a low-rank shared component
and a few channels 10-100x larger). For each configuration lowbit's codes must
equal the reference's except for at most 0.1% that differ by exactly one step
(float32 summation order differs between the two), g_idx must be identical, and
the layer output error ||X (W - Q)^T||^2 / ||X W^T||^2 must agree to 1e-4 relative.

By hand:  python tests/interop/test_gptq_reference.py --tool build/tests/interop/lowbit_interop_tool
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import gptq_ref  # noqa: E402
from interop_common import Tool  # noqa: E402

CASES = [  # bits, group, scheme, search, act_order, static_groups
    (4, 128, "asym", "rtn", 0, 0),
    (4, 128, "asym", "rtn", 1, 0),
    (4, 128, "asym", "rtn", 1, 1),
    (4, 64, "sym", "mse", 0, 0),
    (3, 32, "sym", "rtn", 1, 0),
    (3, 128, "asym", "mse", 1, 0),
    (2, 0, "asym-fmin", "rtn", 1, 0),
    (8, 128, "sym", "rtn", 0, 0),
    (4, 128, "asym", "importance", 0, 0),
    (3, 64, "sym", "importance", 1, 0),
]


def activations(rng, tokens, cols):
    z = rng.standard_normal((tokens, 16))
    mix = 0.5 * rng.standard_normal((16, cols))
    scale = np.exp(0.5 * rng.standard_normal(cols))
    big = rng.random(cols) < 1 / 32
    scale[big] *= 10 ** (1 + rng.random(big.sum()))
    return ((z @ mix + rng.standard_normal((tokens, cols))) * scale).astype(np.float32)


def decode(codes, scales, zeros, mins, g_idx, scheme):
    s, z, m = scales[:, g_idx], zeros[:, g_idx], mins[:, g_idx]
    if scheme == "asym-fmin":
        return s * codes.astype(np.float32) + m
    return s * (codes - z).astype(np.float32)


def output_error(w, q, h):
    e = (w - q).astype(np.float64)
    w = w.astype(np.float64)
    return float(np.einsum("ri,ij,rj->", e, h, e) / np.einsum("ri,ij,rj->", w, h, w))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True)
    args = ap.parse_args()
    tool = Tool(args.tool)
    rng = np.random.default_rng(1234)
    rows, cols, tokens = 300, 512, 2048  # 300 rows: two row chunks in the solver, the second short
    w, _ = tool.gen("heavy_tailed", rows, cols, 5)
    x = activations(rng, tokens, cols)
    x[:, 7] = 0.0  # a dead input channel
    h = (2.0 / tokens * (x.astype(np.float64).T @ x.astype(np.float64))).astype(np.float32)
    h64 = h.astype(np.float64)
    passed = failed = 0
    print(f"{'case':34s} {'differ':>8s} {'max step':>8s} {'err lowbit':>11s} {'err ref':>11s} {'rel diff':>9s}")
    for bits, group, scheme, search, act, static in CASES:
        case = f"{bits}-bit g{group} {scheme} {search} act={act} static={static}"
        _, (codes, scales, zeros, mins, gidx) = tool._run(
            ["gptq", bits, group, scheme, search, act, static, rows, cols, "<in0>", "<in1>",
             "<out0>", "<out1>", "<out2>", "<out3>", "<out4>"], inputs=[w, h], n_outputs=5)
        ng = cols // (cols if group == 0 else group)
        ours = (codes.reshape(rows, cols).astype(np.int64), scales.view(np.float32).reshape(rows, ng),
                zeros.view(np.int32).reshape(rows, ng).astype(np.int64), mins.view(np.float32).reshape(rows, ng),
                gidx.view(np.int32).astype(np.int64))
        ref = gptq_ref.gptq(w, h, bits, group, scheme, search, bool(act), bool(static), importance=np.diag(h) / 2)
        diff = np.abs(ours[0] - ref[0])
        frac = float((diff != 0).mean())
        q_ours = decode(*ours, scheme)
        q_ref = decode(*ref, scheme)
        e_ours, e_ref = output_error(w, q_ours, h64), output_error(w, q_ref, h64)
        rel = abs(e_ours - e_ref) / e_ref
        ok = frac <= 1e-3 and diff.max() <= 1 and np.array_equal(ours[4], ref[4]) and rel <= 1e-4
        passed, failed = passed + ok, failed + (not ok)
        print(f"{case:34s} {frac:8.5f} {int(diff.max()):8d} {e_ours:11.6f} {e_ref:11.6f} {rel:9.2e} {'ok' if ok else 'FAIL'}")
    print(f"gptq reference: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
