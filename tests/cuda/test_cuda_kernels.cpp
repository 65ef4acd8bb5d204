// Every CUDA kernel against the CPU scalar reference on fresh random data, with
// poisoned (NaN-byte) output buffers so an element a kernel skips fails. Without a
// GPU the device tests skip with a visible reason; the argument checks
// (can_implement, workspace sizes) are host code and run everywhere.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuda/blocks_for_test.hpp"
#include "lowbit/cuda/activations.hpp"
#include "lowbit/cuda/dequantize.hpp"
#include "lowbit/cuda/device.hpp"
#include "lowbit/cuda/gemm.hpp"
#include "lowbit/cuda/gemv.hpp"
#include "lowbit/cuda/gptq.hpp"
#include "lowbit/gptq/target.hpp"
#include "lowbit/lowbit.hpp"

namespace lowbit {
namespace {

#define LOWBIT_REQUIRE_GPU()                                                             \
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine: GPU test skipped"

void ok(cudaError_t e, const char* what) { ASSERT_EQ(e, cudaSuccess) << what << ": " << cudaGetErrorString(e); }

// Device memory filled with 0xFF bytes (NaN as f32, f16 and bf16) until a kernel writes it.
struct Dev {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Dev(size_t n) : bytes(n) {
    if (cudaMalloc(&p, n + 16) != cudaSuccess) throw Error("cudaMalloc failed");
    cudaMemset(p, 0xFF, n + 16);
  }
  template <class T>
  Dev(const std::vector<T>& host) : Dev(host.size() * sizeof(T)) {
    cudaMemcpy(p, host.data(), bytes, cudaMemcpyHostToDevice);
  }
  ~Dev() { cudaFree(p); }
  template <class T>
  T* as() const { return static_cast<T*>(p); }
  template <class T>
  std::vector<T> get() const {
    std::vector<T> h(bytes / sizeof(T));
    if (cudaDeviceSynchronize() != cudaSuccess) throw Error("kernel failed");
    cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost);
    return h;
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
};

std::vector<uint16_t> to_f16(const std::vector<float>& x) {
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = fp32_to_fp16(x[i]);
  return h;
}

// |got - want| <= tol * sum |w x| for every output, want and the magnitude in float64.
void expect_close(const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& mag,
                  double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_LE(std::fabs(got[i] - want[i]), tol * mag[i] + 1e-30) << what << " output " << i << ": " << got[i] << " vs " << want[i];
}

// y[b * rows + r] = sum_c w[r, c] x[b, c] in float64, and sum |w x|.
void reference_product(const std::vector<float>& w, const std::vector<float>& x, int64_t rows, int64_t cols, int64_t batch,
                       std::vector<double>& y, std::vector<double>& mag) {
  y.assign(static_cast<size_t>(rows * batch), 0.0);
  mag.assign(y.size(), 0.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0, m = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double p = static_cast<double>(w[static_cast<size_t>(r * cols + c)]) * x[static_cast<size_t>(b * cols + c)];
        s += p, m += std::fabs(p);
      }
      y[static_cast<size_t>(b * rows + r)] = s, mag[static_cast<size_t>(b * rows + r)] = m;
    }
}

std::string name(Format f) { return std::string(traits(f).name); }

// ---------------------------------------------------------------- host-side checks (no GPU needed)

TEST(CudaApi, CanImplementRejectsBadProblems) {
  alignas(16) static std::byte buf[4096];
  cuda::DequantizeArguments d{Format::Q4_K, buf, 2, 100, cuda::OutputType::f32, buf};
  EXPECT_EQ(cuda::can_implement(d), cuda::Status::invalid_problem);  // 100 is not a multiple of 256
  d.cols = 256;
  EXPECT_EQ(cuda::can_implement(d), cuda::Status::success);
  d.dst = buf + 2;
  EXPECT_EQ(cuda::can_implement(d), cuda::Status::misaligned_operand);

  cuda::GemvArguments g{Format::Q4_K, buf, 4, 256, 1, reinterpret_cast<const float*>(buf), nullptr,
                        reinterpret_cast<float*>(buf)};
  EXPECT_EQ(cuda::can_implement(g), cuda::Status::success);
  EXPECT_EQ(cuda::get_workspace_size(g), 8 * sizeof(block_q8_1));
  g.batch = cuda::kMaxGemvBatch + 1;
  EXPECT_EQ(cuda::can_implement(g), cuda::Status::invalid_problem);
  g.batch = 1;
  g.x_q8_1 = buf;  // both activation kinds given
  EXPECT_EQ(cuda::can_implement(g), cuda::Status::invalid_problem);
  g.x = nullptr;
  EXPECT_EQ(cuda::get_workspace_size(g), 0u);
  g.format = Format::F16;
  EXPECT_EQ(cuda::can_implement(g), cuda::Status::not_supported);

  cuda::GemmArguments m{Format::Q8_0, buf, 64, 64, 8, reinterpret_cast<const uint16_t*>(buf), reinterpret_cast<float*>(buf)};
  EXPECT_EQ(cuda::can_implement(m), cuda::Status::invalid_problem);  // batch below kMinGemmBatch
  m.batch = 16;
  EXPECT_EQ(cuda::can_implement(m), cuda::Status::success);
  m.rows = 65;
  EXPECT_EQ(cuda::can_implement(m), cuda::Status::invalid_problem);

  GsqMatrixRef ref{reinterpret_cast<const uint32_t*>(buf), reinterpret_cast<const float*>(buf),
                   reinterpret_cast<const int32_t*>(buf), nullptr, nullptr, 3, 64, 256, 128, 24};
  cuda::GsqGemvArguments gg{ref, 1, reinterpret_cast<const uint16_t*>(buf), reinterpret_cast<float*>(buf)};
  EXPECT_EQ(cuda::can_implement(gg), cuda::Status::not_supported);  // 3-bit codes
  gg.weights.bits = 4;
  gg.weights.words_per_row = 32;
  EXPECT_EQ(cuda::can_implement(gg), cuda::Status::success);

  cuda::GptqArguments p;
  p.target.search = ScaleSearch::mse;
  EXPECT_EQ(cuda::can_implement(p), cuda::Status::not_supported);
  p.target.search = ScaleSearch::rtn;
  p.solver.act_order = true;
  EXPECT_EQ(cuda::can_implement(p), cuda::Status::not_supported);

  EXPECT_THROW(cuda::throw_if_error(cuda::Status::misaligned_operand, "x"), Error);
  EXPECT_NO_THROW(cuda::throw_if_error(cuda::Status::success, "x"));
}

TEST(CudaApi, FamilyTablesCoverEveryFormat) {
  for (const auto& t : all_formats()) {
    bool in_dequantize = false, in_gemv = false, in_gemm = false;
    for (Format f : cuda::dequantize_formats()) in_dequantize |= f == t.format;
    for (Format f : cuda::gemv_formats()) in_gemv |= f == t.format;
    for (Format f : cuda::gemm_formats()) in_gemm |= f == t.format;
    EXPECT_TRUE(in_dequantize) << t.name;
    // Weight formats: every quantized format that is not activation-only.
    EXPECT_EQ(in_gemv, t.quantized && !t.activation_only) << t.name;
    EXPECT_EQ(in_gemm, t.quantized && !t.activation_only) << t.name;
  }
}

// ---------------------------------------------------------------- device tests

TEST(CudaKernels, DequantizeEveryFormatToEveryOutputType) {
  LOWBIT_REQUIRE_GPU();
  std::printf("device: %s\n", cuda::device_description().c_str());
  const int64_t rows = 7, cols = 1024;
  for (Format f : cuda::dequantize_formats()) {
    const auto q = test::random_blocks(f, rows, cols, 100 + static_cast<uint64_t>(f));
    std::vector<float> ref(static_cast<size_t>(rows * cols));
    dequantize(f, q, MatrixView<float>(ref.data(), rows, cols));
    Dev src(q);
    for (auto out : {cuda::OutputType::f32, cuda::OutputType::f16, cuda::OutputType::bf16}) {
      const size_t esize = out == cuda::OutputType::f32 ? 4 : 2;
      Dev dst(static_cast<size_t>(rows * cols) * esize);
      ASSERT_EQ(cuda::run(cuda::DequantizeArguments{f, src.p, rows, cols, out, dst.p}), cuda::Status::success) << name(f);
      if (out == cuda::OutputType::f32) {
        const auto got = dst.get<float>();
        for (size_t i = 0; i < ref.size(); ++i)
          ASSERT_EQ(std::memcmp(&got[i], &ref[i], 4), 0) << name(f) << " element " << i << ": " << got[i] << " vs " << ref[i];
      } else {
        const auto got = dst.get<uint16_t>();
        for (size_t i = 0; i < ref.size(); ++i) {
          const uint16_t want = out == cuda::OutputType::f16 ? fp32_to_fp16(ref[i]) : fp32_to_bf16(ref[i]);
          ASSERT_EQ(got[i], want) << name(f) << (out == cuda::OutputType::f16 ? " f16" : " bf16") << " element " << i;
        }
      }
    }
  }
}

TEST(CudaKernels, QuantizeQ8_1MatchesCpuBytes) {
  LOWBIT_REQUIRE_GPU();
  const int64_t rows = 9, cols = 4096;
  auto x = synthetic_activations(rows, cols, 7);
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = 0.0f;  // an all-zero block: d = 0
  std::vector<std::byte> want(quantized_size(Format::Q8_1, rows, cols));
  quantize_activations(Format::Q8_1, ConstMatrixView<float>(x.data(), rows, cols), want);
  Dev dx(x), dy(want.size());
  ASSERT_EQ(cuda::run(cuda::QuantizeQ8_1Arguments{dx.as<float>(), rows, cols, dy.p}), cuda::Status::success);
  const auto got = dy.get<std::byte>();
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(got[i], want[i]) << "byte " << i << " (block " << i / sizeof(block_q8_1) << ")";
}

TEST(CudaKernels, GemvEveryWeightFormatAgainstFloat64) {
  LOWBIT_REQUIRE_GPU();
  const int64_t rows = 67, cols = 2048;
  for (Format f : cuda::gemv_formats()) {
    const auto q = test::random_blocks(f, rows, cols, 200 + static_cast<uint64_t>(f));
    std::vector<float> w(static_cast<size_t>(rows * cols));
    dequantize(f, q, MatrixView<float>(w.data(), rows, cols));
    Dev dw(q);
    for (int64_t batch : {1, 3, 8}) {
      const auto x = synthetic_activations(batch, cols, 300 + static_cast<uint64_t>(batch));
      // The reference multiplies the activations the kernel sees: x through Q8_1.
      std::vector<std::byte> xq(quantized_size(Format::Q8_1, batch, cols));
      quantize_activations(Format::Q8_1, ConstMatrixView<float>(x.data(), batch, cols), xq);
      std::vector<float> xd(x.size());
      dequantize(Format::Q8_1, xq, MatrixView<float>(xd.data(), batch, cols));
      std::vector<double> want, mag;
      reference_product(w, xd, rows, cols, batch, want, mag);
      Dev dx(x), dy(static_cast<size_t>(rows * batch) * 4);
      cuda::GemvArguments a{f, dw.p, rows, cols, batch, dx.as<float>(), nullptr, dy.as<float>()};
      ASSERT_EQ(cuda::can_implement(a), cuda::Status::success);
      Dev ws(cuda::get_workspace_size(a));
      ASSERT_EQ(cuda::run(a, ws.p), cuda::Status::success) << name(f);
      expect_close(dy.get<float>(), want, mag, 1e-5, name(f) + " batch " + std::to_string(batch));
      // The same with the activations pre-quantized on the host.
      Dev dxq(xq), dy2(static_cast<size_t>(rows * batch) * 4);
      a.x = nullptr;
      a.x_q8_1 = dxq.p;
      a.y = dy2.as<float>();
      ASSERT_EQ(cuda::run(a), cuda::Status::success) << name(f);
      expect_close(dy2.get<float>(), want, mag, 1e-5, name(f) + " (Q8_1 input) batch " + std::to_string(batch));
    }
  }
}

struct GsqCase {
  int bits;
  GsqScheme scheme;
};
constexpr GsqCase kGsqCases[] = {{4, GsqScheme::asymmetric}, {4, GsqScheme::symmetric}, {4, GsqScheme::asymmetric_float},
                                 {8, GsqScheme::asymmetric}, {8, GsqScheme::symmetric}};

// A GSQ matrix on the device, and its dequantized values on the host.
struct DeviceGsq {
  GsqResult q;
  std::vector<float> w;
  std::unique_ptr<Dev> qweight, scales, zeros, mins;
  GsqMatrixRef ref{};
  DeviceGsq(const GsqCase& c, int64_t rows, int64_t cols, uint64_t seed) {
    GsqConfig cfg;
    cfg.bits = c.bits;
    cfg.scheme = c.scheme;
    cfg.group_size = 128;
    const auto src = synthetic_weights(rows, cols, seed);
    q = gsq_quantize(cfg, ConstMatrixView<float>(src.data(), rows, cols));
    w.resize(src.size());
    gsq_dequantize(q, MatrixView<float>(w.data(), rows, cols));
    qweight = std::make_unique<Dev>(q.qweight);
    scales = std::make_unique<Dev>(q.scales);
    zeros = std::make_unique<Dev>(q.zeros);
    if (!q.mins.empty()) mins = std::make_unique<Dev>(q.mins);
    ref = GsqMatrixRef{qweight->as<uint32_t>(), scales->as<float>(), zeros->as<int32_t>(),
                       mins ? mins->as<float>() : nullptr, nullptr, c.bits, rows, cols, q.group(), q.words_per_row()};
  }
};

TEST(CudaKernels, GsqGemvAgainstFloat64) {
  LOWBIT_REQUIRE_GPU();
  const int64_t rows = 33, cols = 1024;
  for (const GsqCase& c : kGsqCases) {
    DeviceGsq m(c, rows, cols, 400 + c.bits);
    for (int64_t batch : {1, 5, 8}) {
      const auto xh = to_f16(synthetic_activations(batch, cols, 500 + static_cast<uint64_t>(batch)));
      std::vector<float> xf(xh.size());
      for (size_t i = 0; i < xh.size(); ++i) xf[i] = fp16_to_fp32(xh[i]);
      std::vector<double> want, mag;
      reference_product(m.w, xf, rows, cols, batch, want, mag);
      Dev dx(xh), dy(static_cast<size_t>(rows * batch) * 4);
      ASSERT_EQ(cuda::run(cuda::GsqGemvArguments{m.ref, batch, dx.as<uint16_t>(), dy.as<float>()}), cuda::Status::success);
      expect_close(dy.get<float>(), want, mag, 1e-5, m.q.config.describe() + " batch " + std::to_string(batch));
    }
  }
}

// Tensor cores multiply f16: the reference uses the weights rounded to f16 as well.
// Their f32 accumulation need not round to nearest at every step, hence 1e-4.
void gemm_reference(const std::vector<float>& w, const std::vector<uint16_t>& xh, int64_t rows, int64_t cols, int64_t batch,
                    std::vector<double>& want, std::vector<double>& mag) {
  std::vector<float> w16(w.size()), xf(xh.size());
  for (size_t i = 0; i < w.size(); ++i) w16[i] = round_fp16(w[i]);
  for (size_t i = 0; i < xh.size(); ++i) xf[i] = fp16_to_fp32(xh[i]);
  reference_product(w16, xf, rows, cols, batch, want, mag);
}

TEST(CudaKernels, GemmEveryWeightFormatAgainstFloat64) {
  LOWBIT_REQUIRE_GPU();
  const int64_t rows = 128, cols = 512;
  for (Format f : cuda::gemm_formats()) {
    const auto q = test::random_blocks(f, rows, cols, 600 + static_cast<uint64_t>(f));
    std::vector<float> w(static_cast<size_t>(rows * cols));
    dequantize(f, q, MatrixView<float>(w.data(), rows, cols));
    Dev dw(q);
    for (int64_t batch : {16, 100}) {
      const auto xh = to_f16(synthetic_activations(batch, cols, 700 + static_cast<uint64_t>(batch)));
      std::vector<double> want, mag;
      gemm_reference(w, xh, rows, cols, batch, want, mag);
      Dev dx(xh), dy(static_cast<size_t>(rows * batch) * 4);
      ASSERT_EQ(cuda::run(cuda::GemmArguments{f, dw.p, rows, cols, batch, dx.as<uint16_t>(), dy.as<float>()}),
                cuda::Status::success)
          << name(f);
      expect_close(dy.get<float>(), want, mag, 1e-4, name(f) + " GEMM batch " + std::to_string(batch));
    }
  }
}

TEST(CudaKernels, GsqGemmAgainstFloat64) {
  LOWBIT_REQUIRE_GPU();
  const int64_t rows = 192, cols = 1024;
  for (const GsqCase& c : kGsqCases) {
    DeviceGsq m(c, rows, cols, 800 + c.bits);
    for (int64_t batch : {16, 70}) {
      const auto xh = to_f16(synthetic_activations(batch, cols, 900 + static_cast<uint64_t>(batch)));
      std::vector<double> want, mag;
      gemm_reference(m.w, xh, rows, cols, batch, want, mag);
      Dev dx(xh), dy(static_cast<size_t>(rows * batch) * 4);
      ASSERT_EQ(cuda::run(cuda::GsqGemmArguments{m.ref, batch, dx.as<uint16_t>(), dy.as<float>()}), cuda::Status::success);
      expect_close(dy.get<float>(), want, mag, 1e-4, m.q.config.describe() + " GEMM batch " + std::to_string(batch));
    }
  }
}

TEST(CudaKernels, HessianSyrkMatchesCpuAccumulator) {
  LOWBIT_REQUIRE_GPU();
  const int64_t cols = 320;
  const auto x1 = synthetic_activations(200, cols, 11), x2 = synthetic_activations(57, cols, 12);
  HessianAccumulator cpu(cols);
  cpu.add(ConstMatrixView<float>(x1.data(), 200, cols));
  cpu.add(ConstMatrixView<float>(x2.data(), 57, cols));
  const auto want = cpu.matrix();
  Dev d1(x1), d2(x2), h(static_cast<size_t>(cols * cols) * 4);
  ASSERT_EQ(cuda::run(cuda::HessianArguments{d1.as<float>(), 200, cols, 0, h.as<float>()}), cuda::Status::success);
  ASSERT_EQ(cuda::run(cuda::HessianArguments{d2.as<float>(), 57, cols, 200, h.as<float>()}), cuda::Status::success);
  const auto got = h.get<float>();
  for (int64_t i = 0; i < cols; ++i)
    for (int64_t j = i; j < cols; ++j) {
      const double scale = std::sqrt(static_cast<double>(want[i * cols + i]) * want[j * cols + j]);
      ASSERT_LE(std::fabs(got[i * cols + j] - want[i * cols + j]), 1e-4 * scale) << "H[" << i << ", " << j << "]";
    }
}

struct GptqCase {
  int bits, group;
  GsqScheme scheme;
};

TEST(CudaKernels, GptqMatchesCpuSolver) {
  LOWBIT_REQUIRE_GPU();
  const int64_t rows = 256, cols = 512;
  const auto w = synthetic_weights(rows, cols, 21);
  const auto x = synthetic_activations(1024, cols, 22);
  HessianAccumulator acc(cols);
  acc.add(ConstMatrixView<float>(x.data(), 1024, cols));
  auto hu = acc.matrix();
  for (int c = 0; c < cols; c += 97) {  // dead columns: zero row and column of H
    for (int k = 0; k < cols; ++k) hu[c * cols + k] = hu[k * cols + c] = 0.0f;
  }
  for (const GptqCase& g : {GptqCase{4, 128, GsqScheme::asymmetric}, GptqCase{3, 32, GsqScheme::symmetric},
                            GptqCase{8, 0, GsqScheme::asymmetric}, GptqCase{2, 256, GsqScheme::asymmetric}}) {
    GsqConfig tc;
    tc.bits = g.bits;
    tc.group_size = g.group;
    tc.scheme = g.scheme;
    tc.search = ScaleSearch::rtn;
    GptqConfig sc;
    GsqTarget target(tc);
    gptq_solve(sc, ConstMatrixView<float>(w.data(), rows, cols), hu, target);
    const GsqResult cpu = target.result();
    cuda::GptqGpuReport rep;
    const GsqResult gpu = cuda::gptq_solve_host(sc, tc, ConstMatrixView<float>(w.data(), rows, cols), hu, &rep);
    EXPECT_EQ(rep.dead_columns, (cols + 96) / 97);
    // The tolerance of the CPU solver's own reference test (tests/interop/
    // test_gptq_reference.py, against float64 numpy): at most 0.1% of codes differ,
    // by at most one step, and the layer output error agrees to 1e-4 relative.
    int64_t differ = 0, max_diff = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t d = std::abs(static_cast<int64_t>(cpu.code(r, c)) - static_cast<int64_t>(gpu.code(r, c)));
        differ += d != 0;
        max_diff = std::max(max_diff, d);
      }
    const double frac = static_cast<double>(differ) / static_cast<double>(rows * cols);
    EXPECT_LE(frac, 1e-3) << tc.describe();
    EXPECT_LE(max_diff, 1) << tc.describe();
    std::vector<float> qc(w.size()), qg(w.size());
    gsq_dequantize(cpu, MatrixView<float>(qc.data(), rows, cols));
    gsq_dequantize(gpu, MatrixView<float>(qg.data(), rows, cols));
    const double ec = layer_output_error(ConstMatrixView<float>(w.data(), rows, cols), ConstMatrixView<float>(qc.data(), rows, cols), hu);
    const double eg = layer_output_error(ConstMatrixView<float>(w.data(), rows, cols), ConstMatrixView<float>(qg.data(), rows, cols), hu);
    EXPECT_LE(std::fabs(eg - ec), 1e-4 * ec) << tc.describe() << ": layer error CPU " << ec << ", GPU " << eg;
    std::printf("GPTQ %s: codes differing %.5f (max %lld steps), layer error CPU %.6g GPU %.6g\n", tc.describe().c_str(), frac,
                static_cast<long long>(max_diff), ec, eg);
  }
}

}  // namespace
}  // namespace lowbit
