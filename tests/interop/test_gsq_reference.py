"""GSQ against the independent numpy reference (tests/reference/gsq_ref.py).

For absmax / min-max (rtn), mse and importance searches, every scheme, bits
2/3/4/8 and group sizes 32/128/per-channel, on heavy-tailed and Gaussian data:
lowbit's codes, scales, zero points and minimums must equal the reference's
exactly.

Then the GSQ quality bar against ggml (libggml-base from llama-cpp-python) on
the three synthetic distributions: 4-bit symmetric group-32 GSQ with the mse
search is no worse than ggml's Q4_0 (same math, same 4.5 bits), and 4-bit
asymmetric group-32 GSQ (integer zero, 4.625 bits, and float minimum, 5.0 bits)
no worse than ggml's Q4_1 (5.0 bits).

By hand:  python tests/interop/test_gsq_reference.py --tool build/tests/interop/lowbit_interop_tool
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import gsq_ref  # noqa: E402
from interop_common import DISTRIBUTIONS, Ggml, Tool, relative_rmse  # noqa: E402


def run_lowbit(tool, w, imp, bits, group, scheme, search):
    rows, cols = w.shape
    g = cols if group == 0 else group
    _, (codes, scales, zeros, mins) = tool._run(
        ["gsq", bits, group, scheme, search, rows, cols, "<in0>", "<in1>" if imp is not None else "-",
         "<out0>", "<out1>", "<out2>", "<out3>"],
        inputs=[w] + ([imp] if imp is not None else []), n_outputs=4)
    shape = (rows, cols // g)
    return (codes.reshape(rows, cols).astype(np.int64), scales.view(np.float32).reshape(shape),
            zeros.view(np.int32).reshape(shape).astype(np.int64), mins.view(np.float32).reshape(shape))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", required=True)
    args = ap.parse_args()
    tool = Tool(args.tool)
    passed = failed = 0
    failures = []
    for dist in ("heavy_tailed", "gaussian"):
        w, imp = tool.gen(dist, 12, 512, 21)
        imp = imp.copy()
        imp[40:72] = 0.0  # one group of zero importance: the documented fallback
        for search in ("rtn", "mse", "importance"):
            for scheme in ("sym", "asym", "asym-fmin"):
                for bits in (2, 3, 4, 8):
                    for group in (32, 128, 0):
                        ours = run_lowbit(tool, w, imp if search == "importance" else None, bits, group, scheme, search)
                        ref = gsq_ref.quantize(w, bits, group, scheme, search, imp)
                        names = ("codes", "scales", "zeros", "mins")
                        bad = [n for n, a, b in zip(names, ours, ref) if not np.array_equal(a, b)]
                        case = f"{dist:12s} {search:10s} {scheme:9s} {bits}-bit g{group}"
                        if bad:
                            failed += 1
                            n = bad[0]
                            a, b = ours[names.index(n)], ref[names.index(n)]
                            idx = np.argwhere(a != b)[0]
                            failures.append(f"{case}: {', '.join(bad)} differ; first {n}{tuple(idx)}: "
                                            f"lowbit {a[tuple(idx)]!r} reference {b[tuple(idx)]!r} "
                                            f"({int((a != b).sum())} of {a.size})")
                        else:
                            passed += 1
    # Quality against ggml's legacy formats with the same math.
    ggml = Ggml()
    fmts = {f.name: f for f in tool.formats()}
    print(f"{'distribution':13s} {'GSQ 4-bit g32':22s} {'bits':>6s} {'GSQ RMSE':>9s} {'ggml':>6s} {'ggml RMSE':>9s} {'ratio':>6s}")
    for dist in DISTRIBUTIONS:
        w, _ = tool.gen(dist, 128, 4096, 1)
        for scheme, bits_per_weight, peer in (("sym", 4.5, "Q4_0"), ("asym", 4.625, "Q4_1"), ("asym-fmin", 5.0, "Q4_1")):
            codes, scales, zeros, mins = run_lowbit(tool, w, None, 4, 32, scheme, "mse")
            s_ = np.repeat(scales, 32, axis=1)
            if scheme == "asym-fmin":
                deq = s_ * codes.astype(np.float32) + np.repeat(mins, 32, axis=1)
            else:
                deq = s_ * (codes - np.repeat(zeros, 32, axis=1)).astype(np.float32)
            ours = relative_rmse(w, deq)
            fn, _ = ggml.to_float_fn(fmts[peer])
            theirs = relative_rmse(w, ggml.dequantize(fn, ggml.quantize(fmts[peer], w), 128, 4096))
            ok = ours <= theirs
            passed, failed = passed + ok, failed + (not ok)
            print(f"{dist:13s} {scheme + ' mse':22s} {bits_per_weight:6.3f} {ours:9.5f} {peer:>6s} {theirs:9.5f} "
                  f"{ours / theirs:6.3f} {'ok' if ok else 'FAIL'}")
            if not ok:
                failures.append(f"{dist} GSQ 4-bit g32 {scheme} mse RMSE {ours:.5f} > ggml {peer} {theirs:.5f}")

    for f in failures:
        print("FAIL", f)
    print(f"gsq reference: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
