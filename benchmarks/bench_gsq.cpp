// GSQ kernels (every entry of the gsq_gemv, gsq_gemv_q8 and gsq_dequantize tables) on 14336 x 4096
// matrices, next to the streaming ceilings measured in the same run; and the quantizer's
// searches with each gsq_search variant (gsq_quantize_*, MB/s of f32 input, one thread).
//
// GEMV is bandwidth-bound, so it cycles through enough distinct copies of the packed
// matrix to exceed twice the last-level cache (size read from sysfs), as token
// generation streams a whole model; the read ceiling sums the same number of bytes,
// also cycled from memory. Counters:
//   in_bytes/s        packed bytes read per second (qweight + scales + zeros or mins
//                     + g_idx; x and y are noise next to them)
//   ceiling_bytes/s   the streaming read of as many bytes, interleaved with the
//                     kernel's passes (same threads, same footprint)
//   of_read_ceiling   in_bytes/s / ceiling_bytes/s: the figure the targets are set on
//   of_ceiling_cpu    (one thread) the same ratio over thread CPU time, which a
//                     shared, oversubscribed machine disturbs less than real time
//   out_bytes/s, of_write_ceiling   the same for the decoders (f32 written, memset)
#include <chrono>
#include <ctime>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <tuple>
#include <type_traits>

#include "bench_common.hpp"
#include "lowbit/kernels/gsq_dequantize.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/gsq_gemv_q8.hpp"
#include "lowbit/kernels/gsq_search.hpp"

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

// Sums n floats (a multiple of 4096) as the least work a kernel reading them could
// do; 64 independent lanes keep the adds off the critical path.
double read_pass(const float* p, size_t n) {
  const auto rows = static_cast<int64_t>(n / 4096);
  std::vector<float> partial(static_cast<size_t>(rows));
  parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = p + static_cast<size_t>(r) * 4096;
      float acc[64] = {};
      for (int64_t c = 0; c < 4096; c += 64)
        for (int j = 0; j < 64; ++j) acc[j] += row[c + j];
      partial[r] = std::accumulate(acc, acc + 64, 0.0f);
    }
  });
  return std::accumulate(partial.begin(), partial.end(), 0.0);
}

// A float buffer of `slices` slices of `slice_bytes` (rounded up to 16 KiB) each.
struct ReadBuffer {
  std::vector<float> data;
  size_t slice_floats = 0, slices = 0;
  const float* slice(size_t i) const { return data.data() + (i % slices) * slice_floats; }
};

const ReadBuffer& read_buffer(size_t slice_bytes, size_t slices) {
  static std::map<std::pair<size_t, size_t>, ReadBuffer> cache;
  ReadBuffer& b = cache[{slice_bytes, slices}];
  if (b.data.empty()) {
    b.slice_floats = (slice_bytes / 4 + 4095) / 4096 * 4096;
    b.slices = slices;
    b.data.assign(b.slice_floats * slices, 1.0f);
  }
  return b;
}

double seconds(std::chrono::steady_clock::time_point t0, std::chrono::steady_clock::time_point t1) {
  return std::chrono::duration<double>(t1 - t0).count();
}

// This thread's CPU time: with one lowbit thread, parallel_for runs its body on the
// calling thread, so this is the kernel's own time even while the shared machine
// deschedules it (which real time would charge to the kernel).
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

void BM_stream_read_ceiling(benchmark::State& state, Layout l) {
  ThreadScope scope(static_cast<int>(state.range(0)));
  const MatrixSet& s = matrices(l);
  const ReadBuffer& b = read_buffer(s.bytes, s.copies.size());
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(read_pass(b.slice(i++), b.slice_floats));
  state.counters["in_bytes/s"] =
      benchmark::Counter(double(b.slice_floats) * 4 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["footprint_MiB"] = double(b.data.size()) * 4 / (1 << 20);
}

// Each iteration runs the kernel on the next copy and then the read ceiling on the
// next slice of as many bytes, so both see the same machine state (the 2-core VMs
// this runs on are shared; a ceiling measured apart from the kernel drifts).
// Reported time is the kernel's alone (manual time).
// `run(m)` is one GEMV over matrix m.
template <class Run>
void gemv_loop(benchmark::State& state, const Layout& l, Run run) {
  ThreadScope scope(static_cast<int>(state.range(0)));
  const MatrixSet& s = matrices(l);
  const ReadBuffer& b = read_buffer(s.bytes, s.copies.size());
  size_t i = 0;
  double kernel_s = 0, ceiling_s = 0, kernel_cpu = 0, ceiling_cpu = 0;
  for (auto _ : state) {
    const GsqMatrixRef& m = s.copies[i % s.copies.size()]->m;
    const double c0 = thread_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    run(m);
    const auto t1 = std::chrono::steady_clock::now();
    const double c1 = thread_cpu_seconds();
    benchmark::DoNotOptimize(read_pass(b.slice(i++), b.slice_floats));
    const auto t2 = std::chrono::steady_clock::now();
    const double c2 = thread_cpu_seconds();
    state.SetIterationTime(seconds(t0, t1));
    kernel_s += seconds(t0, t1);
    ceiling_s += seconds(t1, t2);
    kernel_cpu += c1 - c0;
    ceiling_cpu += c2 - c1;
  }
  const double bytes = double(s.bytes) * state.iterations();
  const double ceiling_bytes = double(b.slice_floats) * 4 * state.iterations();
  state.counters["in_bytes/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate);
  state.counters["ceiling_bytes/s"] = ceiling_bytes / ceiling_s;
  state.counters["of_read_ceiling"] = (bytes / kernel_s) / (ceiling_bytes / ceiling_s);
  if (state.range(0) == 1) state.counters["of_ceiling_cpu"] = (bytes / kernel_cpu) / (ceiling_bytes / ceiling_cpu);
  state.counters["footprint_MiB"] = double(s.footprint()) / (1 << 20);
}

void BM_gsq_gemv(benchmark::State& state, const GsqGemvKernel* k, Layout l) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  const std::vector<float> x = synthetic_weights(1, kCols, 2, Distribution::gaussian);
  std::vector<float> y(kRows);
  gemv_loop(state, l, [&](const GsqMatrixRef& m) {
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) { k->fn(m, x.data(), y.data(), r0, r1); });
    benchmark::DoNotOptimize(y.data());
  });
}

// The activations are quantized once, outside the timed region: an engine quantizes
// a token's activations once for every matrix that consumes them.
void BM_gsq_gemv_q8(benchmark::State& state, const GsqGemvQ8Kernel* k, Layout l) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  const std::vector<float> x = synthetic_weights(1, kCols, 2, Distribution::gaussian);
  std::vector<std::byte> xq(quantized_size(Format::Q8_0, 1, kCols));
  quantize_activations(Format::Q8_0, {x.data(), 1, kCols}, xq);
  std::vector<float> y(kRows);
  gemv_loop(state, l, [&](const GsqMatrixRef& m) {
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) { k->fn(m, xq.data(), y.data(), r0, r1); });
    benchmark::DoNotOptimize(y.data());
  });
}

// The same kernels on 256 rows (about 0.5 MB of int4 codes), which stay in this
// core's L2 between passes: the rate a kernel computes at when memory is not the
// limit. A GEMV whose in-cache rate is below the read ceiling is compute-bound there.
struct InCache {
  GsqResult q;
  std::vector<float> x;
  std::vector<std::byte> xq;
  GsqMatrixRef m;
};
const InCache& in_cache(const Layout& l) {
  static std::map<Layout, InCache> cache;
  InCache& c = cache[l];
  if (c.x.empty()) {
    constexpr int64_t rows = 256;
    GsqConfig cfg;
    cfg.bits = l.bits;
    cfg.group_size = l.group;
    cfg.scheme = l.scheme;
    cfg.search = ScaleSearch::rtn;
    c.q = gsq_quantize(cfg, {weights(kRows, kCols).data(), rows, kCols});
    c.x = synthetic_weights(1, kCols, 2, Distribution::gaussian);
    c.xq.resize(quantized_size(Format::Q8_0, 1, kCols));
    quantize_activations(Format::Q8_0, {c.x.data(), 1, kCols}, c.xq);
    c.m = {c.q.qweight.data(), c.q.scales.data(), c.q.zeros.data(), c.q.mins.empty() ? nullptr : c.q.mins.data(),
           nullptr, l.bits, rows, kCols, c.q.group(), c.q.words_per_row()};
  }
  return c;
}

template <class Kernel>
void BM_in_cache(benchmark::State& state, const Kernel* k, Layout l) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  const InCache& c = in_cache(l);
  std::vector<float> y(static_cast<size_t>(c.m.rows));
  for (auto _ : state) {
    if constexpr (std::is_same_v<Kernel, GsqGemvQ8Kernel>)
      k->fn(c.m, c.xq.data(), y.data(), 0, c.m.rows);
    else
      k->fn(c.m, c.x.data(), y.data(), 0, c.m.rows);
    benchmark::DoNotOptimize(y.data());
  }
  const double bytes = 4.0 * (c.q.qweight.size() + c.q.scales.size() + c.q.zeros.size());
  state.counters["in_bytes/s"] = benchmark::Counter(bytes * state.iterations(), benchmark::Counter::kIsRate);
}

// Interleaved with a memset of the same output, as BM_gsq_gemv interleaves its ceiling.
void BM_gsq_dequantize(benchmark::State& state, const GsqDequantizeKernel* k, Layout l) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  ThreadScope scope(static_cast<int>(state.range(0)));
  const GsqMatrixRef& m = matrices(l).copies[0]->m;
  std::vector<float> out(static_cast<size_t>(kRows * kCols));
  double kernel_s = 0, ceiling_s = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) { k->fn(m, out.data(), kCols, r0, r1); });
    benchmark::ClobberMemory();
    const auto t1 = std::chrono::steady_clock::now();
    parallel_for(kRows, 16, [&](int64_t r0, int64_t r1) {
      std::memset(&out[r0 * kCols], 0, (r1 - r0) * kCols * sizeof(float));
    });
    benchmark::ClobberMemory();
    const auto t2 = std::chrono::steady_clock::now();
    state.SetIterationTime(seconds(t0, t1));
    kernel_s += seconds(t0, t1);
    ceiling_s += seconds(t1, t2);
  }
  const double bytes = double(out.size()) * 4 * state.iterations();
  state.counters["out_bytes/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate);
  state.counters["ceiling_bytes/s"] = bytes / ceiling_s;
  state.counters["of_write_ceiling"] = ceiling_s / kernel_s;
}

// gsq_quantize of 256 x 4096 f32 weights on one thread with the gsq_search variant k
// (dispatch narrowed to its features): MB/s of f32 input, as bench_quantize reports
// the block formats. The rtn runs need no search and show the rest of the quantizer.
struct QuantizeCase {
  int bits;
  GsqScheme scheme;
  ScaleSearch search;
  std::string name() const {
    return std::string("int") + std::to_string(bits) + "_g128_" + to_string(scheme) + "_" + to_string(search);
  }
};
void BM_gsq_quantize(benchmark::State& state, const GsqSearchKernel* k, QuantizeCase qc) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  constexpr int64_t rows = 256;
  const std::vector<float>& w = weights(rows, kCols);
  const std::vector<float> imp = synthetic_importance(kCols, 1);
  GsqConfig cfg;
  cfg.bits = qc.bits, cfg.scheme = qc.scheme, cfg.search = qc.search;
  ThreadScope one(1);
  ScopedCpuFeatures only(k->needs);
  for (auto _ : state) benchmark::DoNotOptimize(gsq_quantize(cfg, {w.data(), rows, kCols}, imp));
  state.SetBytesProcessed(state.iterations() * rows * kCols * 4);
}

int register_all() {
  const QuantizeCase quantize_cases[] = {{4, GsqScheme::asymmetric, ScaleSearch::rtn},
                                         {4, GsqScheme::asymmetric, ScaleSearch::mse},
                                         {4, GsqScheme::asymmetric, ScaleSearch::importance},
                                         {4, GsqScheme::symmetric, ScaleSearch::mse},
                                         {4, GsqScheme::asymmetric_float, ScaleSearch::mse},
                                         {3, GsqScheme::asymmetric, ScaleSearch::hqq}};
  for (const QuantizeCase& qc : quantize_cases)
    for (const GsqSearchKernel& k : gsq_search_kernels().variants()) {
      if (qc.search == ScaleSearch::rtn && !k.is_reference()) continue;  // no search: one run shows it
      benchmark::RegisterBenchmark(("gsq_quantize_" + qc.name() + "/" + k.name).c_str(), BM_gsq_quantize, &k, qc)
          ->Unit(benchmark::kMillisecond);
    }
  const Layout gemv_layouts[] = {{4, 128, GsqScheme::asymmetric, false}, {4, 128, GsqScheme::symmetric, false},
                                 {4, 32, GsqScheme::asymmetric, false},  {4, 128, GsqScheme::asymmetric_float, false},
                                 {2, 128, GsqScheme::asymmetric, false}, {3, 128, GsqScheme::asymmetric, false},
                                 {8, 128, GsqScheme::asymmetric, false}, {4, 128, GsqScheme::asymmetric, true}};
  for (const Layout& l : {Layout{4, 128, GsqScheme::asymmetric, false}, Layout{8, 128, GsqScheme::asymmetric, false},
                          Layout{3, 128, GsqScheme::asymmetric, false}}) {
    for (const GsqGemvKernel& k : gsq_gemv_kernels().variants())
      if (!k.is_reference())
        benchmark::RegisterBenchmark((std::string(k.name) + "_" + l.name() + "/in_l2").c_str(), BM_in_cache<GsqGemvKernel>, &k, l)
            ->Unit(benchmark::kMicrosecond);
    for (const GsqGemvQ8Kernel& k : gsq_gemv_q8_kernels().variants())
      if (!k.is_reference())
        benchmark::RegisterBenchmark((std::string(k.name) + "_" + l.name() + "/in_l2").c_str(), BM_in_cache<GsqGemvQ8Kernel>, &k, l)
            ->Unit(benchmark::kMicrosecond);
  }
  for (int threads : {1, 0}) {
    const std::string suffix = threads == 1 ? "/threads:1" : "/threads:all";
    for (const Layout& l : gemv_layouts) {
      benchmark::RegisterBenchmark(("stream_read_ceiling_" + l.name() + suffix).c_str(), BM_stream_read_ceiling, l)
          ->Arg(threads)->Unit(benchmark::kMillisecond)->UseRealTime();
      for (const GsqGemvKernel& k : gsq_gemv_kernels().variants()) {
        if (k.is_reference() && l.bits != 4) continue;  // the scalar reference is slow: one layout shows it
        benchmark::RegisterBenchmark((std::string(k.name) + "_" + l.name() + suffix).c_str(), BM_gsq_gemv, &k, l)
            ->Arg(threads)->Unit(benchmark::kMillisecond)->UseManualTime();
      }
      for (const GsqGemvQ8Kernel& k : gsq_gemv_q8_kernels().variants()) {
        if (k.is_reference() && l.bits != 4) continue;
        benchmark::RegisterBenchmark((std::string(k.name) + "_" + l.name() + suffix).c_str(), BM_gsq_gemv_q8, &k, l)
            ->Arg(threads)->Unit(benchmark::kMillisecond)->UseManualTime();
      }
    }
    for (const Layout& l : {Layout{4, 128, GsqScheme::asymmetric, false}, Layout{3, 128, GsqScheme::asymmetric, false}})
      for (const GsqDequantizeKernel& k : gsq_dequantize_kernels().variants())
        benchmark::RegisterBenchmark((std::string(k.name) + "_" + l.name() + suffix).c_str(), BM_gsq_dequantize, &k, l)
            ->Arg(threads)->Unit(benchmark::kMillisecond)->UseManualTime();
  }
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace lowbit::bench

BENCHMARK_MAIN();
