// Dot products (every entry of the dot and multi-row dot tables) with the weights in
// cache: 64 rows
// of 4096 elements (at most 147 KB, inside the 1 MB L2) against one activation row,
// so what is timed is the kernel's own work, the speed it could stream at if memory
// were never the limit. A GEMV from memory (lowbit bench --family gemv) can only
// approach the read ceiling when this figure is well above it. Timed in CPU time (the
// default), so other processes sharing the cores move it little. Counter: in_bytes/s
// of weights.
#include <cstring>
#include <map>

#include "bench_common.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/dot_rows.hpp"

namespace lowbit::bench {
namespace {

constexpr int64_t kRows = 64, kCols = 4096;

struct Operands {
  std::vector<std::byte> weights, activations;
};

const Operands& operands(Format f) {
  static std::map<Format, Operands> cache;
  Operands& o = cache[f];
  if (o.weights.empty()) {
    ScopedCpuFeatures scalar_only(isa::scalar);
    const std::vector<float>& w = weights(kRows, kCols);
    o.weights.resize(quantized_size(f, kRows, kCols));
    quantize(f, {w.data(), kRows, kCols}, o.weights);
    const std::vector<float> x = synthetic_weights(1, kCols, 2, Distribution::gaussian);
    const Format af = dot_activation_format(f);
    if (af == Format::F32) {
      o.activations.resize(x.size() * sizeof(float));
      std::memcpy(o.activations.data(), x.data(), o.activations.size());
    } else {
      o.activations.resize(row_bytes(af, kCols));
      quantize_activations(af, {x.data(), 1, kCols}, o.activations);
    }
  }
  return o;
}

void BM_dot(benchmark::State& state, const DotKernel* k) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  const Operands& o = operands(k->key);
  const size_t rb = row_bytes(k->key, kCols);
  float sum = 0;
  for (auto _ : state) {
    for (int64_t r = 0; r < kRows; ++r) sum += k->fn(o.weights.data() + r * rb, o.activations.data(), kCols);
    benchmark::DoNotOptimize(sum);
  }
  state.counters["in_bytes/s"] =
      benchmark::Counter(double(o.weights.size()) * state.iterations(), benchmark::Counter::kIsRate);
}

// The 64 rows in one call: what a GEMV hands the multi-row kernels.
void BM_dot_rows(benchmark::State& state, const DotRowsKernel* k) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  const Operands& o = operands(k->key);
  std::vector<float> y(kRows);
  for (auto _ : state) {
    k->fn(o.weights.data(), row_bytes(k->key, kCols), o.activations.data(), kCols, kRows, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["in_bytes/s"] =
      benchmark::Counter(double(o.weights.size()) * state.iterations(), benchmark::Counter::kIsRate);
}

int register_all() {
  for (const DotKernel& k : dot_kernels().variants())
    benchmark::RegisterBenchmark(k.name, BM_dot, &k)->Unit(benchmark::kMicrosecond);
  for (const DotRowsKernel& k : dot_rows_kernels().variants())
    benchmark::RegisterBenchmark(k.name, BM_dot_rows, &k)->Unit(benchmark::kMicrosecond);
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace lowbit::bench

BENCHMARK_MAIN();
