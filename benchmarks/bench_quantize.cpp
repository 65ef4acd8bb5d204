// Quantize kernels (every entry of the dispatch table), without and with an
// importance vector, on a 1024 x 4096 matrix, next to ggml's own quantizers
// (ggml_quantize_chunk, imatrix or not) measured in the same run when the interop
// venv's libggml-base.so is present. Counter: in_bytes/s of f32 input.
#include "bench_common.hpp"
#include "ggml_peer.hpp"

namespace lowbit::bench {
namespace {

constexpr int64_t kRows = 1024, kCols = 4096;

void BM_quantize(benchmark::State& state, const QuantizeKernel* k, bool with_importance) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  ThreadScope scope(static_cast<int>(state.range(0)));
  const std::vector<float>& w = weights(kRows, kCols);
  const std::vector<float> imp = synthetic_importance(kCols, 1);
  const size_t rb = row_bytes(k->key.format, kCols);
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

void BM_ggml_quantize(benchmark::State& state, Format f, bool with_importance) {
  const GgmlPeer* g = GgmlPeer::get();
  ThreadScope scope(static_cast<int>(state.range(0)));
  const std::vector<float>& w = weights(kRows, kCols);
  const std::vector<float> imp = synthetic_importance(kCols, 1);
  const size_t rb = row_bytes(f, kCols);
  std::vector<std::byte> q(rb * kRows);
  const int type = static_cast<int>(traits(f).ggml_type);
  g->quantize_init(type);
  for (auto _ : state) {
    parallel_for(kRows, 1, [&](int64_t r0, int64_t r1) {
      if (f == Format::Q8_1 || f == Format::Q8_K) {  // activation formats: only the _ref row quantizers exist
        auto fn = f == Format::Q8_1 ? g->quantize_row_q8_1_ref : g->quantize_row_q8_K_ref;
        fn(&w[r0 * kCols], q.data() + r0 * rb, (r1 - r0) * kCols);
      } else {
        g->quantize_chunk(type, w.data(), q.data(), r0 * kCols, r1 - r0, kCols, with_importance ? imp.data() : nullptr);
      }
    });
    benchmark::ClobberMemory();
  }
  state.counters["in_bytes/s"] = benchmark::Counter(double(w.size()) * 4 * state.iterations(), benchmark::Counter::kIsRate);
}

int register_all() {
  for (int threads : {1, 0}) {
    for (const QuantizeKernel& k : quantize_kernels().variants()) {
      for (bool imp : {false, true}) {
        if (imp && !traits(k.key.format).quantized) continue;
        const std::string name = std::string(k.name) + (imp ? "/imatrix" : "") +
                                 (threads == 1 ? "/threads:1" : "/threads:all");
        benchmark::RegisterBenchmark(name.c_str(), BM_quantize, &k, imp)
            ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
      }
    }
    if (!GgmlPeer::get()) continue;
    for (const FormatTraits& t : all_formats()) {
      if (!t.quantized) continue;
      for (bool imp : {false, true}) {
        if (imp && t.activation_only) continue;
        const std::string name = "ggml_quantize_" + std::string(t.name) + (imp ? "/imatrix" : "") +
                                 (threads == 1 ? "/threads:1" : "/threads:all");
        benchmark::RegisterBenchmark(name.c_str(), BM_ggml_quantize, t.format, imp)
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
