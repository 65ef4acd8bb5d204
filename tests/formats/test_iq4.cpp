// IQ4_NL and IQ4_XS: layouts checked against blocks written byte by byte from ggml's
// documented layout (ggml-common.h, dequantize_row_iq4_nl / _iq4_xs, gguf quants.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "lowbit/lowbit.hpp"
#include "test_util.hpp"

namespace {

using lowbit::Format;
using lowbit::test::decode;
using lowbit::test::error_of;
using lowbit::test::encode;
using lowbit::test::rel_rmse;
using lowbit::test::round_trip;

// ggml's kvalues_iq4nl, copied here independently of the library's table.
constexpr int kCodes[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};


TEST(Iq4Golden, CodeBookMatchesGgml) {
  for (int i = 0; i < 16; ++i) EXPECT_EQ(lowbit::kIq4nlValues[i], kCodes[i]) << i;
}

TEST(Iq4Golden, Iq4Nl) {
  // d = 0x3800 = 0.5; qs[j] = j (element j) | (15 - j) << 4 (element j + 16).
  std::vector<uint8_t> b = {0x00, 0x38};
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(b.size(), 18u);
  const auto y = decode(Format::IQ4_NL, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5 * kCodes[j]) << j;
    EXPECT_EQ(y[j + 16], 0.5 * kCodes[15 - j]) << j + 16;
  }
  EXPECT_EQ(y[0], -63.5f);
  EXPECT_EQ(y[16], 56.5f);
}

TEST(Iq4Golden, Iq4Xs) {
  // d = 0x3400 = 0.25. Sub-block scales ls = 0, 1, 31, 32, 33, 47, 62, 63, i.e.
  // ls - 32 = -32, -31, -1, 0, 1, 15, 30, 31.
  //   low nibbles 0,1 | 15,0 | 1,15 | 14,15 -> scales_l = 10 0F F1 FE
  //   high 2 bits 0,0,1,2,2,2,3,3 at bit 2*ib -> scales_h = 0xFA90 -> bytes 90 FA
  const int expected_scale[8] = {-32, -31, -1, 0, 1, 15, 30, 31};
  std::vector<uint8_t> b = {0x00, 0x34, 0x90, 0xFA, 0x10, 0x0F, 0xF1, 0xFE};
  // Sub-block ib, byte j: element 32*ib + j gets code (j + ib) & 15 (low nibble),
  // element 32*ib + 16 + j gets code (3*j + ib) & 15 (high nibble).
  for (int ib = 0; ib < 8; ++ib)
    for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(((j + ib) & 15) | (((3 * j + ib) & 15) << 4)));
  ASSERT_EQ(b.size(), 136u);
  const auto y = decode(Format::IQ4_XS, b, 256);
  for (int ib = 0; ib < 8; ++ib) {
    const float dl = 0.25f * static_cast<float>(expected_scale[ib]);  // ggml: d * (ls - 32), then * code
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(y[32 * ib + j], dl * static_cast<float>(kCodes[(j + ib) & 15])) << ib << "," << j;
      EXPECT_EQ(y[32 * ib + 16 + j], dl * static_cast<float>(kCodes[(3 * j + ib) & 15])) << ib << "," << j;
    }
  }
  EXPECT_EQ(y[0], 1016.0f);     // 0.25 * -32 * -127
  EXPECT_EQ(y[3 * 32], 0.0f);   // ls = 32: zero scale
  EXPECT_EQ(y[7 * 32 + 16], 0.25f * 31 * kCodes[7]);
}

// ------------------------------------------------------------------ quantizer quality

const Format kBoth[] = {Format::IQ4_NL, Format::IQ4_XS};

// The one-scale baseline ggml's IQ4_NL search starts from: the block's extreme on
// code -127, d stored as fp16, nearest code for each element (double precision).
double baseline_block_error(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  const double d = lowbit::round_fp16(max / -127.0f);
  double err = 0;
  for (int j = 0; j < 32; ++j) {
    double best = INFINITY;
    for (int c : kCodes) best = std::min(best, std::pow(x[j] - d * c, 2));
    err += best;
  }
  return err;
}

TEST(Iq4Quality, Iq4NlNoBlockWorseThanOneScaleBaseline) {
  for (auto dist : {lowbit::Distribution::heavy_tailed, lowbit::Distribution::gaussian,
                    lowbit::Distribution::outliers}) {
    const int64_t rows = 8, cols = 1024;
    const auto x = lowbit::synthetic_weights(rows, cols, 3, dist);
    const auto y = round_trip(Format::IQ4_NL, x, rows, cols);
    double ours_total = 0, base_total = 0;
    for (size_t b = 0; b < x.size() / 32; ++b) {
      double ours = 0;
      for (int j = 0; j < 32; ++j) ours += std::pow(double(x[b * 32 + j]) - y[b * 32 + j], 2);
      const double base = baseline_block_error(&x[b * 32]);
      ASSERT_LE(ours, base * (1 + 1e-5)) << "block " << b;
      ours_total += ours;
      base_total += base;
    }
    EXPECT_LT(ours_total, 0.95 * base_total);
  }
}

TEST(Iq4Quality, RelativeErrorFitsTheBitWidth) {
  // Gaussian data; ggml's quantizers reach 0.076 (IQ4_NL) and 0.077 (IQ4_XS) here.
  const int64_t rows = 64, cols = 4096;
  const auto x = lowbit::synthetic_weights(rows, cols, 11, lowbit::Distribution::gaussian);
  EXPECT_LT(rel_rmse(x, round_trip(Format::IQ4_NL, x, rows, cols), rows, cols), 0.0755);
  EXPECT_LT(rel_rmse(x, round_trip(Format::IQ4_XS, x, rows, cols), rows, cols), 0.0760);
}

TEST(Iq4Quality, ImportanceLowersWeightedError) {
  const int64_t rows = 32, cols = 2048;
  const auto x = lowbit::synthetic_weights(rows, cols, 5, lowbit::Distribution::heavy_tailed);
  const auto imp = lowbit::synthetic_importance(cols, 5);
  for (Format f : kBoth) {
    const double plain = rel_rmse(x, round_trip(f, x, rows, cols), rows, cols, imp);
    const double weighted = rel_rmse(x, round_trip(f, x, rows, cols, imp), rows, cols, imp);
    EXPECT_LT(weighted, 0.99 * plain) << lowbit::traits(f).name;
  }
}

TEST(Iq4Quality, ZeroImportanceSubBlockStillQuantized) {
  // One IQ4_XS sub-block carries no importance: it does not count toward the
  // objective but must still be represented sensibly.
  const int64_t cols = 256;
  const auto x = lowbit::synthetic_weights(1, cols, 6, lowbit::Distribution::gaussian);
  std::vector<float> imp(cols, 1.0f);
  for (int j = 64; j < 96; ++j) imp[j] = 0.0f;
  const auto y = round_trip(Format::IQ4_XS, x, 1, cols, imp);
  double err = 0, norm = 0;
  for (int j = 64; j < 96; ++j) {
    err += std::pow(x[j] - y[j], 2);
    norm += std::pow(x[j], 2);
  }
  EXPECT_LT(std::sqrt(err / norm), 0.2);
}

// ------------------------------------------------------------------ exact cases

TEST(Iq4Exact, CodeBookValuesDecodeExactly) {
  // IQ4_NL: x = 0.5 * code, with code -127 present so the extreme sits on the grid.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * static_cast<float>(kCodes[(j * 5) % 16]);
  EXPECT_EQ(round_trip(Format::IQ4_NL, x, 1, 32), x);

  // IQ4_XS: sub-block ib holds (0.25 * s[ib]) * code with every code present; the
  // largest |scale| is s = -32, so d = 0.25 and every s[ib] is an integer multiple.
  const int s[8] = {-32, -5, 1, 7, 31, 0, -1, 16};
  std::vector<float> xs(256);
  for (int ib = 0; ib < 8; ++ib)
    for (int j = 0; j < 32; ++j)
      xs[32 * ib + j] = (0.25f * static_cast<float>(s[ib])) * static_cast<float>(kCodes[(j * 3 + ib) % 16]);
  EXPECT_EQ(round_trip(Format::IQ4_XS, xs, 1, 256), xs);
}

TEST(Iq4Exact, AllZeroBlocks) {
  const std::vector<float> x(512, 0.0f);
  for (Format f : kBoth) {
    const auto y = round_trip(f, x, 1, 512);
    for (float v : y) ASSERT_EQ(v, 0.0f) << lowbit::traits(f).name;
  }
}

TEST(Iq4Exact, ExtremeMagnitudesStayFinite) {
  // Sub-blocks far below fp16's range, far above it and at float's limits, mixed
  // inside one IQ4_XS super-block: every decoded value must stay finite.
  std::vector<float> x;
  for (float scale : {1e-40f, 1e-30f, 1e-3f, 1e6f, 1e30f, 3e38f, 1.0f})
    for (int j = 0; j < 32; ++j) x.push_back(scale * (static_cast<float>((j * 11) % 17 - 8) / 8.0f));
  for (int j = 0; j < 32; ++j) x.push_back(j == 5 ? 3e38f : 0.0f);
  ASSERT_EQ(x.size(), 256u);
  for (Format f : kBoth) {
    // lowbit::quantize refuses values beyond the format's range; the row kernels
    // saturate them and stay finite.
    EXPECT_NE(error_of([&] { encode(f, x, 1, 256); }).find("outside the range"), std::string::npos);
    const auto y = lowbit::test::kernel_round_trip(f, x);
    for (int j = 0; j < 256; ++j) ASSERT_TRUE(std::isfinite(y[j])) << lowbit::traits(f).name << " " << j;
  }
}

TEST(Iq4Exact, DeterministicAcrossThreadCounts) {
  const int64_t rows = 64, cols = 512;
  const auto x = lowbit::synthetic_weights(rows, cols, 4, lowbit::Distribution::heavy_tailed);
  const auto imp = lowbit::synthetic_importance(cols, 4);
  for (Format f : kBoth) {
    lowbit::set_num_threads(1);
    const auto a = encode(f, x, rows, cols, imp);
    lowbit::set_num_threads(2);
    const auto b = encode(f, x, rows, cols, imp);
    EXPECT_EQ(a, b) << lowbit::traits(f).name;
  }
  lowbit::set_num_threads(0);
}

}  // namespace
