"""scripts/study.py (the quality study of docs/quality.md) on one type, small windows:
every method's file is made, scored and benchmarked, and the doc section and plots
are written. Checks what must hold whatever the numbers: lowbit's Q4_0 files have the
tensor bytes of llama.cpp's made with the same information (lowbit follows
llama-quantize's per-tensor rules; an imatrix changes some of them, so the files
with one are compared among themselves), every metric is finite and in range, both
speed columns are filled, and the doc between the study markers names every
row. About a minute on two cores; the real study runs by hand (docs/quality.md).

  ~/.cache/lowbit/venv/bin/python tests/interop/test_study_smoke.py --lowbit build/tools/lowbit/lowbit \\
      --tool build/tests/interop/lowbit_interop_tool
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

from interop_common import Table

HERE = os.path.dirname(os.path.abspath(__file__))
STUDY = os.path.join(HERE, "..", "..", "scripts", "study.py")
METHODS = ["llama", "llama+imat", "lowbit", "lowbit+imat", "lowbit gptq"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lowbit", required=True)
    p.add_argument("--tool", required=True)
    args = p.parse_args()
    r = subprocess.run(["bash", os.path.join(HERE, "build_llama_tools.sh"), "--find"], capture_output=True)
    if r.returncode != 0:
        print("SKIPPED: no llama.cpp tools build (tests/interop/build_llama_tools.sh could not build them)")
        return 77
    table = Table("scripts/study.py smoke run (Q4_0)", ["check", "result", "status"], [30, 50, 6], key_columns=1)
    with tempfile.TemporaryDirectory(prefix="lowbit_study_") as tmp:
        docs = os.path.join(tmp, "docs")
        os.makedirs(docs)
        cmd = [sys.executable, STUDY, "--lowbit", args.lowbit, "--tool", args.tool, "--threads", "2",
               "--work", os.path.join(tmp, "work"), "--docs", docs, "--types", "Q4_0", "--no-gsq", "--ctx", "128",
               "--chunks", "1", "--cal-ctx", "128", "--cal-chunks", "2", "--pp", "32", "--tg", "4", "--reps", "1"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        print(r.stdout[-3000:])
        if r.returncode != 0:
            table.row(["study.py"], "FAIL", f"exit status {r.returncode}: {r.stderr.strip()[-1500:]}")
            return table.finish()
        rows = json.load(open(os.path.join(docs, "quality_study.json")))["rows"]
        got = sorted(x["method"] for x in rows)
        table.row(["rows", ", ".join(got)], "PASS" if got == sorted(METHODS) else "FAIL",
                  "" if got == sorted(METHODS) else f"expected {METHODS}")
        # lowbit follows llama-quantize's per-tensor rules: the same tensor bytes as
        # llama.cpp's file made with the same information (an imatrix changes the rules'
        # choices for some tensors; metadata such as the imatrix's name changes only the
        # file size).
        data = {x["method"]: x["data_bytes"] for x in rows}
        for group in (("llama", "lowbit"), ("llama+imat", "lowbit+imat", "lowbit gptq")):
            got = {data[m] for m in group}
            table.row([f"Q4_0 tensor bytes, {' = '.join(group)}", f"{sorted(got)}"], "PASS" if len(got) == 1 else "FAIL",
                      "" if len(got) == 1 else "lowbit's tensors must have llama-quantize's types and sizes")
        for x in rows:
            fin = all(isinstance(x[k], (int, float)) and math.isfinite(x[k]) for k in
                      ("ppl", "kld_mean", "kld_p99", "top1", "pp", "tg", "llama_pp", "llama_tg", "bpw"))
            ok = fin and x["ppl"] > 1 and 0 <= x["kld_mean"] <= x["kld_p99"] + 1e-12 and 0 < x["top1"] <= 1 \
                and min(x["pp"], x["tg"], x["llama_pp"], x["llama_tg"]) > 0 and 4 < x["bpw"] < 9
            table.row([f"row {x['method']}", f"ppl {x['ppl']:.3f} kld {x['kld_mean']:.4f} bpw {x['bpw']:.3f}"],
                      "PASS" if ok else "FAIL", "" if ok else f"out of range: {x}")
        doc = open(os.path.join(docs, "quality.md")).read()
        ok = "<!-- study:begin -->" in doc and "<!-- study:end -->" in doc and all(
            f"| Q4_0 | {m} |" in doc for m in METHODS)
        pngs = all(os.path.getsize(os.path.join(docs, n)) > 1000 for n in ("quality_kld_bpw.png", "quality_speed_size.png"))
        table.row(["doc and plots", "quality.md section, two PNGs"], "PASS" if ok and pngs else "FAIL",
                  "" if ok and pngs else "missing rows, markers or plots")
    return table.finish()


if __name__ == "__main__":
    sys.exit(main())
