#pragma once
// Shared set-up for the kernel benchmarks: one synthetic weight matrix per shape,
// built once, and thread-count helpers. Bandwidth shapes exceed the 32 MiB L3.
#include <benchmark/benchmark.h>

#include <map>
#include <numeric>
#include <utility>
#include <vector>

#include "lowbit/lowbit.hpp"

namespace lowbit::bench {

inline const std::vector<float>& weights(int64_t rows, int64_t cols) {
  static std::map<std::pair<int64_t, int64_t>, std::vector<float>> cache;
  auto& w = cache[{rows, cols}];
  if (w.empty()) w = synthetic_weights(rows, cols, 1);
  return w;
}

// Runs the benchmark body with `threads` lowbit threads (0 = all), restoring the default after.
struct ThreadScope {
  explicit ThreadScope(int threads) { set_num_threads(threads); }
  ~ThreadScope() { set_num_threads(0); }
};

// The streaming-read ceiling: every float of the rows x cols weights summed once per
// iteration, the least work a kernel reading the same bytes could do.
inline void stream_read_ceiling(benchmark::State& state, int64_t rows, int64_t cols) {
  ThreadScope scope(static_cast<int>(state.range(0)));
  const std::vector<float>& w = weights(rows, cols);
  std::vector<double> partial(static_cast<size_t>(rows));
  for (auto _ : state) {
    parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* row = &w[r * cols];
        float acc[16] = {};
        for (int64_t c = 0; c < cols; c += 16)
          for (int j = 0; j < 16; ++j) acc[j] += row[c + j];
        partial[r] = std::accumulate(acc, acc + 16, 0.0);
      }
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.counters["in_bytes/s"] = benchmark::Counter(double(w.size()) * 4 * state.iterations(), benchmark::Counter::kIsRate);
}

}  // namespace lowbit::bench
