#pragma once
// Shared set-up for the kernel benchmarks: one synthetic weight matrix per shape,
// built once, and thread-count helpers. Bandwidth shapes exceed the 32 MiB L3.
#include <benchmark/benchmark.h>

#include <map>
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

}  // namespace lowbit::bench
