// The packed GEMM (every entry of its dispatch table) in cache: one call over eight
// 16-row panels of 4096 columns (720 KB) and 64 activation rows (320 KB), the shape
// one task of PackedMatrix::multiply works on, so what is timed is the kernel's own
// work. Next to
// it an OpenBLAS SGEMM of the same 64 x 4096 x 64 shape on one thread, the peer the
// packed form has to beat (lowbit bench --family gemm measures whole matrices). Timed
// in CPU time, so other processes sharing the cores move it little. Counter: FLOP/s
// (2 x rows x cols x batch per call).
#include <random>

#include "bench_common.hpp"
#include "gptq/blas.hpp"
#include "lowbit/kernels/packed_matrix.hpp"

namespace lowbit::bench {
namespace {

constexpr int64_t kPanels = 8, kRows = 16 * kPanels, kCols = 4096, kBlocks = kCols / 32, kBatch = 64;
constexpr double kFlops = 2.0 * kRows * kCols * kBatch;

struct Operands {
  std::vector<PackedPanelBlock> panels;
  std::vector<PackedActivationBlock> acts;
};

// Random levels, scales and (Q4_1-like) non-zero offsets; real activations. Levels
// 0..15 are the 4-bit formats' kind (Q4_0, Q4_1, Q4_K), 0..31 the 5-bit ones', -128..127
// Q8_0's and IQ4_NL's: the AVX2 variant takes the three by different instructions.
Operands make_operands(int lowest, int highest) {
  Operands r;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> level(lowest, highest);
  std::uniform_real_distribution<float> real(-1.0f, 1.0f);
  r.panels.resize(static_cast<size_t>(kPanels * kBlocks));
  for (PackedPanelBlock& p : r.panels)
    for (int row = 0; row < 16; ++row) {
      int32_t sum = 0;
      for (int j = 0; j < 32; ++j) sum += p.codes[j / 4][row][j % 4] = static_cast<int8_t>(level(rng));
      p.bias[row] = 128 * sum;
      p.scale[row] = real(rng) * 1e-2f;
      p.offset[row] = real(rng) * 1e-1f;
    }
  const std::vector<float> x = synthetic_weights(kBatch, kCols, 2, Distribution::gaussian);
  r.acts = pack_activations({x.data(), kBatch, kCols});
  return r;
}
const Operands& four_bit_operands() {
  static const Operands o = make_operands(0, 15);
  return o;
}
const Operands& five_bit_operands() {
  static const Operands o = make_operands(0, 31);
  return o;
}
const Operands& int8_operands() {
  static const Operands o = make_operands(-128, 127);
  return o;
}

void BM_packed_gemm(benchmark::State& state, const PackedGemmKernel* k, const Operands& (*operands)()) {
  if (!k->supported_by_cpu()) {
    state.SkipWithError(("this CPU lacks " + k->needs.to_string()).c_str());
    return;
  }
  const Operands& o = operands();
  std::vector<float> y(static_cast<size_t>(kBatch * kRows));
  for (auto _ : state) {
    k->fn(o.panels.data(), o.acts.data(), kBlocks, kBatch, y.data(), kRows, static_cast<int>(kRows));
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(kFlops * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_sgemm_same_shape(benchmark::State& state) {
  blas::ThreadScope scope(1);
  std::vector<float> x(kBatch * kCols, 0.5f), w(kRows * kCols, 0.25f), y(kBatch * kRows);
  for (auto _ : state) {
    cblas_sgemm(LowbitRowMajor, LowbitNoTrans, LowbitTrans, static_cast<int>(kBatch), static_cast<int>(kRows),
                static_cast<int>(kCols), 1.0f, x.data(), kCols, w.data(), kCols, 0.0f, y.data(), kRows);
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = benchmark::Counter(kFlops * state.iterations(), benchmark::Counter::kIsRate);
}

int register_all() {
  for (const PackedGemmKernel& k : packed_gemm_kernels().variants()) {
    benchmark::RegisterBenchmark((std::string(k.name) + "/levels_0_15").c_str(), BM_packed_gemm, &k, four_bit_operands)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string(k.name) + "/levels_0_31").c_str(), BM_packed_gemm, &k, five_bit_operands)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string(k.name) + "/levels_int8").c_str(), BM_packed_gemm, &k, int8_operands)
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("sgemm_same_shape", BM_sgemm_same_shape)->Unit(benchmark::kMicrosecond);
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace lowbit::bench

BENCHMARK_MAIN();
