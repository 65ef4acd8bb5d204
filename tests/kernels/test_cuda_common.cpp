// The math the CUDA kernels run, checked on the CPU: kernels/common/block_levels.hpp
// and gsq_device.hpp are LOWBIT_HD, so the same functions compile here and every
// layout, dp4a packing and GPTQ quantizer step the GPU uses is tested without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/block_levels.hpp"
#include "common/gsq_device.hpp"
#include "cuda/blocks_for_test.hpp"
#include "cuda/format_dispatch.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gptq/target.hpp"
#include "lowbit/gsq/group_fit.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/lowbit.hpp"

namespace lowbit {
namespace {

using kernels::BlockLevels;

std::vector<Format> block_formats() {
  std::vector<Format> v;
  for (const auto& t : all_formats())
    if (t.quantized) v.push_back(t.format);
  return v;
}

class SharedBlockMath : public ::testing::TestWithParam<Format> {};

// decode_element, the CUDA decoders' only source of values, equals the CPU scalar
// dequantizer bit for bit, at unit scale, near fp16's subnormals and near its top.
TEST_P(SharedBlockMath, DecodeElementEqualsScalarDequantizer) {
  const Format f = GetParam();
  const int64_t rows = 3, cols = 1024;
  for (float scale : {1.0f, 1e-6f, 3e4f}) {
    const auto q = test::random_blocks(f, rows, cols, 11, scale);
    std::vector<float> ref(static_cast<size_t>(rows * cols));
    dequantize(f, q, MatrixView<float>(ref.data(), rows, cols));
    ASSERT_TRUE(test::visit_block_format(f, [&](auto tag) {
      constexpr Format F = decltype(tag)::value;
      using Block = typename BlockLevels<F>::Block;
      const auto* blocks = reinterpret_cast<const Block*>(q.data());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const float got = kernels::decode_element<F>(blocks + r * (cols / BlockLevels<F>::elems), c);
          const float want = ref[static_cast<size_t>(r * cols + c)];
          ASSERT_EQ(std::memcmp(&got, &want, 4), 0)
              << traits(f).name << " scale " << scale << " element (" << r << ", " << c << "): " << got << " vs " << want;
        }
    }));
  }
}

// levels4 (word-level fast paths included) packs exactly level(e .. e+3).
TEST_P(SharedBlockMath, Levels4PacksFourLevels) {
  const Format f = GetParam();
  const auto q = test::random_blocks(f, 1, 512, 5);
  ASSERT_TRUE(test::visit_block_format(f, [&](auto tag) {
    constexpr Format F = decltype(tag)::value;
    using L = BlockLevels<F>;
    const auto* blocks = reinterpret_cast<const typename L::Block*>(q.data());
    for (int64_t b = 0; b < 512 / L::elems; ++b)
      for (int e = 0; e < L::elems; e += 4) {
        const int want = kernels::pack_int8x4(L::level(blocks[b], e), L::level(blocks[b], e + 1),
                                              L::level(blocks[b], e + 2), L::level(blocks[b], e + 3));
        ASSERT_EQ(kernels::levels4<F>(blocks[b], e), want) << traits(f).name << " block " << b << " element " << e;
      }
  }));
}

// The GEMV's chunk product against Q8_1 activations, summed over a row, equals a
// float64 product of the dequantized weights and the dequantized activations.
TEST_P(SharedBlockMath, ChunkDotQ8_1MatchesFloat64) {
  const Format f = GetParam();
  if (traits(f).activation_only) GTEST_SKIP() << traits(f).name << " is an activation format, not a GEMV weight";
  const int64_t rows = 4, cols = 2048;
  const auto q = test::random_blocks(f, rows, cols, 21);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  dequantize(f, q, MatrixView<float>(w.data(), rows, cols));
  const auto x = synthetic_activations(1, cols, 22);
  std::vector<std::byte> xq(quantized_size(Format::Q8_1, 1, cols));
  quantize_activations(Format::Q8_1, ConstMatrixView<float>(x.data(), 1, cols), xq);
  std::vector<float> xd(static_cast<size_t>(cols));
  dequantize(Format::Q8_1, xq, MatrixView<float>(xd.data(), 1, cols));
  const auto* xb = reinterpret_cast<const block_q8_1*>(xq.data());
  ASSERT_TRUE(test::visit_block_format(f, [&](auto tag) {
    constexpr Format F = decltype(tag)::value;
    using Block = typename BlockLevels<F>::Block;
    const auto* blocks = reinterpret_cast<const Block*>(q.data());
    for (int64_t r = 0; r < rows; ++r) {
      float got = 0;
      for (int64_t c = 0; c < cols / 32; ++c)
        got += kernels::chunk_dot_q8_1<F>(blocks + r * (cols / BlockLevels<F>::elems), c, xb[c]);
      double want = 0, mag = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double p = static_cast<double>(w[static_cast<size_t>(r * cols + c)]) * xd[static_cast<size_t>(c)];
        want += p;
        mag += std::fabs(p);
      }
      EXPECT_LE(std::fabs(got - want), 1e-5 * mag) << traits(f).name << " row " << r << ": " << got << " vs " << want;
    }
  }));
}

INSTANTIATE_TEST_SUITE_P(Formats, SharedBlockMath, ::testing::ValuesIn(block_formats()),
                         [](const ::testing::TestParamInfo<Format>& i) { return std::string(traits(i.param).name); });

TEST(SharedMath, Dp4aIsSignedByteDotProduct) {
  // bytes (a) 1, -2, 127, -128 and (b) -1, 3, 2, -1: -1 - 6 + 254 + 128 = 375, plus 10.
  EXPECT_EQ(kernels::dp4a(kernels::pack_int8x4(1, -2, 127, -128), kernels::pack_int8x4(-1, 3, 2, -1), 10), 385);
}

// GSQ: decode and the word dot product against gsq_dequantize, the min/max fit and the
// encoder against the CPU quantizer, for every bit width, both schemes and storages.
TEST(SharedMath, GsqDecodeAndWordDotMatchCpu) {
  const int64_t rows = 5, cols = 512;
  const auto w = synthetic_weights(rows, cols, 31);
  for (int bits : {4, 8})
    for (GsqScheme scheme : {GsqScheme::asymmetric, GsqScheme::symmetric, GsqScheme::asymmetric_float}) {
      GsqConfig cfg;
      cfg.bits = bits;
      cfg.group_size = 64;
      cfg.scheme = scheme;
      const GsqResult q = gsq_quantize(cfg, ConstMatrixView<float>(w.data(), rows, cols));
      std::vector<float> ref(static_cast<size_t>(rows * cols));
      gsq_dequantize(q, MatrixView<float>(ref.data(), rows, cols));
      const float* mins = q.mins.empty() ? nullptr : q.mins.data();
      const auto x = synthetic_activations(1, cols, 32);
      std::vector<uint16_t> xh(x.size());
      for (size_t i = 0; i < x.size(); ++i) xh[i] = fp32_to_fp16(x[i]);
      for (int64_t r = 0; r < rows; ++r) {
        double want = 0, mag = 0;
        for (int64_t c = 0; c < cols; ++c) {
          const float got = kernels::gsq_decode(q.qweight.data(), q.words_per_row(), bits, q.groups(), q.group(),
                                                q.scales.data(), q.zeros.data(), mins, r, c);
          ASSERT_EQ(got, ref[static_cast<size_t>(r * cols + c)]) << cfg.describe() << " (" << r << ", " << c << ")";
          const double p = static_cast<double>(got) * fp16_to_fp32(xh[static_cast<size_t>(c)]);
          want += p, mag += std::fabs(p);
        }
        const int per = 32 / bits;
        float acc = 0;
        for (int64_t wd = 0; wd < cols / per; ++wd) {
          const int64_t g = r * q.groups() + wd * per / q.group();
          float qx = 0, sx = 0;
          kernels::gsq_word_dot(q.qweight[static_cast<size_t>(r * q.words_per_row() + wd)], bits, xh.data() + wd * per, qx, sx);
          acc += mins ? q.scales[g] * qx + mins[g] * sx : q.scales[g] * qx + -q.scales[g] * static_cast<float>(q.zeros[g]) * sx;
        }
        EXPECT_LE(std::fabs(acc - want), 1e-5 * mag) << cfg.describe() << " row " << r;
      }
    }
}

TEST(SharedMath, GptqRtnFitAndEncoderMatchCpuQuantizer) {
  const auto w = synthetic_weights(64, 128, 41);
  for (int bits = 2; bits <= 8; ++bits)
    for (GsqScheme scheme : {GsqScheme::asymmetric, GsqScheme::symmetric})
      for (ScaleStorage st : {ScaleStorage::fp16, ScaleStorage::bf16, ScaleStorage::fp32}) {
        GsqConfig cfg;
        cfg.bits = bits;
        cfg.scheme = scheme;
        cfg.search = ScaleSearch::rtn;
        cfg.scale_storage = st;
        for (int64_t r = 0; r < 64; ++r) {
          const float* x = w.data() + r * 128;
          // Stride 2 and a scaled-down row as well: the GPU fits columns of a row-major tile.
          const GroupParams want = fit_group(cfg, x, 64, 2);
          const kernels::GsqIntParams got =
              kernels::gsq_fit_rtn(x, 64, 2, bits, scheme == GsqScheme::symmetric, static_cast<int>(st));
          ASSERT_EQ(got.scale, want.scale) << cfg.describe() << " row " << r;
          ASSERT_EQ(got.zero, want.zero) << cfg.describe() << " row " << r;
          for (int64_t c = 0; c < 128; ++c) {
            const float v = x[c] * 1.7f;
            const uint32_t code = kernels::gsq_encode(got, bits, v);
            ASSERT_EQ(code, encode_value(cfg, want, v)) << cfg.describe() << " value " << v;
            ASSERT_EQ(kernels::gsq_decode_value(got, code), decode_value(cfg, want, code));
          }
        }
      }
  // A zero group: scale 0, every code the zero point.
  const float zeros[8] = {};
  const auto p = kernels::gsq_fit_rtn(zeros, 8, 1, 4, false, 0);
  EXPECT_EQ(p.scale, 0.0f);
  EXPECT_EQ(kernels::gsq_encode(p, 4, 0.0f), static_cast<uint32_t>(p.zero));
}

// Replays the GPU GPTQ driver on the CPU: the same block plan (groups fitted, columns
// swept, the SGEMM's column-major operands), the same per-column step, with the CPU's
// H^-1 factor and a naive column-major GEMM in place of cuSOLVER and cuBLAS. It must
// agree with gptq_solve within the CPU solver's own reference tolerance (at most 0.1%
// of codes differ, by at most one step): this checks the driver's index math, which
// the GPU tests can only check end to end.
TEST(SharedMath, GptqDriverPlanReplaysCpuSolver) {
  const int64_t rows = 48, n = 512;
  const auto w = synthetic_weights(rows, n, 61);
  const auto x = synthetic_activations(1024, n, 62);
  HessianAccumulator acc(n);
  acc.add(ConstMatrixView<float>(x.data(), 1024, n));
  const auto h = acc.matrix();
  struct Case {
    int bits, group;
    GsqScheme scheme;
  };
  for (const Case& cs : {Case{4, 128, GsqScheme::asymmetric}, Case{3, 32, GsqScheme::symmetric},
                         Case{8, 0, GsqScheme::asymmetric}, Case{2, 256, GsqScheme::asymmetric}}) {
    GsqConfig tc;
    tc.bits = cs.bits;
    tc.group_size = cs.group;
    tc.scheme = cs.scheme;
    tc.search = ScaleSearch::rtn;
    GptqConfig sc;
    GsqTarget target(tc);
    gptq_solve(sc, ConstMatrixView<float>(w.data(), rows, n), h, target);
    const GsqResult cpu = target.result();

    // The damped factor, as the solver (and the GPU driver) computes it.
    double mean = 0;
    for (int64_t i = 0; i < n; ++i) mean += h[i * n + i];
    mean /= static_cast<double>(n);
    auto damped = h;
    for (int64_t i = 0; i < n; ++i) damped[i * n + i] += static_cast<float>(sc.damp_percent * mean);
    std::vector<float> hinv;
    ASSERT_TRUE(inverse_cholesky_upper(damped, n, hinv));

    const int64_t group = tc.resolved_group(n), groups = n / group;
    const int64_t block = kernels::gptq_effective_block(sc.block_size, group, n);
    std::vector<float> wk = w, scales(static_cast<size_t>(rows * groups)), err(static_cast<size_t>(rows * block));
    std::vector<int32_t> zeros(scales.size());
    std::vector<uint32_t> codes(static_cast<size_t>(rows * n));
    for (int64_t i1 = 0; i1 < n; i1 += block) {
      const kernels::GptqBlockPlan pl = kernels::gptq_block_plan(rows, n, group, block, i1);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t g = pl.g0; g < pl.g1; ++g) {
          const int64_t c0 = g * group;
          const auto p = kernels::gsq_fit_rtn(&wk[r * n + c0], std::min(group, n - c0), 1, tc.bits,
                                              tc.scheme == GsqScheme::symmetric, static_cast<int>(tc.scale_storage));
          scales[r * groups + g] = p.scale, zeros[r * groups + g] = p.zero;
        }
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<float> ws(wk.begin() + r * n + pl.i1, wk.begin() + r * n + pl.i2);
        for (int64_t i = 0; i < pl.k; ++i) {
          const int64_t p = pl.i1 + i, g = r * groups + p / group;
          uint32_t code;
          float q;
          const float e = kernels::gptq_column_step(ws[i], {scales[g], zeros[g]}, tc.bits, hinv[p * n + p], code, q);
          codes[r * n + p] = code;
          err[r * pl.k + i] = e;
          for (int64_t j = i + 1; j < pl.k; ++j) ws[j] -= e * hinv[p * n + pl.i1 + j];
        }
      }
      // cublasSgemm(N, N, m, n, k, -1, A, lda, B, ldb, 1, C, ldc), column-major.
      const float* a = hinv.data() + pl.a_offset;
      float* c = wk.data() + pl.c_offset;
      for (int64_t col = 0; col < pl.n; ++col)
        for (int64_t row = 0; row < pl.m; ++row) {
          float s = 0;
          for (int64_t kk = 0; kk < pl.k; ++kk) s += a[row + kk * pl.lda] * err[kk + col * pl.ldb];
          c[row + col * pl.ldc] -= s;
        }
    }
    int64_t differ = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < n; ++c) {
        const int64_t d = std::llabs(static_cast<int64_t>(codes[r * n + c]) - static_cast<int64_t>(cpu.code(r, c)));
        ASSERT_LE(d, 1) << tc.describe() << " (" << r << ", " << c << ")";
        differ += d != 0;
      }
    EXPECT_LE(static_cast<double>(differ) / static_cast<double>(rows * n), 1e-3) << tc.describe();
    // Group parameters: later blocks see weights updated by another GEMM summation
    // order, so a scale may land one fp16 step away, a zero one code away.
    for (int64_t i = 0; i < rows * groups; ++i) {
      ASSERT_LE(std::fabs(scales[i] - cpu.scales[i]), 2e-3f * std::fabs(cpu.scales[i])) << tc.describe() << " group " << i;
      ASSERT_LE(std::abs(zeros[i] - cpu.zeros[i]), 1) << tc.describe() << " group " << i;
    }
  }
}

}  // namespace
}  // namespace lowbit
