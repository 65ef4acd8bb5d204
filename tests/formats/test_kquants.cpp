// Q4_K, Q5_K, Q6_K and Q8_K: layout (golden blocks written byte by byte from the
// documented GGML layout), reconstruction quality against ggml's own numbers,
// importance weighting, exact grids, zero blocks and determinism.
#include <gtest/gtest.h>

#include <array>
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

using lowbit::test::as_bytes;
using lowbit::test::put_u16;

// Sum_j w_j (a_j - b_j)^2 over a rows x cols matrix, in double.
double weighted_sse(const std::vector<float>& a, const std::vector<float>& b, int64_t cols,
                    const std::vector<float>& w) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    s += (w.empty() ? 1.0 : w[i % cols]) * d * d;
  }
  return s;
}

// ------------------------------------------------------------- golden blocks

// Q4_K block: fp16 d (offset 0), fp16 dmin (2), 12 scale bytes (4), 128 code bytes
// (16). Element e lives in sub-block e/32 and decodes to d*sc*q - dmin*m.
TEST(KQuantsGolden, Q4_K) {
  const uint8_t sc[8] = {1, 2, 3, 4, 17, 33, 50, 63};
  const uint8_t m[8] = {0, 5, 10, 20, 31, 40, 48, 62};
  std::array<uint8_t, 144> blk{};
  put_u16(&blk[0], 0x3C00);  // d = 1.0
  put_u16(&blk[2], 0x3800);  // dmin = 0.5
  // The 6-bit packing worked out by hand: bytes 0-3 = sc[0..3] | (sc[4..7] >> 4) << 6,
  // bytes 4-7 = m[0..3] | (m[4..7] >> 4) << 6, bytes 8-11 = low nibbles of
  // sc[4..7] | low nibbles of m[4..7] << 4. E.g. sc[4] = 17 = 0b01'0001 gives the
  // high bits 01 in byte 0 and the low nibble 1 in byte 8.
  const uint8_t scales[12] = {0x41, 0x82, 0xC3, 0xC4, 0x40, 0x85, 0xCA, 0xD4, 0xF1, 0x81, 0x02, 0xEF};
  std::memcpy(&blk[4], scales, 12);
  auto code = [](int e) { return (e * 7 + 3) % 16; };
  // Each 64 elements share 32 bytes: element 64g+l in the low nibble of byte 32g+l,
  // element 64g+32+l in its high nibble.
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l)
      blk[16 + 32 * g + l] = static_cast<uint8_t>(code(64 * g + l) | (code(64 * g + 32 + l) << 4));

  const auto y = lowbit::test::decode_matrix(Format::Q4_K, as_bytes(blk.data(), blk.size()), 1, kQK);
  for (int e = 0; e < kQK; ++e) {
    const double expect = 1.0 * sc[e / 32] * code(e) - 0.5 * m[e / 32];
    ASSERT_EQ(y[e], static_cast<float>(expect)) << "element " << e;
  }
}

// Q5_K block: d (0), dmin (2), scales (4, as Q4_K), qh[32] (16), qs[128] (48). The
// fifth bit of element 64g+l (l < 32) is bit 2g of qh[l], of element 64g+32+l bit 2g+1.
TEST(KQuantsGolden, Q5_K) {
  std::array<uint8_t, 176> blk{};
  put_u16(&blk[0], 0x4000);  // d = 2.0
  put_u16(&blk[2], 0x3400);  // dmin = 0.25
  // sc = {63, 16, 0, 5, 32, 1, 47, 20}, m = {1, 63, 2, 0, 16, 50, 3, 33}:
  // byte0 = 63 | (32>>4)<<6 = 0xBF, byte1 = 16 | (1>>4)<<6 = 0x10,
  // byte2 = 0 | (47>>4)<<6 = 0x80, byte3 = 5 | (20>>4)<<6 = 0x45,
  // byte4 = 1 | (16>>4)<<6 = 0x41, byte5 = 63 | (50>>4)<<6 = 0xFF,
  // byte6 = 2 | (3>>4)<<6 = 0x02, byte7 = 0 | (33>>4)<<6 = 0x80,
  // byte8 = (32&15) | (16&15)<<4 = 0x00, byte9 = 1 | (50&15)<<4 = 0x21,
  // byte10 = (47&15) | (3&15)<<4 = 0x3F, byte11 = (20&15) | (33&15)<<4 = 0x14.
  const uint8_t sc[8] = {63, 16, 0, 5, 32, 1, 47, 20};
  const uint8_t m[8] = {1, 63, 2, 0, 16, 50, 3, 33};
  const uint8_t scales[12] = {0xBF, 0x10, 0x80, 0x45, 0x41, 0xFF, 0x02, 0x80, 0x00, 0x21, 0x3F, 0x14};
  std::memcpy(&blk[4], scales, 12);
  auto code = [](int e) { return (e * 11 + 5) % 32; };
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l) {
      const int lo = code(64 * g + l), hi = code(64 * g + 32 + l);
      blk[48 + 32 * g + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
      blk[16 + l] |= static_cast<uint8_t>(((lo >> 4) << (2 * g)) | ((hi >> 4) << (2 * g + 1)));
    }

  const auto y = lowbit::test::decode_matrix(Format::Q5_K, as_bytes(blk.data(), blk.size()), 1, kQK);
  for (int e = 0; e < kQK; ++e) {
    const double expect = 2.0 * sc[e / 32] * code(e) - 0.25 * m[e / 32];
    ASSERT_EQ(y[e], static_cast<float>(expect)) << "element " << e;
  }
}

// Q6_K block: ql[128] (0), qh[64] (128), int8 scales[16] (192), fp16 d (208).
// Element e = 128h + 32k + l decodes to d * scales[e/16] * (q - 32), where q's low
// nibble is in ql[64h + l + 32*(k&1)] (low nibble for k < 2, high for k >= 2) and
// its top two bits are bits 2k..2k+1 of qh[32h + l].
TEST(KQuantsGolden, Q6_K) {
  std::array<uint8_t, 210> blk{};
  const int8_t scales[16] = {-128, 127, 1, -1, 5, -7, 64, -64, 100, 3, -100, 0, 31, -32, 12, 90};
  auto code = [](int e) { return (e * 13 + 7) % 64; };
  for (int e = 0; e < kQK; ++e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32, q = code(e);
    blk[64 * h + l + 32 * (k & 1)] |= static_cast<uint8_t>((q & 15) << (k >= 2 ? 4 : 0));
    blk[128 + 32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
  }
  std::memcpy(&blk[192], scales, 16);
  put_u16(&blk[208], 0x3400);  // d = 0.25

  const auto y = lowbit::test::decode_matrix(Format::Q6_K, as_bytes(blk.data(), blk.size()), 1, kQK);
  for (int e = 0; e < kQK; ++e) {
    const double expect = 0.25 * scales[e / 16] * (code(e) - 32);
    ASSERT_EQ(y[e], static_cast<float>(expect)) << "element " << e;
  }
}

// Q8_K block: fp32 d (0), int8 qs[256] (4), int16 bsums[16] (260); x = d*q.
TEST(KQuantsGolden, Q8_K) {
  std::array<uint8_t, 292> blk{};
  const uint8_t d_bytes[4] = {0x00, 0x00, 0x40, 0xBF};  // -0.75f = 0xBF400000, little-endian
  std::memcpy(&blk[0], d_bytes, 4);
  auto code = [](int e) { return (e * 37) % 255 - 127; };
  for (int e = 0; e < kQK; ++e) blk[4 + e] = static_cast<uint8_t>(static_cast<int8_t>(code(e)));
  const auto y = lowbit::test::decode_matrix(Format::Q8_K, as_bytes(blk.data(), blk.size()), 1, kQK);
  for (int e = 0; e < kQK; ++e) ASSERT_EQ(y[e], static_cast<float>(-0.75 * code(e))) << "element " << e;
}

// --------------------------------------------------------------- quality

struct Case {
  Format format;
  Distribution dist;
  double ggml_plain;     // ggml_quantize_chunk(imatrix = NULL) on the same data
  double ggml_weighted;  // ggml_quantize_chunk(imatrix = synthetic_importance)
};

// ggml's relative RMSE on synthetic_weights(64, 4096, seed 1), measured through
// libggml-base (llama-cpp-python 0.3.36's vendored ggml); the weighted column is
// the importance-weighted RMSE with synthetic_importance(4096, 1) as imatrix.
// These are ggml's numbers, not ours: if synthetic_weights ever changes, measure
// them again through ggml_quantize_chunk + the type's to_float.
constexpr Case kCases[] = {
    {Format::Q4_K, Distribution::heavy_tailed, 0.091015, 0.034560},
    {Format::Q4_K, Distribution::gaussian, 0.071224, 0.061743},
    {Format::Q4_K, Distribution::outliers, 0.086908, 0.077319},
    {Format::Q5_K, Distribution::heavy_tailed, 0.046211, 0.017751},
    {Format::Q5_K, Distribution::gaussian, 0.036063, 0.031528},
    {Format::Q5_K, Distribution::outliers, 0.043740, 0.039199},
    {Format::Q6_K, Distribution::heavy_tailed, 0.025403, 0.010077},
    {Format::Q6_K, Distribution::gaussian, 0.017751, 0.015658},
    {Format::Q6_K, Distribution::outliers, 0.026464, 0.025893},
};

class KQuantsQuality : public ::testing::TestWithParam<Case> {};

TEST_P(KQuantsQuality, BeatsGgmlAndImportanceHelps) {
  const Case c = GetParam();
  constexpr int64_t rows = 64, cols = 4096;
  const auto x = lowbit::synthetic_weights(rows, cols, 1, c.dist);
  const auto imp = lowbit::synthetic_importance(cols, 1);
  const lowbit::ConstMatrixView<float> xv(x.data(), rows, cols);

  const auto plain = lowbit::test::decode_matrix(c.format, lowbit::test::encode(c.format, x, rows, cols), rows, cols);
  const auto weighted = lowbit::test::decode_matrix(c.format, lowbit::test::encode(c.format, x, rows, cols, imp), rows, cols);
  const double rmse = lowbit::relative_rmse(xv, {plain.data(), rows, cols});
  const double wrmse = lowbit::relative_rmse(xv, {weighted.data(), rows, cols}, imp);
  const double wrmse_plain = lowbit::relative_rmse(xv, {plain.data(), rows, cols}, imp);

  // Bounds that fit the bits: b-bit codes on scales fitted per 16-32 elements leave
  // a relative RMSE of about 1.5 * 2^-b on these distributions (the bounds allow
  // 1.6-1.9x). Every format must also beat ggml on the same data.
  const double bits_bound = c.format == Format::Q4_K ? 0.10 : c.format == Format::Q5_K ? 0.05 : 0.03;
  EXPECT_LT(rmse, bits_bound);
  EXPECT_LT(rmse, c.ggml_plain);
  EXPECT_LT(wrmse, c.ggml_weighted);
  // Quantizing for the importance lowers the importance-weighted error.
  EXPECT_LT(wrmse, wrmse_plain);
}

INSTANTIATE_TEST_SUITE_P(Formats, KQuantsQuality, ::testing::ValuesIn(kCases));

// ggml's quantize_row_q8_K_ref semantics in double: q = round(-127/max * x) with max
// the signed element of largest magnitude, d = 1/iscale.
std::vector<float> q8_K_absmax(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t b = 0; b < x.size(); b += kQK) {
    float vmax = 0;
    for (int i = 0; i < kQK; ++i)
      if (std::fabs(x[b + i]) > std::fabs(vmax)) vmax = x[b + i];
    if (vmax == 0) continue;
    const float iscale = -127.0f / vmax;
    for (int i = 0; i < kQK; ++i)
      y[b + i] = (1 / iscale) * std::min(127.0f, std::nearbyint(iscale * x[b + i]));
  }
  return y;
}

TEST(KQuantsQuality, Q8_KNoWorseThanAbsmax) {
  constexpr int64_t rows = 32, cols = 4096;
  const auto imp = lowbit::synthetic_importance(cols, 2);
  for (Distribution dist : {Distribution::heavy_tailed, Distribution::gaussian, Distribution::outliers}) {
    const auto x = lowbit::synthetic_weights(rows, cols, 2, dist);
    const auto ref = q8_K_absmax(x);
    const auto plain = lowbit::test::decode_matrix(Format::Q8_K, lowbit::test::encode(Format::Q8_K, x, rows, cols), rows, cols);
    const auto weighted = lowbit::test::decode_matrix(Format::Q8_K, lowbit::test::encode(Format::Q8_K, x, rows, cols, imp), rows, cols);
    EXPECT_LE(weighted_sse(x, plain, cols, {}), weighted_sse(x, ref, cols, {}));
    EXPECT_LE(weighted_sse(x, weighted, cols, imp), weighted_sse(x, ref, cols, imp));
    EXPECT_LT(lowbit::relative_rmse({x.data(), rows, cols}, {plain.data(), rows, cols}), 0.03);
  }
}

// Q8_K's block sums are what the K-quant dot products use for the min term: they
// must equal the sum of each 16 stored codes, and codes stay in [-127, 127].
TEST(KQuantsLayout, Q8_KBlockSumsAndRange) {
  const auto x = lowbit::synthetic_weights(4, 1024, 5, Distribution::outliers);
  const auto q = lowbit::test::encode(Format::Q8_K, x, 4, 1024);
  ASSERT_EQ(q.size(), 16u * 292u);
  for (size_t b = 0; b < 16; ++b) {
    const uint8_t* blk = reinterpret_cast<const uint8_t*>(q.data()) + 292 * b;
    for (int k = 0; k < 16; ++k) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) {
        const int v = static_cast<int8_t>(blk[4 + 16 * k + i]);
        ASSERT_GE(v, -127);
        sum += v;
      }
      int16_t stored;
      std::memcpy(&stored, blk + 260 + 2 * k, 2);
      ASSERT_EQ(stored, sum) << "block " << b << " group " << k;
    }
  }
}

// --------------------------------------------------------- exact and zero

// Values built on each format's grid (powers of two, so every product is exact)
// must come back unchanged: the scale search has to find the grid.
TEST(KQuantsExact, AffineGridIsReproduced) {
  for (Format f : {Format::Q4_K, Format::Q5_K}) {
    const int nmax = f == Format::Q4_K ? 15 : 31;
    const double d = 1.0 / 16, dmin = 1.0 / 32;
    const int sc[8] = {63, 40, 7, 22, 63, 1, 35, 50};
    const int m[8] = {63, 0, 12, 63, 5, 30, 44, 9};
    std::vector<float> x(2 * kQK);
    for (int e = 0; e < 2 * kQK; ++e) {
      const int j = (e % kQK) / 32, i = e % 32;
      // Every sub-block uses codes 0 and nmax, so its range pins the grid.
      const int q = i == 0 ? 0 : i == 1 ? nmax : (e * 5 + 1) % (nmax + 1);
      x[e] = static_cast<float>(d * sc[j] * q - dmin * m[j]);
    }
    const auto y = lowbit::test::decode_matrix(f, lowbit::test::encode(f, x, 2, kQK), 2, kQK);
    for (int e = 0; e < 2 * kQK; ++e) ASSERT_EQ(y[e], x[e]) << lowbit::traits(f).name << " element " << e;
  }
}

TEST(KQuantsExact, SymmetricGridIsReproduced) {
  // Q6_K: x = d * sc_j * (q - 32); the largest scale is -128 and each sub-block
  // uses code -32, so the widest sub-block pins d.
  std::vector<float> x(kQK);
  const int sc[16] = {-128, 90, 3, -17, 64, 1, -1, 127, 45, -60, 8, 100, -128, 33, 2, -5};
  for (int e = 0; e < kQK; ++e) {
    const int q = e % 16 == 0 ? -32 : (e * 7 + 3) % 64 - 32;
    x[e] = static_cast<float>(0.125 * sc[e / 16] * q);
  }
  auto y = lowbit::test::decode_matrix(Format::Q6_K, lowbit::test::encode(Format::Q6_K, x, 1, kQK), 1, kQK);
  for (int e = 0; e < kQK; ++e) ASSERT_EQ(y[e], x[e]) << "Q6_K element " << e;

  // Q8_K: x = d*q with some |q| = 127.
  for (int e = 0; e < kQK; ++e) x[e] = static_cast<float>(0.5 * (e == 7 ? -127 : (e * 29) % 255 - 127));
  y = lowbit::test::decode_matrix(Format::Q8_K, lowbit::test::encode(Format::Q8_K, x, 1, kQK), 1, kQK);
  for (int e = 0; e < kQK; ++e) ASSERT_EQ(y[e], x[e]) << "Q8_K element " << e;
}

TEST(KQuantsExact, ZeroBlocksAreAllZeroBytes) {
  for (Format f : {Format::Q4_K, Format::Q5_K, Format::Q6_K, Format::Q8_K}) {
    // Block 0 zero, block 1 not: the zero block must not pick anything up.
    std::vector<float> x(2 * kQK, 0.0f);
    for (int i = 0; i < kQK; ++i) x[kQK + i] = static_cast<float>(i % 17) - 8.0f;
    const auto q = lowbit::test::encode(f, x, 1, 2 * kQK);
    const size_t block = q.size() / 2;
    for (size_t i = 0; i < block; ++i)
      ASSERT_EQ(q[i], std::byte{0}) << lowbit::traits(f).name << " byte " << i;
    const auto y = lowbit::test::decode_matrix(f, q, 1, 2 * kQK);
    for (int i = 0; i < kQK; ++i) ASSERT_EQ(y[i], 0.0f) << lowbit::traits(f).name << " element " << i;
    // A zero row with an all-zero importance vector is still well defined.
    const std::vector<float> zero_imp(2 * kQK, 0.0f);
    const auto qi = lowbit::test::encode(f, x, 1, 2 * kQK, zero_imp);
    EXPECT_EQ(qi, q) << lowbit::traits(f).name << ": all-zero importance falls back to plain error";
  }
}

// ------------------------------------------------------------ determinism

TEST(KQuantsDeterminism, ThreadCountDoesNotChangeBytes) {
  constexpr int64_t rows = 24, cols = 1024;
  const auto x = lowbit::synthetic_weights(rows, cols, 9, Distribution::heavy_tailed);
  const auto imp = lowbit::synthetic_importance(cols, 9);
  for (Format f : {Format::Q4_K, Format::Q5_K, Format::Q6_K, Format::Q8_K}) {
    for (bool with_imp : {false, true}) {
      const std::vector<float> w = with_imp ? imp : std::vector<float>{};
      lowbit::set_num_threads(1);
      const auto one = lowbit::test::encode(f, x, rows, cols, w);
      lowbit::set_num_threads(2);
      const auto two = lowbit::test::encode(f, x, rows, cols, w);
      const auto again = lowbit::test::encode(f, x, rows, cols, w);
      EXPECT_EQ(one, two) << lowbit::traits(f).name;
      EXPECT_EQ(two, again) << lowbit::traits(f).name;
    }
  }
  lowbit::set_num_threads(0);
}

}  // namespace
