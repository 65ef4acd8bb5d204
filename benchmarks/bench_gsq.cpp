// GSQ kernels (every entry of the gsq_gemv and gsq_dequantize tables) on 14336 x 4096
// matrices, next to the streaming ceilings measured in the same run.
//
// GEMV is bandwidth-bound, so it cycles through enough distinct copies of the packed
// matrix to exceed twice the last-level cache (size read from sysfs), as token
// generation streams a whole model; the read ceiling sums the same number of bytes,
// also cycled from memory. Counters:
//   in_bytes/s        packed bytes read per second (qweight + scales + zeros or mins
//                     + g_idx; x and y are noise next to them)
//   of_read_ceiling   in_bytes/s over the read ceiling at the same thread count and
//                     footprint, measured in this process before the kernel runs
//   out_bytes/s, of_write_ceiling   the same for the decoders (f32 written)
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <tuple>

#include "bench_common.hpp"
#include "lowbit/kernels/gsq_dequantize.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"

namespace lowbit::bench {
namespace {

constexpr int64_t kRows = 14336, kCols = 4096;

// The largest cache's size from sysfs (the last-level cache), 32 MiB when unreadable.
size_t llc_bytes() {
  size_t best = 0;
  for (int i = 0; i < 16; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string s;
    if (!(f >> s) || s.empty()) continue;
    size_t v = std::stoull(s);
    if (s.back() == 'K') v <<= 10;
    if (s.back() == 'M') v <<= 20;
    best = std::max(best, v);
  }
  return best ? best : size_t(32) << 20;
}

struct Layout {
  int bits, group;
  GsqScheme scheme;
  bool act_order;
  auto tie() const { return std::tie(bits, group, scheme, act_order); }
  bool operator<(const Layout& o) const { return tie() < o.tie(); }
  std::string name() const {
    return "int" + std::to_string(bits) + "_g" + std::to_string(group) + "_" + to_string(scheme) +
           (act_order ? "_act" : "");
  }
};

// One packed copy of the matrix, in its own allocations.
struct Copy {
  std::vector<uint32_t> qweight;
  std::vector<float> scales, mins;
  std::vector<int32_t> zeros, g_idx;
  GsqMatrixRef m;
};

struct MatrixSet {
  std::vector<std::unique_ptr<Copy>> copies;
  size_t bytes = 0;  // of one copy
  size_t footprint() const { return bytes * copies.size(); }
};

const MatrixSet& matrices(const Layout& l) {
  static std::map<Layout, MatrixSet> cache;
  MatrixSet& s = cache[l];
  if (!s.copies.empty()) return s;
  GsqConfig cfg;
  cfg.bits = l.bits;
  cfg.group_size = l.group;
  cfg.scheme = l.scheme;
  cfg.search = ScaleSearch::rtn;
  GsqResult q = gsq_quantize(cfg, {weights(kRows, kCols).data(), kRows, kCols});
  if (l.act_order) {
    q.g_idx.resize(kCols);
    for (int64_t c = 0; c < kCols; ++c) q.g_idx[c] = static_cast<int32_t>((c * 7 + c / 5) % q.groups());
  }
  s.bytes = 4 * (q.qweight.size() + q.scales.size() + (q.mins.empty() ? q.zeros.size() : q.mins.size()) + q.g_idx.size());
  const size_t n = 2 * llc_bytes() / s.bytes + 1;
  for (size_t i = 0; i < n; ++i) {
    auto c = std::make_unique<Copy>();
    c->qweight = q.qweight;
    c->scales = q.scales;
    c->mins = q.mins;
    c->zeros = q.zeros;
    c->g_idx = q.g_idx;
    c->m = {c->qweight.data(), c->scales.data(), c->zeros.data(), c->mins.empty() ? nullptr : c->mins.data(),
            c->g_idx.empty() ? nullptr : c->g_idx.data(), l.bits, kRows, kCols, q.group(), q.words_per_row()};
    s.copies.push_back(std::move(c));
  }
  return s;
}

// Sums `bytes` bytes of buf as floats: the least work a kernel reading them could do.
// 64 independent lanes keep the adds off the critical path.
double read_pass(const std::vector<float>& buf) {
  const int64_t rows = static_cast<int64_t>(buf.size() / 4096);
  std::vector<float> partial(static_cast<size_t>(rows));
  parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = &buf[static_cast<size_t>(r) * 4096];
      float acc[64] = {};
      for (int64_t c = 0; c < 4096; c += 64)
        for (int j = 0; j < 64; ++j) acc[j] += row[c + j];
      partial[r] = std::accumulate(acc, acc + 64, 0.0f);
    }
  });
  return std::accumulate(partial.begin(), partial.end(), 0.0);
}

std::vector<float>& read_buffer(size_t footprint) {
  static std::map<size_t, std::vector<float>> cache;
  auto& b = cache[footprint];
  if (b.empty()) b.assign((footprint / 4 + 4095) / 4096 * 4096, 1.0f);
  return b;
}

// The read ceiling (bytes/s) at the active thread count, best of a few passes.
double read_ceiling(size_t footprint, int threads) {
  static std::map<std::pair<size_t, int>, double> cache;
  double& best = cache[{footprint, threads}];
  if (best > 0) return best;
  const std::vector<float>& b = read_buffer(footprint);
  read_pass(b);
  for (int i = 0; i < 8; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(read_pass(b));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, b.size() * 4 / s);
  }
  return best;
}

void BM_stream_read_ceiling(benchmark::State& state, Layout l) {
  ThreadScope scope(static_cast<int>(state.range(0)));
  const std::vector<float>& b = read_buffer(matrices(l).footprint());
  for (auto _ : state) benchmark::DoNotOptimize(read_pass(b));
  state.counters["in_bytes/s"] = benchmark::Counter(double(b.size()) * 4 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["footprint_MiB"] = double(b.size()) * 4 / (1 << 20);
}

void BM_gsq_gemv(benchmark::State& state, const GsqGemvKernel* k, Layout l) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  const int threads = static_cast<int>(state.range(0));
  ThreadScope scope(threads);
  const MatrixSet& s = matrices(l);
  const double ceiling = read_ceiling(s.footprint(), threads);
  const std::vector<float> x = synthetic_weights(1, kCols, 2, Distribution::gaussian);
  std::vector<float> y(kRows);
  size_t i = 0;
  for (auto _ : state) {
    const GsqMatrixRef& m = s.copies[i++ % s.copies.size()]->m;
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) { k->fn(m, x.data(), y.data(), r0, r1); });
    benchmark::DoNotOptimize(y.data());
  }
  const double bytes = double(s.bytes) * state.iterations();
  state.counters["in_bytes/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate);
  state.counters["of_read_ceiling"] = benchmark::Counter(bytes / ceiling, benchmark::Counter::kIsRate);
  state.counters["footprint_MiB"] = double(s.footprint()) / (1 << 20);
}

// The write ceiling (bytes/s) for one 14336 x 4096 f32 matrix, best of a few passes.
double write_ceiling(std::vector<float>& out, int threads) {
  static std::map<int, double> cache;
  double& best = cache[threads];
  if (best > 0) return best;
  for (int i = 0; i < 6; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) {
      std::memset(&out[r0 * kCols], 0, (r1 - r0) * kCols * sizeof(float));
    });
    benchmark::ClobberMemory();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) best = std::max(best, out.size() * 4 / s);
  }
  return best;
}

void BM_gsq_dequantize(benchmark::State& state, const GsqDequantizeKernel* k, Layout l) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  const int threads = static_cast<int>(state.range(0));
  ThreadScope scope(threads);
  const GsqMatrixRef& m = matrices(l).copies[0]->m;
  std::vector<float> out(static_cast<size_t>(kRows * kCols));
  const double ceiling = write_ceiling(out, threads);
  for (auto _ : state) {
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) { k->fn(m, out.data(), kCols, r0, r1); });
    benchmark::ClobberMemory();
  }
  const double bytes = double(out.size()) * 4 * state.iterations();
  state.counters["out_bytes/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate);
  state.counters["of_write_ceiling"] = benchmark::Counter(bytes / ceiling, benchmark::Counter::kIsRate);
}

int register_all() {
  const Layout gemv_layouts[] = {{4, 128, GsqScheme::asymmetric, false}, {4, 128, GsqScheme::symmetric, false},
                                 {4, 32, GsqScheme::asymmetric, false},  {4, 128, GsqScheme::asymmetric_float, false},
                                 {2, 128, GsqScheme::asymmetric, false}, {3, 128, GsqScheme::asymmetric, false},
                                 {8, 128, GsqScheme::asymmetric, false}, {4, 128, GsqScheme::asymmetric, true}};
  for (int threads : {1, 0}) {
    const std::string suffix = threads == 1 ? "/threads:1" : "/threads:all";
    for (const Layout& l : gemv_layouts) {
      benchmark::RegisterBenchmark(("stream_read_ceiling_" + l.name() + suffix).c_str(), BM_stream_read_ceiling, l)
          ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
      for (const GsqGemvKernel& k : gsq_gemv_kernels().variants()) {
        if (k.is_reference() && l.bits != 4) continue;  // the scalar reference is slow: one layout shows it
        benchmark::RegisterBenchmark((std::string(k.name) + "_" + l.name() + suffix).c_str(), BM_gsq_gemv, &k, l)
            ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
      }
    }
    for (const Layout& l : {Layout{4, 128, GsqScheme::asymmetric, false}, Layout{3, 128, GsqScheme::asymmetric, false}})
      for (const GsqDequantizeKernel& k : gsq_dequantize_kernels().variants())
        benchmark::RegisterBenchmark((std::string(k.name) + "_" + l.name() + suffix).c_str(), BM_gsq_dequantize, &k, l)
            ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace lowbit::bench

BENCHMARK_MAIN();
