// PackedMatrix: the repacked weights times a batch, against float64 of the decoded
// weights times the quantized activations, for every format that repacks; the
// activation quantizer against its own contract; thread-count independence; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "lowbit/core/parallel.hpp"
#include "lowbit/core/synthetic.hpp"
#include "lowbit/formats/blocks.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/kernels/packed_matrix.hpp"
#include "test_util.hpp"

namespace lowbit {
namespace {

const Format kPackable[] = {Format::Q4_0, Format::Q4_1, Format::Q5_0, Format::Q5_1,  Format::Q8_0,
                            Format::IQ4_NL, Format::Q3_K, Format::Q4_K, Format::Q5_K, Format::IQ4_XS};

class Packable : public ::testing::TestWithParam<Format> {};

TEST_P(Packable, MultiplyMatchesFloat64OfTheDecodedOperands) {
  const Format f = GetParam();
  ASSERT_TRUE(PackedMatrix::supports(f));
  const int64_t rows = 37, cols = 512, batch = 13;  // a partial last panel; batch 8 + 4 + 1
  const std::vector<float> w = synthetic_weights(rows, cols, 3, Distribution::heavy_tailed);
  std::vector<std::byte> q(quantized_size(f, rows, cols));
  quantize(f, ConstMatrixView<float>(w.data(), rows, cols), q);
  std::vector<float> wd(w.size());
  dequantize(f, q, MatrixView<float>(wd.data(), rows, cols));
  const std::vector<float> x = synthetic_weights(batch, cols, 4, Distribution::gaussian);
  const ConstMatrixView<float> xv(x.data(), batch, cols);

  const PackedMatrix packed(f, q, rows, cols);
  EXPECT_EQ(packed.bytes(), 3u * (cols / 32) * sizeof(PackedPanelBlock));
  std::vector<float> y(static_cast<size_t>(batch * rows));
  packed.multiply(xv, MatrixView<float>(y.data(), batch, rows));

  const std::vector<PackedActivationBlock> acts = pack_activations(xv);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r) {
      double want = 0, magnitude = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const PackedActivationBlock& a = acts[b * (cols / 32) + c / 32];
        const double xa = double(a.d) * (int(a.q[c % 32]) - 128);
        want += double(wd[r * cols + c]) * xa;
        magnitude += std::fabs(double(wd[r * cols + c]) * xa) + std::fabs(double(wd[r * cols + c])) * a.d;
      }
      ASSERT_NEAR(y[b * rows + r], want, 1e-5 * magnitude) << "batch " << b << ", row " << r;
    }
}

TEST_P(Packable, TheThreadCountChangesNoByte) {
  const Format f = GetParam();
  const int64_t rows = 70, cols = 256, batch = 70;
  const std::vector<float> w = synthetic_weights(rows, cols, 5);
  std::vector<std::byte> q(quantized_size(f, rows, cols));
  quantize(f, ConstMatrixView<float>(w.data(), rows, cols), q);
  const std::vector<float> x = synthetic_weights(batch, cols, 6, Distribution::gaussian);
  std::vector<float> one(static_cast<size_t>(batch * rows)), two(one.size());
  set_num_threads(1);
  PackedMatrix(f, q, rows, cols).multiply({x.data(), batch, cols}, {one.data(), batch, rows});
  set_num_threads(2);
  PackedMatrix(f, q, rows, cols).multiply({x.data(), batch, cols}, {two.data(), batch, rows});
  set_num_threads(0);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * 4), 0);
}

INSTANTIATE_TEST_SUITE_P(All, Packable, ::testing::ValuesIn(kPackable),
                         [](const auto& info) { return std::string(traits(info.param).name); });

TEST(PackedMatrix, ActivationBlocksKeepEveryElementWithinHalfAStep) {
  const std::vector<float> x = synthetic_weights(3, 96, 9, Distribution::outliers);
  const std::vector<PackedActivationBlock> acts = pack_activations({x.data(), 3, 96});
  ASSERT_EQ(acts.size(), 9u);
  for (int64_t i = 0; i < 3 * 96; ++i) {
    const PackedActivationBlock& a = acts[i / 32];
    double amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(double(x[i / 32 * 32 + j])));
    EXPECT_NEAR(a.d, amax / 127, 1e-6 * amax);
    EXPECT_LE(std::fabs(double(x[i]) - double(a.d) * (int(a.q[i % 32]) - 128)), a.d * (0.5 + 1e-5)) << i;
  }
}

// Q3_K's extreme product: every 6-bit scale stored 0 (sc = -32) and every code 0
// (level -4), d = 1.0 (fp16 0x3C00), so every weight is -32 * -4 = +128, which int8
// cannot hold: the repacked level is -128 under the scale -1. Against all-ones
// activations (codes 127, d = 1/127) each row sums 256 * 128 * 127 * d.
TEST(PackedMatrix, Q3KScaleTimesLevelOf128RepacksWithItsSign) {
  block_q3_K block{};  // hmask, qs and scales all zero
  block.d = 0x3C00;
  std::vector<std::byte> q(sizeof block);
  std::memcpy(q.data(), &block, sizeof block);
  std::vector<float> decoded(256);
  dequantize(Format::Q3_K, q, MatrixView<float>(decoded.data(), 1, 256));
  ASSERT_EQ(decoded[0], 128.0f);  // the hand-built block is what this test says it is
  ASSERT_EQ(decoded[255], 128.0f);
  const PackedMatrix packed(Format::Q3_K, q, 1, 256);
  const std::vector<float> x(256, 1.0f);
  float y = 0;
  packed.multiply({x.data(), 1, 256}, {&y, 1, 1});
  const double want = 256.0 * 128 * 127 * double(1.0f / 127.0f);
  EXPECT_NEAR(y, want, 1e-6 * want);
}

TEST(PackedMatrix, UnsupportedFormatsAndBadShapesAreErrors) {
  for (Format f : {Format::F16, Format::Q6_K, Format::Q2_K, Format::Q8_K}) {
    EXPECT_FALSE(PackedMatrix::supports(f)) << traits(f).name;
    EXPECT_NE(test::error_of([&] { PackedMatrix(f, {}, 1, 256); }).find("does not repack"), std::string::npos);
  }
  std::vector<std::byte> q(quantized_size(Format::Q4_0, 2, 64));
  EXPECT_NE(test::error_of([&] { PackedMatrix(Format::Q4_0, std::span(q).first(10), 2, 64); }).find("bytes"),
            std::string::npos);
  const PackedMatrix m(Format::Q4_0, q, 2, 64);
  std::vector<float> x(128), y(4);
  EXPECT_NE(test::error_of([&] { m.multiply({x.data(), 2, 32}, {y.data(), 2, 2}); }).find("32 columns"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { m.multiply({x.data(), 2, 64}, {y.data(), 1, 2}); }).find("expected 2 x 2"),
            std::string::npos);
  x[3] = std::nanf("");
  EXPECT_NE(test::error_of([&] { m.multiply({x.data(), 2, 64}, {y.data(), 2, 2}); }).find("[0, 3]"),
            std::string::npos);
}

}  // namespace
}  // namespace lowbit
