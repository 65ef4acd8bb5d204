#pragma once
#include <cstdint>
#include <functional>

namespace lowbit {

// Limits the worker threads lowbit uses (0 = all cores). Results never depend on
// this: work is split into independent rows, so every thread count gives the same
// bytes.
void set_num_threads(int threads);
int num_threads();

// Calls body(begin, end) over disjoint ranges covering [0, n), in parallel on TBB.
// `grain` is the smallest range worth a task.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

}  // namespace lowbit
