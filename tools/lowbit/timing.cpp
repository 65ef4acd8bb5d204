// Timing helpers shared by `lowbit bench` and `lowbit demo`.
#include "timing.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "lowbit/core/parallel.hpp"

namespace lowbit::cli {

double time_per_call(double min_seconds, const std::function<void()>& body) {
  using clock = std::chrono::steady_clock;
  body();
  int64_t calls = 0;
  const auto start = clock::now();
  double elapsed = 0;
  do {
    body();
    ++calls;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  } while (elapsed < min_seconds || calls < 2);
  return elapsed / static_cast<double>(calls);
}

namespace {

// The sum of words[begin, end), eight independent sums so the loads are the limit.
uint64_t sum_words(const uint64_t* words, int64_t begin, int64_t end) {
  uint64_t acc[8] = {};
  int64_t i = begin;
  for (; i + 8 <= end; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += words[i + k];
  for (; i < end; ++i) acc[0] += words[i];
  uint64_t s = 0;
  for (uint64_t v : acc) s += v;
  return s;
}

}  // namespace

double stream_read_seconds(const std::vector<std::vector<std::byte>>& buffers, double min_seconds) {
  std::atomic<uint64_t> sink{0};  // keeps the sums observable
  return time_per_call(min_seconds, [&] {
    for (const auto& b : buffers) {
      const auto* words = reinterpret_cast<const uint64_t*>(b.data());
      const int64_t n = static_cast<int64_t>(b.size() / 8), chunk = 8192;
      parallel_for((n + chunk - 1) / chunk, 4, [&](int64_t c0, int64_t c1) {
        sink.fetch_add(sum_words(words, c0 * chunk, std::min(n, c1 * chunk)), std::memory_order_relaxed);
      });
    }
  });
}

double stream_read_write_seconds(const std::vector<std::byte>& in, std::vector<std::byte>& out,
                                 double min_seconds) {
  std::atomic<uint64_t> sink{0};
  const auto* words = reinterpret_cast<const uint64_t*>(in.data());
  const int64_t n = static_cast<int64_t>(in.size() / 8), chunk = 8192;
  const int64_t chunks = (n + chunk - 1) / chunk;
  const auto out_at = [&](int64_t c) {  // chunk c writes out[out_at(c), out_at(c + 1))
    return static_cast<size_t>(static_cast<double>(out.size()) * static_cast<double>(c) / static_cast<double>(chunks));
  };
  return time_per_call(min_seconds, [&] {
    parallel_for(chunks, 4, [&](int64_t c0, int64_t c1) {
      uint64_t s = 0;
      for (int64_t c = c0; c < c1; ++c) {
        s += sum_words(words, c * chunk, std::min(n, (c + 1) * chunk));
        // Chunk-sized, so memset keeps to ordinary stores (its non-temporal path is
        // for copies of megabytes); the value depends on the sums read.
        std::memset(out.data() + out_at(c), static_cast<int>(s & 0x7f), out_at(c + 1) - out_at(c));
      }
      sink.fetch_add(s, std::memory_order_relaxed);
    });
  });
}

}  // namespace lowbit::cli
