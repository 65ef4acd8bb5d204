#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: build lowbit with CUDA (Release),
# run the `gpu` tests, run the CUDA benchmarks into JSON, print a summary of the
# ratios the CUDA targets are stated in (docs/benchmarks.md, "CUDA").
#
#   scripts/gpu-check.sh [out_dir]        (default: gpu-check/)
#
# Environment: JOBS (default: nproc), CUDA_ARCH (default 90, the H100/H200; the
# library's own default is 80;89;90), BUILD_DIR (default build-gpu), BENCH_FILTER
# (a --benchmark_filter regex, default: everything). Written to finish within about
# 8 minutes on a 16-core H200 machine: only the targets the check needs are built,
# for one architecture.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check}
JOBS=${JOBS:-$(nproc)}
CUDA_ARCH=${CUDA_ARCH:-90}
BUILD_DIR=${BUILD_DIR:-build-gpu}
mkdir -p "$OUT"
t0=$(date +%s)

command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

echo "== configure + build (CUDA arch $CUDA_ARCH, -j$JOBS)"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DLOWBIT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" \
  -DLOWBIT_BUILD_TESTS=ON -DLOWBIT_BUILD_BENCHMARKS=ON -DLOWBIT_BUILD_EXAMPLES=OFF > "$OUT/configure.log" 2>&1 \
  || { tail -30 "$OUT/configure.log"; echo "gpu-check: configure failed (dependencies: scripts/install-deps.sh)"; exit 1; }
cmake --build "$BUILD_DIR" -j "$JOBS" --target test_cuda test_cuda_common bench_cuda > "$OUT/build.log" 2>&1 \
  || { tail -50 "$OUT/build.log"; exit 1; }
t_build=$(date +%s)
echo "   built in $((t_build - t0)) s"

echo "== ctest -L gpu and the shared-math unit tests"
test_rc=0
(cd "$BUILD_DIR" && ctest --output-on-failure -j 4 -L gpu --timeout 300 &&
  ctest --output-on-failure -j 4 -R 'SharedBlockMath|SharedMath' --timeout 300) > "$OUT/ctest.log" 2>&1 || test_rc=$?
tail -15 "$OUT/ctest.log"
"$BUILD_DIR/tests/test_cuda" --gtest_filter='*Gptq*' > "$OUT/gptq_test.txt" 2>&1 || true
grep -E '^GPTQ' "$OUT/gptq_test.txt" | tee "$OUT/gptq_agreement.txt" || true
t_test=$(date +%s)

echo "== benchmarks"
bench_rc=0
"$BUILD_DIR/benchmarks/bench_cuda" --benchmark_out="$OUT/bench_cuda.json" --benchmark_out_format=json \
  --benchmark_min_time=0.2 ${BENCH_FILTER:+--benchmark_filter="$BENCH_FILTER"} > "$OUT/bench_cuda.txt" 2>&1 || bench_rc=$?
t_bench=$(date +%s)

echo "== summary"
python3 - "$OUT/bench_cuda.json" <<'PY' | tee "$OUT/summary.txt"
import json, sys, re
try:
    data = json.load(open(sys.argv[1]))
except Exception as e:
    print("no benchmark JSON:", e); sys.exit(0)
print("device:", data.get("context", {}).get("device", "?"))
for b in data["benchmarks"]:
    if b.get("error_occurred"):
        print(f"  benchmark error: {b['name']}: {b.get('error_message', '?')}")
def short(name):  # "Gemv/Q4_K/1/manual_time" -> "Gemv/Q4_K/1"
    return "/".join(p for p in name.split("/") if p != "manual_time" and ":" not in p)
runs = {short(b["name"]): b for b in data["benchmarks"]
        if b.get("run_type", "iteration") == "iteration" and not b.get("error_occurred")}
copy = next((b["bytes/s"] for n, b in runs.items() if n.startswith("Copy")), None)
if copy:
    print(f"copy (read+write) {copy/1e9:.0f} GB/s")
    print("GEMV effective bandwidth / copy bandwidth (target >= 0.85 for Q4_K, Q8_0, GSQ int4 g128 at batch 1):")
    for n, b in runs.items():
        if n.startswith("Gemv/"):
            print(f"  {n:32s} {b['bytes/s']/1e9:7.0f} GB/s  {b['bytes/s']/copy:5.2f}")
peer = {n.rsplit("/", 1)[-1]: b["FLOP/s"] for n, b in runs.items() if n.startswith("Gemm/cuBLAS_f16/")}
print("GEMM TFLOP/s and speed-up over cuBLAS f16 (target >= 3x for int4 at batch 16):")
for n, b in runs.items():
    if n.startswith("Gemm/"):
        batch = n.rsplit("/", 1)[-1]
        ratio = b["FLOP/s"] / peer[batch] if batch in peer else float("nan")
        print(f"  {n:32s} {b['FLOP/s']/1e12:7.1f}  x{ratio:4.2f}")
print("GPTQ (target <= 50 ms for 4096 x 4096):")
for n, b in runs.items():
    if n.startswith("Gptq"):
        print(f"  {n:32s} {b['real_time']:8.1f} {b['time_unit']}")
PY
echo "times: build $((t_build - t0)) s, tests $((t_test - t_build)) s, benchmarks $((t_bench - t_test)) s"
echo "outputs in $OUT/ (ctest.log, bench_cuda.json, summary.txt)"
if grep -q "no CUDA device" "$OUT/gptq_test.txt"; then
  echo "gpu-check: NO GPU - the device tests skipped and no benchmark ran; nothing was verified"; exit 2
fi
if [ "$test_rc" -ne 0 ] || [ "$bench_rc" -ne 0 ]; then
  echo "gpu-check: FAILED (ctest rc $test_rc, bench rc $bench_rc)"; exit 1
fi
echo "gpu-check: OK"
