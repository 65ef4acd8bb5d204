// Quantize kernels (every entry of the dispatch table), without and with an
// importance vector, on a 1024 x 4096 matrix. Counter: in_bytes/s of f32 input.
// Peer numbers for ggml's reference quantizers on this machine class are in
// DESIGN.md section 5 and docs/benchmarks.md.
#include "bench_common.hpp"

namespace lowbit::bench {
namespace {

constexpr int64_t kRows = 1024, kCols = 4096;

void BM_quantize(benchmark::State& state, const QuantizeKernel* k, bool with_importance) {
  if (!cpu_supports(k->isa)) {
    state.SkipWithError("CPU lacks this kernel's ISA");
    return;
  }
  ThreadScope scope(static_cast<int>(state.range(0)));
  const std::vector<float>& w = weights(kRows, kCols);
  const std::vector<float> imp = synthetic_importance(kCols, 1);
  const size_t rb = row_bytes(k->format, kCols);
  std::vector<std::byte> q(rb * kRows);
  for (auto _ : state) {
    parallel_for(kRows, 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        k->fn(&w[r * kCols], q.data() + r * rb, kCols, with_importance ? imp.data() : nullptr);
    });
    benchmark::ClobberMemory();
  }
  state.counters["in_bytes/s"] = benchmark::Counter(double(w.size()) * 4 * state.iterations(), benchmark::Counter::kIsRate);
}

int register_all() {
  for (int threads : {1, 0}) {
    for (const QuantizeKernel& k : quantize_kernels()) {
      for (bool imp : {false, true}) {
        if (imp && !traits(k.format).quantized) continue;
        const std::string name = std::string(k.name) + (imp ? "/imatrix" : "") +
                                 (threads == 1 ? "/threads:1" : "/threads:all");
        benchmark::RegisterBenchmark(name.c_str(), BM_quantize, &k, imp)
            ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
      }
    }
  }
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace lowbit::bench

BENCHMARK_MAIN();
