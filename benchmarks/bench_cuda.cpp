// CUDA benchmarks (built only with CUDA). Every figure is a ratio against a ceiling or
// a peer measured in the same run (docs/benchmarks.md):
//   Copy/*        device-to-device cudaMemcpy: the bandwidth ceiling (bytes read + written)
//   Gemv/*        weight bytes read per second at batch 1 and 8, 14336 x 4096
//   Gemm/*        FLOP/s at batch 16, 64, 512 (batch 1 is the GEMV), 14336 x 4096,
//                 against cuBLAS f16 (cublasGemmEx, f16 in, f32 accumulate and out)
//   Gptq/*        the whole GPU solve (4-bit g128, min/max groups) for 4096 x 4096 and
//                 14336 x 4096, Hessian from 2048 tokens by SYRK
// Kernels are timed with CUDA events (UseManualTime); GPTQ, which synchronises, by wall clock.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "lowbit/cuda/activations.hpp"
#include "lowbit/cuda/device.hpp"
#include "lowbit/cuda/gemm.hpp"
#include "lowbit/cuda/gemv.hpp"
#include "lowbit/cuda/gptq.hpp"
#include "lowbit/lowbit.hpp"

namespace {

using namespace lowbit;

constexpr int64_t kRows = 14336, kCols = 4096;

void ok(cudaError_t e) {
  if (e != cudaSuccess) throw Error(std::string("CUDA: ") + cudaGetErrorString(e));
}

// Device buffers live for the whole run, one per name and size.
void* device_buffer(const std::string& name, size_t bytes) {
  static std::map<std::string, void*> cache;
  auto& p = cache[name + ":" + std::to_string(bytes)];
  if (p == nullptr) ok(cudaMalloc(&p, bytes));
  return p;
}

uint64_t g_state = 88172645463325252ull;
uint32_t next_random() {
  g_state ^= g_state << 13, g_state ^= g_state >> 7, g_state ^= g_state << 17;
  return static_cast<uint32_t>(g_state);
}

// Random block bytes whose every byte is below 0x3C: fp16 and f32 scale fields are then
// finite and below 1, the speed of every kernel is that of real data.
void* random_weights(Format f, int64_t rows, int64_t cols) {
  const size_t bytes = quantized_size(f, rows, cols);
  void* d = device_buffer("w" + std::string(traits(f).name) + std::to_string(rows), bytes);
  std::vector<uint8_t> h(bytes);
  for (auto& b : h) b = static_cast<uint8_t>(next_random() % 0x3C);
  ok(cudaMemcpy(d, h.data(), bytes, cudaMemcpyHostToDevice));
  return d;
}

template <class T>
T* random_device(const std::string& name, size_t n, T lo, T span) {
  auto* d = static_cast<T*>(device_buffer(name, n * sizeof(T)));
  std::vector<T> h(n);
  for (auto& v : h) v = static_cast<T>(lo + static_cast<T>((next_random() % 1000) / 1000.0 * span));
  ok(cudaMemcpy(d, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

uint32_t* random_words(const std::string& name, size_t n) {
  auto* d = static_cast<uint32_t*>(device_buffer(name, n * 4));
  std::vector<uint32_t> h(n);
  for (auto& v : h) v = next_random();
  ok(cudaMemcpy(d, h.data(), n * 4, cudaMemcpyHostToDevice));
  return d;
}

uint16_t* random_f16(const std::string& name, size_t n) {
  auto* d = static_cast<uint16_t*>(device_buffer(name, n * 2));
  std::vector<uint16_t> h(n);
  for (auto& v : h) v = fp32_to_fp16(static_cast<float>(next_random() % 2001) / 1000.0f - 1.0f);
  ok(cudaMemcpy(d, h.data(), n * 2, cudaMemcpyHostToDevice));
  return d;
}

// Times `body` (which enqueues work on the default stream) with CUDA events.
template <class Body>
void time_kernel(benchmark::State& state, Body body) {
  if (cuda::device_count() == 0) {
    state.SkipWithError("no CUDA device");
    return;
  }
  cudaEvent_t a, b;
  ok(cudaEventCreate(&a));
  ok(cudaEventCreate(&b));
  // A failing kernel (can_implement, launch) is reported on its benchmark, not fatal.
  try {
    body();  // warm-up
    ok(cudaDeviceSynchronize());
    for (auto _ : state) {
      ok(cudaEventRecord(a));
      body();
      ok(cudaEventRecord(b));
      ok(cudaEventSynchronize(b));
      float ms = 0;
      ok(cudaEventElapsedTime(&ms, a, b));
      state.SetIterationTime(ms / 1e3);
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
}

void Copy(benchmark::State& state) {
  const size_t bytes = size_t{1} << 30;
  if (cuda::device_count() == 0) return state.SkipWithError("no CUDA device");
  void* src = device_buffer("copy_src", bytes);
  void* dst = device_buffer("copy_dst", bytes);
  time_kernel(state, [&] { ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice)); });
  state.counters["bytes/s"] = benchmark::Counter(2.0 * bytes * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(Copy)->UseManualTime()->Unit(benchmark::kMicrosecond);

void Gemv(benchmark::State& state, Format f) {
  if (cuda::device_count() == 0) return state.SkipWithError("no CUDA device");
  const int64_t batch = state.range(0);
  cuda::GemvArguments a{f, random_weights(f, kRows, kCols), kRows, kCols, batch, nullptr, nullptr, nullptr};
  // Activations pre-quantized, as a decoder loop does once per layer input.
  auto* x = random_device<float>("gemv_x", static_cast<size_t>(batch * kCols), -1.0f, 2.0f);
  a.x_q8_1 = device_buffer("gemv_xq" + std::to_string(batch), static_cast<size_t>(batch * kCols / 32) * 36);
  if (cuda::run(cuda::QuantizeQ8_1Arguments{x, batch, kCols, const_cast<void*>(a.x_q8_1)}) != cuda::Status::success)
    return state.SkipWithError("Q8_1 quantization failed");
  a.y = static_cast<float*>(device_buffer("gemv_y", static_cast<size_t>(8 * kRows) * 4));
  time_kernel(state, [&] { cuda::throw_if_error(cuda::run(a), "gemv"); });
  state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(quantized_size(f, kRows, kCols)) * state.iterations(),
                                                 benchmark::Counter::kIsRate);
}

GsqMatrixRef random_gsq(int bits) {
  const int64_t group = 128, words = kCols * bits / 32, groups = kCols / group;
  const std::string tag = std::to_string(bits);
  return GsqMatrixRef{random_words("gsq_q" + tag, static_cast<size_t>(kRows * words)),
                      random_device<float>("gsq_s" + tag, static_cast<size_t>(kRows * groups), 0.001f, 0.01f),
                      random_device<int32_t>("gsq_z" + tag, static_cast<size_t>(kRows * groups), 1 << (bits - 1), 0),
                      nullptr, nullptr, bits, kRows, kCols, group, words};
}

void GsqGemv(benchmark::State& state, int bits) {
  if (cuda::device_count() == 0) return state.SkipWithError("no CUDA device");
  const int64_t batch = state.range(0);
  const GsqMatrixRef m = random_gsq(bits);
  cuda::GsqGemvArguments a{m, batch, random_f16("gsq_x", static_cast<size_t>(8 * kCols)),
                           static_cast<float*>(device_buffer("gemv_y", static_cast<size_t>(8 * kRows) * 4))};
  time_kernel(state, [&] { cuda::throw_if_error(cuda::run(a), "gsq gemv"); });
  const double bytes = static_cast<double>(kRows) * kCols * bits / 8 + 2.0 * kRows * (kCols / 128) * 4;
  state.counters["bytes/s"] = benchmark::Counter(bytes * state.iterations(), benchmark::Counter::kIsRate);
}

void flops(benchmark::State& state, int64_t batch) {
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * kRows * kCols * batch * state.iterations(), benchmark::Counter::kIsRate);
}

void Gemm(benchmark::State& state, Format f) {
  if (cuda::device_count() == 0) return state.SkipWithError("no CUDA device");
  const int64_t batch = state.range(0);
  cuda::GemmArguments a{f, random_weights(f, kRows, kCols), kRows, kCols, batch,
                        random_f16("gemm_x", static_cast<size_t>(4096 * kCols)),
                        static_cast<float*>(device_buffer("gemm_y", static_cast<size_t>(4096 * kRows) * 4))};
  time_kernel(state, [&] { cuda::throw_if_error(cuda::run(a), "gemm"); });
  flops(state, batch);
}

void GsqGemm(benchmark::State& state, int bits) {
  if (cuda::device_count() == 0) return state.SkipWithError("no CUDA device");
  const int64_t batch = state.range(0);
  cuda::GsqGemmArguments a{random_gsq(bits), batch, random_f16("gemm_x", static_cast<size_t>(4096 * kCols)),
                           static_cast<float*>(device_buffer("gemm_y", static_cast<size_t>(4096 * kRows) * 4))};
  time_kernel(state, [&] { cuda::throw_if_error(cuda::run(a), "gsq gemm"); });
  flops(state, batch);
}

// The peer: the same product with f16 weights through cuBLAS.
void CublasF16(benchmark::State& state) {
  if (cuda::device_count() == 0) return state.SkipWithError("no CUDA device");
  const int64_t batch = state.range(0);
  static cublasHandle_t h = [] {
    cublasHandle_t t;
    cublasCreate(&t);
    return t;
  }();
  auto* w = random_f16("cublas_w", static_cast<size_t>(kRows * kCols));
  auto* x = random_f16("gemm_x", static_cast<size_t>(4096 * kCols));
  auto* y = static_cast<float*>(device_buffer("gemm_y", static_cast<size_t>(4096 * kRows) * 4));
  const float one = 1.0f, zero = 0.0f;
  // Column-major: Y^T (rows x batch) = W (rows x cols, given as its row-major transpose) * X^T.
  time_kernel(state, [&] {
    if (cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(kRows), static_cast<int>(batch), static_cast<int>(kCols),
                     &one, w, CUDA_R_16F, static_cast<int>(kCols), x, CUDA_R_16F, static_cast<int>(kCols), &zero, y,
                     CUDA_R_32F, static_cast<int>(kRows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
      throw Error("cublasGemmEx failed");
  });
  flops(state, batch);
}

void Gptq(benchmark::State& state) {
  if (cuda::device_count() == 0) return state.SkipWithError("no CUDA device");
  const int64_t rows = state.range(0), cols = state.range(1), tokens = 2048;
  const std::string tag = std::to_string(rows);
  cuda::GptqArguments a;
  a.target.bits = 4;
  a.target.group_size = 128;
  a.target.search = ScaleSearch::rtn;
  a.rows = rows;
  a.cols = cols;
  a.w = random_device<float>("gptq_w" + tag, static_cast<size_t>(rows * cols), -1.0f, 2.0f);
  auto* x = random_device<float>("gptq_x", static_cast<size_t>(tokens * cols), -1.0f, 2.0f);
  auto* h = static_cast<float*>(device_buffer("gptq_h", static_cast<size_t>(cols * cols) * 4));
  if (cuda::run(cuda::HessianArguments{x, tokens, cols, 0, h}) != cuda::Status::success)
    return state.SkipWithError("Hessian (SYRK) failed");
  a.h_upper = h;
  a.codes = static_cast<uint8_t*>(device_buffer("gptq_c" + tag, static_cast<size_t>(rows * cols)));
  a.scales = static_cast<float*>(device_buffer("gptq_s" + tag, static_cast<size_t>(rows * cols / 128) * 4));
  a.zeros = static_cast<int32_t*>(device_buffer("gptq_z" + tag, static_cast<size_t>(rows * cols / 128) * 4));
  try {
    void* ws = device_buffer("gptq_ws" + tag, cuda::get_workspace_size(a));
    cuda::run(a, ws);  // warm-up: handles, kernels loaded
    for (auto _ : state) {
      const auto t0 = std::chrono::steady_clock::now();
      cuda::run(a, ws);
      state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}
BENCHMARK(Gptq)->Args({4096, 4096})->Args({14336, 4096})->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

void register_all() {
  for (Format f : cuda::gemv_formats())
    benchmark::RegisterBenchmark(("Gemv/" + std::string(traits(f).name)).c_str(), Gemv, f)
        ->Arg(1)->Arg(8)->UseManualTime()->Unit(benchmark::kMicrosecond);
  for (int bits : {4, 8})
    benchmark::RegisterBenchmark(("Gemv/GSQ_int" + std::to_string(bits) + "_g128").c_str(), GsqGemv, bits)
        ->Arg(1)->Arg(8)->UseManualTime()->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("Gemm/cuBLAS_f16", CublasF16)
      ->Arg(1)->Arg(16)->Arg(64)->Arg(512)->UseManualTime()->Unit(benchmark::kMicrosecond);
  for (Format f : {Format::Q4_0, Format::Q4_K, Format::Q8_0, Format::Q6_K})
    benchmark::RegisterBenchmark(("Gemm/" + std::string(traits(f).name)).c_str(), Gemm, f)
        ->Arg(16)->Arg(64)->Arg(512)->UseManualTime()->Unit(benchmark::kMicrosecond);
  for (int bits : {4, 8})
    benchmark::RegisterBenchmark(("Gemm/GSQ_int" + std::to_string(bits) + "_g128").c_str(), GsqGemm, bits)
        ->Arg(16)->Arg(64)->Arg(512)->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (lowbit::cuda::device_count() > 0) std::printf("device: %s\n", lowbit::cuda::device_description().c_str());
  benchmark::AddCustomContext("device", lowbit::cuda::device_count() > 0 ? lowbit::cuda::device_description() : "none");
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
