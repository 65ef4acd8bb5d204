// Q2_K and Q3_K: layout (golden blocks written byte by byte from GGML's documented
// layout, decoded values derived from the documented formulas), reconstruction
// quality per bit width, importance weighting, exact grids, zero blocks and
// determinism.
//
// Layout facts used here (ggml-common.h / dequantize_row_q{2,3}_K):
//   Q2_K  { uint8 scales[16]; uint8 qs[64]; fp16 d; fp16 dmin; }           84 bytes
//         sub-block j (16 elements): scale = scales[j] & 15, min = scales[j] >> 4,
//         x = d*scale*q - dmin*min.
//   Q3_K  { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; fp16 d; }     110 bytes
//         6-bit scale l_j: low 4 bits in scales[j] (j < 8) or scales[j-8] >> 4,
//         high 2 bits in scales[8 + j%4] >> 2*(j/4); x = d*(l_j - 32)*q3 with
//         q3 = low2 - 4 when the hmask bit is clear, low2 when it is set.
//   Both: the 2-bit code of element e (0..255) sits in bits 2*((e%128)/32) of
//         qs[32*(e/128) + e%32]; Q3_K's hmask bit is bit e/32 of hmask[e%32].
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lowbit/lowbit.hpp"
#include "test_util.hpp"

namespace {

using lowbit::Distribution;
using lowbit::Format;

constexpr int kQK = 256;
constexpr size_t kQ2Bytes = 84, kQ3Bytes = 110;

using lowbit::test::as_bytes;
using lowbit::test::put_u16;

// Relative RMSE in double: sqrt(sum w (a-b)^2 / sum w a^2), w_c per column (or 1).
double rel_rmse(const std::vector<float>& a, const std::vector<float>& b, int64_t cols,
                const std::vector<float>& w = {}) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double wi = w.empty() ? 1.0 : w[i % cols];
    const double d = static_cast<double>(a[i]) - b[i];
    num += wi * d * d;
    den += wi * static_cast<double>(a[i]) * a[i];
  }
  return std::sqrt(num / den);
}

// Stores a 2-bit code for element e of a 256-block at its documented place in qs.
void put_code2(uint8_t* qs, int e, int code) {
  qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>((code & 3) << (2 * ((e % 128) / 32)));
}

// ------------------------------------------------------------------ golden blocks

TEST(Q2K, GoldenBlockHandWritten) {
  uint8_t blk[kQ2Bytes] = {};
  blk[0] = 0x21;         // sub-block 0: scale 1, min 2
  blk[2] = 0x03;         // sub-block 2: scale 3, min 0
  blk[16] = 0xE4;        // qs[0] = 0b11'10'01'00: elements 0, 32, 64, 96 get codes 0, 1, 2, 3
  blk[16 + 32] = 0x1B;   // qs[32] = 0b00'01'10'11: elements 128, 160, 192, 224 get 3, 2, 1, 0
  put_u16(blk + 80, 0x3800);  // d = 0.5
  put_u16(blk + 82, 0x3400);  // dmin = 0.25
  const std::vector<float> y = lowbit::test::decode_matrix(Format::Q2_K, as_bytes(blk, sizeof blk), 1, kQK);
  EXPECT_EQ(y[0], 0.5f * 1 * 0 - 0.25f * 2);  // -0.5
  EXPECT_EQ(y[1], -0.5f);                      // code 0 too
  EXPECT_EQ(y[32], 0.5f * 3 * 1 - 0.0f);       // element 32 is in sub-block 2: 1.5
  EXPECT_EQ(y[64], 0.0f);                      // sub-block 4: scale 0, min 0
  for (int e : {96, 128, 160, 192, 224}) EXPECT_EQ(y[e], 0.0f) << e;
}

TEST(Q2K, GoldenBlockEveryField) {
  // Codes, scales and mins chosen per element / sub-block, placed by the layout.
  uint8_t blk[kQ2Bytes] = {};
  int code[kQK];
  for (int j = 0; j < 16; ++j) blk[j] = static_cast<uint8_t>((j * 7 + 1) % 16 | ((15 - j) << 4));
  for (int e = 0; e < kQK; ++e) {
    code[e] = (e * 5 + e / 16) % 4;
    put_code2(blk + 16, e, code[e]);
  }
  put_u16(blk + 80, 0x2E66);  // d = (1 + 614/1024) * 2^-4 = 0.0999755859375 (fp16 nearest 0.1)
  put_u16(blk + 82, 0xA400);  // dmin = -2^-6 (negative dmin adds instead of subtracts)
  const double d = 0.0999755859375, dmin = -0.015625;
  const std::vector<float> y = lowbit::test::decode_matrix(Format::Q2_K, as_bytes(blk, sizeof blk), 1, kQK);
  for (int e = 0; e < kQK; ++e) {
    const int j = e / 16, sc = (j * 7 + 1) % 16, m = 15 - j;
    // Products of a few-bit fp16 value and small integers are exact in float.
    const double expect = d * sc * code[e] - dmin * m;
    EXPECT_EQ(y[e], static_cast<float>(expect)) << "element " << e;
  }
}

// Packs sixteen 6-bit values the documented way.
void put_q3_scales(uint8_t* scales, const int* l) {
  for (int j = 0; j < 16; ++j) {
    scales[j % 8] |= static_cast<uint8_t>((l[j] & 0xF) << (j < 8 ? 0 : 4));
    scales[8 + j % 4] |= static_cast<uint8_t>((l[j] >> 4) << (2 * (j / 4)));
  }
}

TEST(Q3K, GoldenBlockHandWritten) {
  uint8_t blk[kQ3Bytes] = {};
  uint8_t* hmask = blk;
  uint8_t* qs = blk + 32;
  uint8_t* scales = blk + 96;
  scales[0] = 0x21;  // l_0 low nibble 1, l_8 low nibble 2
  scales[8] = 0x02;  // l_0 high bits 2 -> l_0 = 0x21 = 33 (scale +1); l_4 high bits 0
  scales[9] = 0x0C;  // l_5 high bits (bits 2..3 of scales[9]) = 3 -> l_5 = 48 (scale 16)
  // l_8 = 2 | 0 << 4 = 2 (scale -30); every other l_j = 0 (scale -32), l_5 = 48 -> +16.
  qs[0] = 0xE4;      // codes 0,1,2,3 for elements 0, 32, 64, 96 (low bits)
  hmask[0] = 0x05;   // high bit set for elements 0 (bit 0) and 64 (bit 2)
  qs[16] = 0x03;     // element 16 (sub-block 1): low bits 3, high bit clear
  qs[0 + 32 * 0 + 8] = 0x01;   // element 8: low 1, high clear -> q3 = -3
  put_u16(blk + 108, 0x3C00);  // d = 1
  const std::vector<float> y = lowbit::test::decode_matrix(Format::Q3_K, as_bytes(blk, sizeof blk), 1, kQK);
  EXPECT_EQ(y[0], 1.0f * 1 * 0);           // sub-block 0, q3 = 0 - 0
  EXPECT_EQ(y[8], 1.0f * 1 * (1 - 4));     // -3
  EXPECT_EQ(y[16], 1.0f * -32 * (3 - 4));  // sub-block 1 (l = 0): 32
  EXPECT_EQ(y[32], 1.0f * -32 * (1 - 4));  // sub-block 2: 96
  EXPECT_EQ(y[64], 1.0f * -32 * 2);        // sub-block 4, high bit set: -64
  EXPECT_EQ(y[96], 1.0f * -32 * (3 - 4));  // sub-block 6: 32
  EXPECT_EQ(y[80], 1.0f * 16 * (0 - 4));   // sub-block 5 (l = 48): -64
  EXPECT_EQ(y[128], 1.0f * -30 * (0 - 4)); // sub-block 8 (l = 2): 120
}

TEST(Q3K, GoldenBlockEveryField) {
  uint8_t blk[kQ3Bytes] = {};
  int l[16], code[kQK];
  for (int j = 0; j < 16; ++j) l[j] = (j * 29 + 5) % 64;  // covers both signs and all 6 bits
  put_q3_scales(blk + 96, l);
  for (int e = 0; e < kQK; ++e) {
    code[e] = (e * 3 + e / 32) % 8 - 4;  // -4..3
    const int stored = code[e] + 4;      // high bit set <=> code >= 0
    put_code2(blk + 32, e, stored & 3);
    if (stored & 4) blk[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
  }
  put_u16(blk + 108, 0xB0CD);  // d = -(1 + 205/1024) * 2^-3 = -0.1500244140625
  const double d = -0.1500244140625;
  const std::vector<float> y = lowbit::test::decode_matrix(Format::Q3_K, as_bytes(blk, sizeof blk), 1, kQK);
  for (int e = 0; e < kQK; ++e) {
    const double expect = d * (l[e / 16] - 32) * code[e];  // exact in float
    EXPECT_EQ(y[e], static_cast<float>(expect)) << "element " << e;
  }
}

// ------------------------------------------------------------------ exact grids

// Values already on a Q2_K grid (every sub-block uses codes 0 and 3, one sub-block
// has scale 15 and one has min 15) come back exactly.
TEST(Q2K, ValuesOnTheGridAreExact) {
  const float d = 0.0078125f, dmin = 0.00390625f;  // 2^-7, 2^-8
  std::vector<float> x(2 * kQK);
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 16; ++j) {
      const int sc = j == 3 ? 15 : 1 + (j * 5 + b) % 15, m = j == 9 ? 15 : (j * 3 + b) % 16;
      for (int i = 0; i < 16; ++i) {
        const int q = i == 0 ? 0 : i == 1 ? 3 : (i * 7 + j + b) % 4;
        x[b * kQK + 16 * j + i] = d * sc * q - dmin * m;
      }
    }
  const auto y = lowbit::test::decode_matrix(Format::Q2_K, lowbit::test::encode(Format::Q2_K, x, 1, 2 * kQK), 1, 2 * kQK);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], x[i]) << i;
}

// Values on a Q3_K grid (every sub-block uses codes -4 and 3, one has scale -32).
TEST(Q3K, ValuesOnTheGridAreExact) {
  const float d = 0.001953125f;  // 2^-9
  std::vector<float> x(kQK);
  for (int j = 0; j < 16; ++j) {
    const int s = j == 6 ? -32 : (j * 11 + 3) % 61 - 30;
    for (int i = 0; i < 16; ++i) {
      const int q = i == 4 ? -4 : i == 5 ? 3 : (i * 5 + j) % 8 - 4;
      x[16 * j + i] = d * (s == 0 ? 7 : s) * q;
    }
  }
  const auto y = lowbit::test::decode_matrix(Format::Q3_K, lowbit::test::encode(Format::Q3_K, x, 1, kQK), 1, kQK);
  for (int i = 0; i < kQK; ++i) EXPECT_EQ(y[i], x[i]) << i;
}

TEST(LowKQuants, ZeroBlocksEncodeAsZeroBytesAndDecodeToZero) {
  for (Format f : {Format::Q2_K, Format::Q3_K}) {
    std::vector<float> x(2 * kQK, 0.0f);
    for (int i = kQK; i < 2 * kQK; ++i) x[i] = std::sin(0.1f * i);  // second block non-zero
    const auto q = lowbit::test::encode(f, x, 1, 2 * kQK);
    const size_t bb = f == Format::Q2_K ? kQ2Bytes : kQ3Bytes;
    for (size_t i = 0; i < bb; ++i) EXPECT_EQ(q[i], std::byte{0}) << "byte " << i;
    const auto y = lowbit::test::decode_matrix(f, q, 1, 2 * kQK);
    for (int i = 0; i < kQK; ++i) EXPECT_EQ(y[i], 0.0f) << i;
    // The importance of the zero block does not matter.
    const auto qi = lowbit::test::encode(f, x, 1, 2 * kQK, std::vector<float>(2 * kQK, 3.0f));
    for (size_t i = 0; i < bb; ++i) EXPECT_EQ(qi[i], std::byte{0}) << "byte " << i;
  }
}

// Q2_K can only subtract its per-sub-block offset: an all-positive block must use
// offset 0 and still fit its values; an all-negative constant block is an offset.
TEST(Q2K, PositiveAndConstantBlocks) {
  std::vector<float> x(2 * kQK);
  for (int i = 0; i < kQK; ++i) x[i] = 1.0f + 0.5f * std::sin(0.37f * i) + 0.5f;  // in [1, 2]
  for (int i = kQK; i < 2 * kQK; ++i) x[i] = -0.75f;
  const auto y = lowbit::test::decode_matrix(Format::Q2_K, lowbit::test::encode(Format::Q2_K, x, 1, 2 * kQK), 1, 2 * kQK);
  double se = 0, ss = 0;
  for (int i = 0; i < kQK; ++i) {
    se += (x[i] - y[i]) * (x[i] - y[i]);
    ss += x[i] * x[i];
  }
  EXPECT_LT(std::sqrt(se / ss), 0.12);  // 4 levels 0, S, 2S, 3S over [1, 2]
  for (int i = kQK; i < 2 * kQK; ++i) EXPECT_NEAR(y[i], -0.75f, 0.75f * 1e-3) << i;
}

// ------------------------------------------------------------------ quality

struct Bound {
  Distribution dist;
  double q2, q3;  // relative RMSE bounds: ggml gets about 0.35/0.19 (heavy), 0.30/0.15 (gaussian)
};

TEST(LowKQuants, RoundTripErrorFitsTheBits) {
  constexpr int64_t rows = 32, cols = 4096;
  for (Bound b : {Bound{Distribution::heavy_tailed, 0.30, 0.185}, Bound{Distribution::gaussian, 0.27, 0.148},
                  Bound{Distribution::outliers, 0.25, 0.155}}) {
    const auto x = lowbit::synthetic_weights(rows, cols, 7, b.dist);
    const double e2 = rel_rmse(x, lowbit::test::decode_matrix(Format::Q2_K, lowbit::test::encode(Format::Q2_K, x, rows, cols), rows, cols), cols);
    const double e3 = rel_rmse(x, lowbit::test::decode_matrix(Format::Q3_K, lowbit::test::encode(Format::Q3_K, x, rows, cols), rows, cols), cols);
    EXPECT_LT(e2, b.q2) << static_cast<int>(b.dist);
    EXPECT_LT(e3, b.q3) << static_cast<int>(b.dist);
    EXPECT_LT(e3, e2 * 0.7) << "a third bit should cut the error well below Q2_K's";
    EXPECT_GT(e3, 0.05) << "suspiciously exact for 3 bits";
  }
}

TEST(LowKQuants, ImportanceLowersTheWeightedError) {
  constexpr int64_t rows = 32, cols = 4096;
  const auto imp = lowbit::synthetic_importance(cols, 3);
  for (Format f : {Format::Q2_K, Format::Q3_K})
    for (Distribution dist : {Distribution::heavy_tailed, Distribution::gaussian, Distribution::outliers}) {
      const auto x = lowbit::synthetic_weights(rows, cols, 3, dist);
      const double plain = rel_rmse(x, lowbit::test::decode_matrix(f, lowbit::test::encode(f, x, rows, cols), rows, cols), cols, imp);
      const double weighted = rel_rmse(x, lowbit::test::decode_matrix(f, lowbit::test::encode(f, x, rows, cols, imp), rows, cols), cols, imp);
      EXPECT_LT(weighted, plain * 0.97) << traits(f).name << " " << static_cast<int>(dist);
    }
}

// On the same data, our error is below ggml's: ggml's relative RMSE (plain, and
// importance-weighted with the importance vector passed as its imatrix) was measured
// with ggml_quantize_chunk + to_float from the libggml-base of llama-cpp-python
// 0.3.36 on synthetic_weights(64, 4096, seed 1, dist) and synthetic_importance(4096, 1).
TEST(LowKQuants, BeatsGgmlOnTheSameData) {
  constexpr int64_t rows = 64, cols = 4096;
  struct Ggml {
    Distribution dist;
    double q2, q2_imp, q3, q3_imp;
  };
  const auto imp = lowbit::synthetic_importance(cols, 1);
  for (Ggml g : {Ggml{Distribution::heavy_tailed, 0.34195, 0.11235, 0.18634, 0.07129},
                 Ggml{Distribution::gaussian, 0.29627, 0.22594, 0.15063, 0.12954},
                 Ggml{Distribution::outliers, 0.27129, 0.23075, 0.15214, 0.14061}}) {
    const auto x = lowbit::synthetic_weights(rows, cols, 1, g.dist);
    auto err = [&](Format f, bool weighted) {
      const auto q = weighted ? lowbit::test::encode(f, x, rows, cols, imp) : lowbit::test::encode(f, x, rows, cols);
      return rel_rmse(x, lowbit::test::decode_matrix(f, q, rows, cols), cols, weighted ? imp : std::vector<float>{});
    };
    const int d = static_cast<int>(g.dist);
    EXPECT_LT(err(Format::Q2_K, false), g.q2) << d;
    EXPECT_LT(err(Format::Q2_K, true), g.q2_imp) << d;
    EXPECT_LT(err(Format::Q3_K, false), g.q3) << d;
    EXPECT_LT(err(Format::Q3_K, true), g.q3_imp) << d;
  }
}

// The row kernels straight from the dispatch table agree with the matrix API.
TEST(LowKQuants, RowKernelsMatchTheMatrixApi) {
  const auto x = lowbit::synthetic_weights(1, 1024, 5, Distribution::heavy_tailed);
  for (Format f : {Format::Q2_K, Format::Q3_K}) {
    std::vector<std::byte> row(lowbit::quantized_size(f, 1, 1024));
    lowbit::select_quantize_kernel(f).fn(x.data(), row.data(), 1024, nullptr);
    EXPECT_EQ(row, lowbit::test::encode(f, x, 1, 1024));
    std::vector<float> y(1024);
    lowbit::select_dequantize_kernel(f).fn(row.data(), y.data(), 1024);
    EXPECT_EQ(y, lowbit::test::decode_matrix(f, row, 1, 1024));
  }
}

TEST(LowKQuants, BytesDoNotDependOnThreadCount) {
  constexpr int64_t rows = 64, cols = 2048;
  const auto x = lowbit::synthetic_weights(rows, cols, 11, Distribution::outliers);
  const auto imp = lowbit::synthetic_importance(cols, 11);
  for (Format f : {Format::Q2_K, Format::Q3_K}) {
    lowbit::set_num_threads(1);
    const auto a = lowbit::test::encode(f, x, rows, cols), ai = lowbit::test::encode(f, x, rows, cols, imp);
    lowbit::set_num_threads(2);
    const auto b = lowbit::test::encode(f, x, rows, cols), bi = lowbit::test::encode(f, x, rows, cols, imp);
    lowbit::set_num_threads(0);
    EXPECT_EQ(a, b) << traits(f).name;
    EXPECT_EQ(ai, bi) << traits(f).name;
  }
}

}  // namespace
