#include "lowbit/core/parallel.hpp"

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

#include <memory>
#include <mutex>

#include "lowbit/core/error.hpp"

namespace lowbit {
namespace {
std::mutex g_mutex;
std::unique_ptr<tbb::global_control> g_control;
int g_threads = 0;
}  // namespace

void set_num_threads(int threads) {
  if (threads < 0) throw Error("set_num_threads: thread count " + std::to_string(threads) + " is negative");
  std::lock_guard lock(g_mutex);
  g_control.reset();
  if (threads > 0)
    g_control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      static_cast<size_t>(threads));
  g_threads = threads;
}

int num_threads() {
  std::lock_guard lock(g_mutex);
  return g_threads > 0 ? g_threads
                       : static_cast<int>(tbb::global_control::active_value(
                             tbb::global_control::max_allowed_parallelism));
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain) {
    body(0, n);
    return;
  }
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, grain),
                    [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); });
}

}  // namespace lowbit
