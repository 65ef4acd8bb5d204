// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1: layouts checked against blocks written byte by
// byte from ggml's documented layout (ggml-common.h / dequantize_row_*), quantizer
// quality against ggml's round-to-nearest reference recomputed here in double.
#include <gtest/gtest.h>

#include <algorithm>
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


// fp16 bit patterns used below and their exact values.
constexpr uint16_t kHalfOne = 0x3C00;      // 1.0
constexpr uint16_t kHalfHalf = 0x3800;     // 0.5
constexpr uint16_t kHalfQuarter = 0x3400;  // 0.25
constexpr uint16_t kHalfEighth = 0x3000;   // 0.125
constexpr uint16_t kHalfTwo = 0x4000;      // 2.0
constexpr uint16_t kHalfMinus1p5 = 0xBE00; // -1.5
constexpr uint16_t kHalfThird = 0x3555;    // (1 + 341/1024) / 4 = 0.333251953125

void put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v & 0xff));
  b.push_back(static_cast<uint8_t>(v >> 8));
}

// ------------------------------------------------------------------ golden blocks

TEST(LegacyGolden, Q4_0) {
  // d = 0.333251953125; qs[j] = j (low nibble, element j) | (15 - j) << 4 (element j + 16).
  std::vector<uint8_t> b;
  put16(b, kHalfThird);
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(b.size(), 18u);
  const auto y = decode(Format::Q4_0, b, 32);
  const float d = 0.333251953125f;
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], static_cast<float>(j - 8) * d) << j;
    EXPECT_EQ(y[j + 16], static_cast<float>(7 - j) * d) << j + 16;
  }
  EXPECT_EQ(y[0], -8 * 0.333251953125f);
  EXPECT_EQ(y[16], 7 * 0.333251953125f);
}

TEST(LegacyGolden, Q4_1) {
  // d = 0.25, m = -1.5; element j: q = j, element j + 16: q = 15 - j; x = q * d + m.
  std::vector<uint8_t> b;
  put16(b, kHalfQuarter);
  put16(b, kHalfMinus1p5);
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(b.size(), 20u);
  const auto y = decode(Format::Q4_1, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.25 * j - 1.5) << j;
    EXPECT_EQ(y[j + 16], 0.25 * (15 - j) - 1.5) << j + 16;
  }
}

TEST(LegacyGolden, Q5_0) {
  // d = 0.125; qh = 01 00 01 80 -> little-endian u32 0x80010001: the 5th bit is set
  // for elements 0, 16 and 31 only. qs[j] = j | (15 - j) << 4.
  std::vector<uint8_t> b;
  put16(b, kHalfEighth);
  for (uint8_t v : {0x01, 0x00, 0x01, 0x80}) b.push_back(v);
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  ASSERT_EQ(b.size(), 22u);
  const auto y = decode(Format::Q5_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    const int hi0 = (j == 0) ? 16 : 0;
    const int hi1 = (j == 0 || j == 15) ? 16 : 0;
    EXPECT_EQ(y[j], 0.125 * ((j | hi0) - 16)) << j;
    EXPECT_EQ(y[j + 16], 0.125 * (((15 - j) | hi1) - 16)) << j + 16;
  }
  EXPECT_EQ(y[0], 0.0f);       // q = 16
  EXPECT_EQ(y[1], -1.875f);    // q = 1
  EXPECT_EQ(y[16], 1.875f);    // q = 15 | 16 = 31
  EXPECT_EQ(y[31], 0.0f);      // q = 0 | 16
  EXPECT_EQ(y[30], -1.875f);   // q = 1
}

TEST(LegacyGolden, Q5_1) {
  // d = 0.5, m = 1.0; qh = FF 00 00 F0: 5th bit for elements 0..7 and 28..31.
  std::vector<uint8_t> b;
  put16(b, kHalfHalf);
  put16(b, kHalfOne);
  for (uint8_t v : {0xFF, 0x00, 0x00, 0xF0}) b.push_back(v);
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(((3 * j) & 15) | ((j ^ 5) << 4)));
  ASSERT_EQ(b.size(), 24u);
  const auto y = decode(Format::Q5_1, b, 32);
  for (int j = 0; j < 16; ++j) {
    const int q0 = ((3 * j) & 15) | (j < 8 ? 16 : 0);
    const int q1 = (j ^ 5) | (j + 16 >= 28 ? 16 : 0);
    EXPECT_EQ(y[j], 0.5 * q0 + 1.0) << j;
    EXPECT_EQ(y[j + 16], 0.5 * q1 + 1.0) << j + 16;
  }
}

TEST(LegacyGolden, Q8_0AndQ8_1) {
  // d = 2.0; qs[j] = 8 * j - 128 (int8). Q8_1 adds s after d, which decoding ignores.
  std::vector<uint8_t> b0, b1;
  put16(b0, kHalfTwo);
  put16(b1, kHalfTwo);
  put16(b1, 0x7BFF);  // s: any value
  for (int j = 0; j < 32; ++j) {
    const auto q = static_cast<uint8_t>(static_cast<int8_t>(8 * j - 128));
    b0.push_back(q);
    b1.push_back(q);
  }
  ASSERT_EQ(b0.size(), 34u);
  ASSERT_EQ(b1.size(), 36u);
  const auto y0 = decode(Format::Q8_0, b0, 32);
  const auto y1 = decode(Format::Q8_1, b1, 32);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(y0[j], 2.0 * (8 * j - 128)) << j;
    EXPECT_EQ(y1[j], 2.0 * (8 * j - 128)) << j;
  }
}

// An independent decoder for Q5_0 written from the documented layout: the encoder's
// bit packing must round-trip through it exactly as through lowbit::dequantize.
TEST(LegacyGolden, Q5_0EncoderPackingMatchesDocumentedLayout) {
  const int64_t cols = 256;
  const auto x = lowbit::synthetic_weights(4, cols, 7, lowbit::Distribution::gaussian);
  const auto q = encode(Format::Q5_0, x, 4, cols);
  std::vector<float> ours(x.size());
  lowbit::dequantize(Format::Q5_0, q, lowbit::MatrixView<float>(ours.data(), 4, cols));
  const auto* p = reinterpret_cast<const uint8_t*>(q.data());
  for (size_t blk = 0; blk < x.size() / 32; ++blk, p += 22) {
    const float d = lowbit::fp16_to_fp32(static_cast<uint16_t>(p[0] | (p[1] << 8)));
    const uint32_t qh = p[2] | (p[3] << 8) | (p[4] << 16) | (static_cast<uint32_t>(p[5]) << 24);
    for (int j = 0; j < 32; ++j) {
      const int lo = j < 16 ? (p[6 + j] & 15) : (p[6 + j - 16] >> 4);
      const int v = lo | (((qh >> j) & 1) << 4);
      ASSERT_EQ(ours[blk * 32 + j], static_cast<float>(v - 16) * d) << "block " << blk << " element " << j;
    }
  }
}

// ------------------------------------------------------------------ quantizer quality

// Per-block squared error of ggml's reference round-to-nearest scheme (scale from the
// block's extremes, stored as fp16, nearest level), computed in double. Our search
// evaluates this very candidate, so no block may come out worse.
double rtn_block_error(Format f, const float* x) {
  float amax = 0, max = 0, mn = x[0], mx = x[0];
  for (int j = 0; j < 32; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
    mn = std::min(mn, x[j]);
    mx = std::max(mx, x[j]);
  }
  double lo = 0, hi = 0, d = 0, m = 0;
  switch (f) {
    case Format::Q4_0: d = lowbit::round_fp16(max / -8.0f), lo = -8, hi = 7; break;
    case Format::Q5_0: d = lowbit::round_fp16(max / -16.0f), lo = -16, hi = 15; break;
    case Format::Q8_0:
    case Format::Q8_1: d = lowbit::round_fp16(amax / 127.0f), lo = -127, hi = 127; break;
    case Format::Q4_1: d = lowbit::round_fp16((mx - mn) / 15.0f), m = lowbit::round_fp16(mn), hi = 15; break;
    case Format::Q5_1: d = lowbit::round_fp16((mx - mn) / 31.0f), m = lowbit::round_fp16(mn), hi = 31; break;
    default: ADD_FAILURE();
  }
  double err = 0;
  for (int j = 0; j < 32; ++j) {
    const double l = d != 0 ? std::clamp(std::nearbyint((x[j] - m) / d), lo, hi) : 0.0;
    err += std::pow(x[j] - (l * d + m), 2);
  }
  return err;
}

const Format kAll[] = {Format::Q4_0, Format::Q4_1, Format::Q5_0, Format::Q5_1, Format::Q8_0, Format::Q8_1};

TEST(LegacyQuality, NoBlockWorseThanGgmlRoundToNearest) {
  for (auto dist : {lowbit::Distribution::heavy_tailed, lowbit::Distribution::gaussian,
                    lowbit::Distribution::outliers}) {
    const int64_t rows = 16, cols = 1024;
    const auto x = lowbit::synthetic_weights(rows, cols, 3, dist);
    for (Format f : kAll) {
      const auto y = round_trip(f, x, rows, cols);
      double ours_total = 0, rtn_total = 0;
      for (size_t b = 0; b < x.size() / 32; ++b) {
        double ours = 0;
        for (int j = 0; j < 32; ++j) ours += std::pow(double(x[b * 32 + j]) - y[b * 32 + j], 2);
        const double rtn = rtn_block_error(f, &x[b * 32]);
        ASSERT_LE(ours, rtn * (1 + 1e-5) + 1e-30) << lowbit::traits(f).name << " block " << b;
        ours_total += ours;
        rtn_total += rtn;
      }
      // And the search finds something better overall.
      EXPECT_LT(ours_total, 0.99 * rtn_total) << lowbit::traits(f).name;
    }
  }
}

TEST(LegacyQuality, RelativeErrorFitsTheBitWidth) {
  // Gaussian data; bounds sit a few percent above what a good 32-element quantizer
  // reaches (ggml's round-to-nearest gets 0.086 / 0.078 / 0.043 / 0.038 / 0.0054).
  const int64_t rows = 64, cols = 4096;
  const auto x = lowbit::synthetic_weights(rows, cols, 11, lowbit::Distribution::gaussian);
  const struct {
    Format f;
    double bound;
  } cases[] = {{Format::Q4_0, 0.084}, {Format::Q4_1, 0.072}, {Format::Q5_0, 0.042},
               {Format::Q5_1, 0.035}, {Format::Q8_0, 0.0051}, {Format::Q8_1, 0.0051}};
  for (const auto& c : cases) {
    const double e = rel_rmse(x, round_trip(c.f, x, rows, cols), rows, cols);
    EXPECT_LT(e, c.bound) << lowbit::traits(c.f).name;
    EXPECT_GT(e, 0.0) << lowbit::traits(c.f).name;
  }
}

TEST(LegacyQuality, ImportanceLowersWeightedError) {
  const int64_t rows = 32, cols = 2048;
  const auto x = lowbit::synthetic_weights(rows, cols, 5, lowbit::Distribution::heavy_tailed);
  const auto imp = lowbit::synthetic_importance(cols, 5);
  for (Format f : kAll) {
    const double plain = rel_rmse(x, round_trip(f, x, rows, cols), rows, cols, imp);
    const double weighted = rel_rmse(x, round_trip(f, x, rows, cols, imp), rows, cols, imp);
    EXPECT_LT(weighted, 0.99 * plain) << lowbit::traits(f).name;
  }
}

TEST(LegacyQuality, AllZeroImportanceMeansPlainError) {
  const int64_t cols = 512;
  const auto x = lowbit::synthetic_weights(2, cols, 9, lowbit::Distribution::gaussian);
  const std::vector<float> zero(cols, 0.0f);
  for (Format f : kAll) EXPECT_EQ(encode(f, x, 2, cols, zero), encode(f, x, 2, cols)) << lowbit::traits(f).name;
}

// ------------------------------------------------------------------ exact cases

TEST(LegacyExact, ValuesOnTheGridDecodeExactly) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * static_cast<float>((j * 7) % 16 - 8);  // all 16 levels
  EXPECT_EQ(round_trip(Format::Q4_0, x, 1, 32), x);
  for (int j = 0; j < 32; ++j) x[j] = 0.25f * static_cast<float>((j * 7) % 16) - 1.5f;
  EXPECT_EQ(round_trip(Format::Q4_1, x, 1, 32), x);
  for (int j = 0; j < 32; ++j) x[j] = 0.125f * static_cast<float>((j * 7) % 32 - 16);
  EXPECT_EQ(round_trip(Format::Q5_0, x, 1, 32), x);
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * static_cast<float>((j * 7) % 32) + 3.0f;
  EXPECT_EQ(round_trip(Format::Q5_1, x, 1, 32), x);
  for (int j = 0; j < 32; ++j) x[j] = 0.0625f * static_cast<float>(j == 0 ? -127 : j == 1 ? 127 : 8 * j - 124);
  EXPECT_EQ(round_trip(Format::Q8_0, x, 1, 32), x);
  EXPECT_EQ(round_trip(Format::Q8_1, x, 1, 32), x);
}

TEST(LegacyExact, ConstantBlockIsExactInAffineFormats) {
  const std::vector<float> x(32, 3.25f);
  EXPECT_EQ(round_trip(Format::Q4_1, x, 1, 32), x);
  EXPECT_EQ(round_trip(Format::Q5_1, x, 1, 32), x);
}

TEST(LegacyExact, AllZeroBlocks) {
  const std::vector<float> x(64, 0.0f);
  for (Format f : kAll) {
    const auto y = round_trip(f, x, 1, 64);
    for (float v : y) ASSERT_EQ(v, 0.0f) << lowbit::traits(f).name;
  }
  // Q4_0: d = 0 and every nibble at the zero point 8, as ggml writes it.
  const auto q = encode(Format::Q4_0, x, 1, 32);
  const auto* p = reinterpret_cast<const uint8_t*>(q.data());
  EXPECT_EQ(p[0] | p[1], 0);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(p[2 + j], 0x88);
}

TEST(LegacyExact, Q8_1SumIsTheSumOfTheDecodedValues) {
  const int64_t cols = 1024;
  const auto x = lowbit::synthetic_weights(1, cols, 2, lowbit::Distribution::outliers);
  const auto q = encode(Format::Q8_1, x, 1, cols);
  const auto* p = reinterpret_cast<const uint8_t*>(q.data());
  for (int64_t b = 0; b < cols / 32; ++b, p += 36) {
    const float d = lowbit::fp16_to_fp32(static_cast<uint16_t>(p[0] | (p[1] << 8)));
    const uint16_t s = static_cast<uint16_t>(p[2] | (p[3] << 8));
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += static_cast<int8_t>(p[4 + j]);
    // d has 11 significant bits and |sum| < 2^12: the product is exact in float.
    EXPECT_EQ(s, lowbit::fp32_to_fp16(static_cast<float>(static_cast<double>(d) * sum))) << b;
  }
}

TEST(LegacyExact, ExtremeMagnitudesStayFinite) {
  // Blocks far below fp16's range (d underflows), far above it (d saturates at
  // 65504) and at float's limits: every decoded value must stay finite.
  std::vector<float> x;
  for (float scale : {1e-40f, 1e-30f, 1e-3f, 1e6f, 1e30f, 3e38f})
    for (int j = 0; j < 32; ++j) x.push_back(scale * (static_cast<float>((j * 11) % 17 - 8) / 8.0f));
  for (int j = 0; j < 32; ++j) x.push_back(j == 5 ? 3e38f : 0.0f);  // one huge value among zeros
  const int64_t cols = static_cast<int64_t>(x.size());
  for (Format f : kAll) {
    // lowbit::quantize refuses values beyond the format's range; the row kernels
    // saturate them and stay finite.
    EXPECT_NE(error_of([&] { encode(f, x, 1, cols); }).find("outside the range"), std::string::npos);
    const auto y = lowbit::test::kernel_round_trip(f, x);
    for (int64_t j = 0; j < cols; ++j) ASSERT_TRUE(std::isfinite(y[j])) << lowbit::traits(f).name << " " << j;
    // The 1e-3 block has a normal fp16 scale (in the 4- and 5-bit formats) and must keep its shape.
    for (int j = 64; j < 96; ++j)
      EXPECT_NEAR(y[j], x[j], 0.15e-3) << lowbit::traits(f).name << " " << j;
  }
}

TEST(LegacyExact, DeterministicAcrossThreadCounts) {
  const int64_t rows = 64, cols = 512;
  const auto x = lowbit::synthetic_weights(rows, cols, 4, lowbit::Distribution::heavy_tailed);
  const auto imp = lowbit::synthetic_importance(cols, 4);
  for (Format f : kAll) {
    lowbit::set_num_threads(1);
    const auto a = encode(f, x, rows, cols, imp);
    lowbit::set_num_threads(2);
    const auto b = encode(f, x, rows, cols, imp);
    EXPECT_EQ(a, b) << lowbit::traits(f).name;
  }
  lowbit::set_num_threads(0);
}

}  // namespace
