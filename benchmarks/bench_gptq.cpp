// GPTQ: the solver on 4096 x 4096 and 14336 x 4096 layers (4-bit, group 128, with
// and without act-order), next to an OpenBLAS SGEMM of matching size measured in
// the same run; Hessian accumulation next to the SSYRK it is built on.
// GPTQ into Q4_K next to the GSQ target and next to the Q4_K quantizer alone.
// Counters: FLOP/s. The solver's are nominal: (4/3) cols^3 + rows cols^2 (the
// reference algorithm's cost), whatever our cheaper inverse factor actually spends.
#include <thread>

#include "bench_common.hpp"
#include "gptq/blas.hpp"
#include "lowbit/gptq/ggml_target.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gptq/target.hpp"

namespace lowbit::bench {
namespace {

constexpr int64_t kCols = 4096, kTokens = 8192;

int resolve(int threads) {
  return threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
}

const HessianAccumulator& hessian() {
  static const HessianAccumulator h = [] {
    HessianAccumulator acc(kCols);
    auto x = synthetic_activations(kTokens, kCols, 2);
    acc.add({x.data(), kTokens, kCols});
    return acc;
  }();
  return h;
}

void BM_sgemm(benchmark::State& state) {
  const int64_t rows = state.range(0);
  blas::ThreadScope scope(resolve(static_cast<int>(state.range(1))));
  std::vector<float> a(rows * kCols, 0.5f), b(kCols * kCols, 0.25f), c(rows * kCols);
  for (auto _ : state) {
    cblas_sgemm(LowbitRowMajor, LowbitNoTrans, LowbitNoTrans, static_cast<int>(rows), kCols, kCols, 1.0f, a.data(),
                kCols, b.data(), kCols, 0.0f, c.data(), kCols);
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * rows * kCols * kCols * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_gptq_solve(benchmark::State& state) {
  const int64_t rows = state.range(0);
  ThreadScope scope(static_cast<int>(state.range(1)));
  GptqConfig cfg;
  cfg.act_order = state.range(2) != 0;
  GsqConfig g;
  g.bits = 4, g.group_size = 128, g.search = ScaleSearch::rtn;
  const std::vector<float>& w = weights(rows, kCols);
  const HessianAccumulator& h = hessian();
  for (auto _ : state) {
    GsqTarget target(g);
    gptq_solve(cfg, {w.data(), rows, kCols}, h, target);
    benchmark::DoNotOptimize(target.result().qweight.data());
  }
  const double n = kCols;
  state.counters["FLOP/s"] =
      benchmark::Counter((4.0 / 3.0 * n * n * n + rows * n * n) * state.iterations(), benchmark::Counter::kIsRate);
}

// GPTQ into Q4_K (GgmlTarget, Hessian diagonal as imatrix) on the same layer and
// Hessian as BM_gptq_solve: the GSQ target's solve plus, per 256-column block and
// row, one call of the Q4_K quantizer for the block's scales (effort: 0 default,
// 1 fast, ggml's search). Counter as above.
void BM_gptq_q4_K(benchmark::State& state) {
  const int64_t rows = state.range(0);
  ThreadScope scope(static_cast<int>(state.range(1)));
  const QuantizeEffort effort = state.range(2) ? QuantizeEffort::fast : QuantizeEffort::standard;
  GptqConfig cfg;
  const std::vector<float>& w = weights(rows, kCols);
  const HessianAccumulator& h = hessian();
  const std::vector<float> imp = h.importance();
  for (auto _ : state) {
    GgmlTarget target(Format::Q4_K, imp, effort);
    gptq_solve(cfg, {w.data(), rows, kCols}, h, target);
    benchmark::DoNotOptimize(target.result().data());
  }
  const double n = kCols;
  state.counters["FLOP/s"] =
      benchmark::Counter((4.0 / 3.0 * n * n * n + rows * n * n) * state.iterations(), benchmark::Counter::kIsRate);
}

// The Q4_K quantizer alone over the same matrix with the same imatrix: the part of
// BM_gptq_q4_K that the GSQ target does not pay (its block fits).
void BM_quantize_q4_K(benchmark::State& state) {
  const int64_t rows = state.range(0);
  ThreadScope scope(static_cast<int>(state.range(1)));
  const std::vector<float>& w = weights(rows, kCols);
  const std::vector<float> imp = hessian().importance();
  std::vector<std::byte> out(quantized_size(Format::Q4_K, rows, kCols));
  for (auto _ : state) {
    quantize(Format::Q4_K, {w.data(), rows, kCols}, out, imp);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["B/s"] = benchmark::Counter(4.0 * rows * kCols * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_ssyrk(benchmark::State& state) {
  blas::ThreadScope scope(resolve(static_cast<int>(state.range(0))));
  auto x = synthetic_activations(kTokens, kCols, 2);
  std::vector<float> c(kCols * kCols);
  for (auto _ : state) {
    cblas_ssyrk(LowbitRowMajor, LowbitUpper, LowbitTrans, kCols, kTokens, 1.0f, x.data(), kCols, 0.0f, c.data(), kCols);
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = benchmark::Counter(1.0 * kTokens * kCols * (kCols + 1) * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_hessian_add(benchmark::State& state) {
  blas::ThreadScope scope(resolve(static_cast<int>(state.range(0))));
  auto x = synthetic_activations(kTokens, kCols, 2);
  for (auto _ : state) {
    HessianAccumulator h(kCols);
    h.add({x.data(), kTokens, kCols});
    benchmark::DoNotOptimize(h.upper().data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(1.0 * kTokens * kCols * (kCols + 1) * state.iterations(), benchmark::Counter::kIsRate);
}

// Args: rows, threads (0 = all), act-order.
BENCHMARK(BM_sgemm)->ArgNames({"rows", "threads"})->ArgsProduct({{4096, 14336}, {1, 0}})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_gptq_solve)->ArgNames({"rows", "threads", "act_order"})->ArgsProduct({{4096, 14336}, {1, 0}, {0, 1}})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_gptq_q4_K)->ArgNames({"rows", "threads", "fast"})->ArgsProduct({{4096}, {1, 0}, {0, 1}})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_quantize_q4_K)->ArgNames({"rows", "threads"})->ArgsProduct({{4096}, {1, 0}})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_ssyrk)->ArgNames({"threads"})->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_hessian_add)->ArgNames({"threads"})->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);

}  // namespace
}  // namespace lowbit::bench

BENCHMARK_MAIN();
