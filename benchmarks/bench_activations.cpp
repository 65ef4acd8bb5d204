// Activation quantization (every entry of the activation_kernels() table) on a
// 14336 x 4096 f32 matrix, next to the streaming-read ceiling of the same matrix and
// ggml's own quantize_row_q8_*_ref (the bytes ours reproduce) measured in the same
// run. Counter: in_bytes/s of f32 read.
#include <numeric>

#include "bench_common.hpp"
#include "ggml_peer.hpp"
#include "lowbit/kernels/activations.hpp"

namespace lowbit::bench {
namespace {

constexpr int64_t kRows = 14336, kCols = 4096;

void BM_stream_read_ceiling(benchmark::State& state) { stream_read_ceiling(state, kRows, kCols); }

using RowFn = void (*)(const float*, void*, int64_t);

void run(benchmark::State& state, Format f, RowFn fn) {
  ThreadScope scope(static_cast<int>(state.range(0)));
  const std::vector<float>& w = weights(kRows, kCols);
  const size_t rb = row_bytes(f, kCols);
  std::vector<std::byte> q(rb * kRows);
  for (auto _ : state) {
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) fn(&w[r * kCols], q.data() + r * rb, kCols);
    });
    benchmark::ClobberMemory();
  }
  state.counters["in_bytes/s"] = benchmark::Counter(double(w.size()) * 4 * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_activations(benchmark::State& state, const ActivationKernel* k) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  run(state, k->key, k->fn);
}

void BM_ggml(benchmark::State& state, Format f) {
  const GgmlPeer* g = GgmlPeer::get();
  const RowFn fn = f == Format::Q8_0 ? g->quantize_row_q8_0_ref
                   : f == Format::Q8_1 ? g->quantize_row_q8_1_ref
                                       : g->quantize_row_q8_K_ref;
  if (!fn) {
    state.SkipWithError("libggml-base lacks this quantize_row_*_ref");
    return;
  }
  run(state, f, fn);
}

int register_all() {
  for (int threads : {1, 0}) {
    const std::string suffix = threads == 1 ? "/threads:1" : "/threads:all";
    benchmark::RegisterBenchmark(("stream_read_ceiling" + suffix).c_str(), BM_stream_read_ceiling)
        ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
    for (const ActivationKernel& k : activation_kernels().variants())
      benchmark::RegisterBenchmark((std::string(k.name) + suffix).c_str(), BM_activations, &k)
          ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
    if (!GgmlPeer::get()) continue;
    for (Format f : {Format::Q8_0, Format::Q8_1, Format::Q8_K})
      benchmark::RegisterBenchmark(("ggml_quantize_row_" + std::string(traits(f).name) + "_ref" + suffix).c_str(),
                                   BM_ggml, f)
          ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace lowbit::bench

BENCHMARK_MAIN();
