// Dequantize kernels (every entry of the dispatch table) on a 14336 x 4096 matrix,
// next to the streaming ceilings measured in the same run: reading the quantized
// bytes can go no faster than a plain read, and writing f32 no faster than a plain
// write. Counters: out_bytes/s (f32 produced) and in_bytes/s (blocks consumed).
#include <cstring>
#include <map>
#include <numeric>

#include "bench_common.hpp"
#include "ggml_peer.hpp"

namespace lowbit::bench {
namespace {

constexpr int64_t kRows = 14336, kCols = 4096;

// The matrix in format f, quantized once per run (quantization is not what is timed).
const std::vector<std::byte>& blocks(Format f) {
  static std::map<Format, std::vector<std::byte>> cache;
  auto& q = cache[f];
  if (q.empty()) {
    const std::vector<float>& w = weights(kRows, kCols);
    q.resize(quantized_size(f, kRows, kCols));
    ScopedCpuFeatures scalar_only(isa::scalar);
    quantize(f, {w.data(), kRows, kCols}, q);
  }
  return q;
}

void BM_stream_read_ceiling(benchmark::State& state) { stream_read_ceiling(state, kRows, kCols); }

void BM_stream_write_ceiling(benchmark::State& state) {
  ThreadScope scope(static_cast<int>(state.range(0)));
  std::vector<float> out(kRows * kCols);
  for (auto _ : state) {
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) {
      std::memset(&out[r0 * kCols], 0, (r1 - r0) * kCols * sizeof(float));
    });
    benchmark::ClobberMemory();
  }
  state.counters["out_bytes/s"] = benchmark::Counter(double(out.size()) * 4 * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_dequantize(benchmark::State& state, const DequantizeKernel* k) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  const std::vector<std::byte>& q = blocks(k->key);
  ThreadScope scope(static_cast<int>(state.range(0)));
  std::vector<float> out(static_cast<size_t>(kRows * kCols));
  const size_t rb = row_bytes(k->key, kCols);
  for (auto _ : state) {
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) k->fn(q.data() + r * rb, &out[r * kCols], kCols);
    });
    benchmark::ClobberMemory();
  }
  state.counters["out_bytes/s"] = benchmark::Counter(double(out.size()) * 4 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["in_bytes/s"] = benchmark::Counter(double(q.size()) * state.iterations(), benchmark::Counter::kIsRate);
}

// ggml's decoder of the same bytes (type_traits.to_float; Q8_K's is exported apart).
void BM_ggml_dequantize(benchmark::State& state, Format f) {
  const GgmlPeer* g = GgmlPeer::get();
  auto fn = f == Format::Q8_K ? g->dequantize_row_q8_K : g->type_traits(static_cast<int>(traits(f).ggml_type))->to_float;
  if (!fn) {
    state.SkipWithError("ggml has no decoder for this format");
    return;
  }
  const std::vector<std::byte>& q = blocks(f);
  ThreadScope scope(static_cast<int>(state.range(0)));
  std::vector<float> out(static_cast<size_t>(kRows * kCols));
  const size_t rb = row_bytes(f, kCols);
  for (auto _ : state) {
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) { fn(q.data() + r0 * rb, &out[r0 * kCols], (r1 - r0) * kCols); });
    benchmark::ClobberMemory();
  }
  state.counters["out_bytes/s"] = benchmark::Counter(double(out.size()) * 4 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["in_bytes/s"] = benchmark::Counter(double(q.size()) * state.iterations(), benchmark::Counter::kIsRate);
}

int register_all() {
  for (int threads : {1, 0}) {
    const char* suffix = threads == 1 ? "/threads:1" : "/threads:all";
    benchmark::RegisterBenchmark((std::string("stream_read_ceiling") + suffix).c_str(), BM_stream_read_ceiling)
        ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark((std::string("stream_write_ceiling") + suffix).c_str(), BM_stream_write_ceiling)
        ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
    for (const DequantizeKernel& k : dequantize_kernels().variants()) {
      if (!traits(k.key).quantized) continue;
      benchmark::RegisterBenchmark((std::string(k.name) + suffix).c_str(), BM_dequantize, &k)
          ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
    }
    if (!GgmlPeer::get()) continue;
    for (const FormatTraits& t : all_formats()) {
      if (!t.quantized || t.format == Format::Q8_1) continue;  // ggml cannot decode Q8_1
      benchmark::RegisterBenchmark(("ggml_dequantize_" + std::string(t.name) + suffix).c_str(), BM_ggml_dequantize,
                                   t.format)
          ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
    }
  }
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace lowbit::bench

BENCHMARK_MAIN();
