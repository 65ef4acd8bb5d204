// lowbit::matmul / gemv: the driver around the dot family and the dequant + SGEMM
// path. The dot path is checked bit for bit against a plain loop over the selected
// dot kernel on the same activation bytes (the dot family itself is checked against
// float64 in test_kernel_variants); the dequant path against a float64 product of
// the decoded weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "lowbit/core/parallel.hpp"
#include "lowbit/core/synthetic.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/matmul.hpp"
#include "test_util.hpp"

namespace lowbit {
namespace {

struct Problem {
  Format f;
  int64_t rows, cols, batch;
  std::vector<std::byte> w;
  std::vector<float> x;  // batch x (cols + 3): a stride wider than the row
  int64_t x_stride;
};

Problem make_problem(Format f, int64_t rows, int64_t blocks, int64_t batch, uint64_t seed) {
  Problem p{f, rows, blocks * std::max(traits(f).block_elems, 32), batch, {}, {}, 0};
  const std::vector<float> w = synthetic_weights(rows, p.cols, seed, Distribution::heavy_tailed);
  p.w.resize(quantized_size(f, rows, p.cols));
  quantize(f, ConstMatrixView<float>(w.data(), rows, p.cols), p.w);
  p.x_stride = p.cols + 3;
  const std::vector<float> x = synthetic_weights(batch, p.x_stride, seed + 1, Distribution::gaussian);
  p.x = x;
  return p;
}

ConstMatrixView<float> x_view(const Problem& p) { return {p.x.data(), p.batch, p.cols, p.x_stride}; }

std::vector<float> run(const Problem& p, MatmulPath path, int64_t y_stride) {
  std::vector<float> y(static_cast<size_t>(p.batch * y_stride), -7.0f);
  matmul(p.f, p.w, p.rows, p.cols, x_view(p), MatrixView<float>(y.data(), p.batch, p.rows, y_stride), {path});
  return y;
}

const Format kWeightFormats[] = {Format::F32,  Format::F16,  Format::BF16, Format::Q4_0,   Format::Q4_1,
                                 Format::Q5_0, Format::Q5_1, Format::Q8_0, Format::Q2_K,   Format::Q3_K,
                                 Format::Q4_K, Format::Q5_K, Format::Q6_K, Format::IQ4_NL, Format::IQ4_XS};

class EveryWeightFormat : public ::testing::TestWithParam<Format> {};

TEST_P(EveryWeightFormat, DotPathIsTheDotOfEveryPair) {
  const Format f = GetParam();
  const Problem p = make_problem(f, 37, 11, 5, 21);  // 37 rows: two 16-row tiles and a part; 11 blocks: 8 + a tail
  const int64_t y_stride = p.rows + 2;
  const std::vector<float> y = run(p, MatmulPath::dot, y_stride);
  // The same activation bytes the path makes (ggml's), then one dot per output.
  const Format af = dot_activation_format(f);
  std::vector<std::byte> a;
  size_t arow;
  if (af == Format::F32) {
    arow = static_cast<size_t>(p.cols) * 4;
    a.resize(arow * p.batch);
    for (int64_t b = 0; b < p.batch; ++b) std::memcpy(a.data() + b * arow, x_view(p).row(b), arow);
  } else {
    arow = row_bytes(af, p.cols);
    a.resize(arow * p.batch);
    quantize_activations(af, x_view(p), a);
  }
  const DotFn dot = dot_kernels().select(f).fn;
  const size_t wrow = row_bytes(f, p.cols);
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t r = 0; r < p.rows; ++r) {
      const float want = dot(p.w.data() + r * wrow, a.data() + b * arow, p.cols);
      ASSERT_EQ(std::memcmp(&want, &y[b * y_stride + r], 4), 0) << "batch " << b << ", row " << r;
    }
    for (int64_t r = p.rows; r < y_stride; ++r) EXPECT_EQ(y[b * y_stride + r], -7.0f) << "wrote past the row";
  }
}

TEST_P(EveryWeightFormat, DequantPathMatchesFloat64) {
  const Format f = GetParam();
  const Problem p = make_problem(f, 70, 2, 11, 33);  // 70 rows: a full 64-row panel and a partial one
  const std::vector<float> y = run(p, MatmulPath::dequant, p.rows);
  std::vector<float> wd(static_cast<size_t>(p.rows * p.cols));
  dequantize(f, p.w, MatrixView<float>(wd.data(), p.rows, p.cols));
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t r = 0; r < p.rows; ++r) {
      double want = 0, magnitude = 0;
      for (int64_t c = 0; c < p.cols; ++c) {
        want += double(wd[r * p.cols + c]) * x_view(p)(b, c);
        magnitude += std::fabs(double(wd[r * p.cols + c]) * x_view(p)(b, c));
      }
      ASSERT_NEAR(y[b * p.rows + r], want, 1e-5 * magnitude) << "batch " << b << ", row " << r;
    }
}

TEST_P(EveryWeightFormat, AutomaticPathFollowsTheBatchAndTheThreadCountChangesNothing) {
  const Format f = GetParam();
  for (int64_t batch : {int64_t{1}, kMatmulDotMaxBatch, kMatmulDotMaxBatch + 1}) {
    const Problem p = make_problem(f, 130, 9, batch, 5);
    const MatmulPath expected = batch <= kMatmulDotMaxBatch ? MatmulPath::dot : MatmulPath::dequant;
    set_num_threads(1);
    const std::vector<float> one = run(p, MatmulPath::automatic, p.rows);
    set_num_threads(2);
    const std::vector<float> two = run(p, MatmulPath::automatic, p.rows);
    set_num_threads(0);
    const std::vector<float> forced = run(p, expected, p.rows);
    EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * 4), 0) << "batch " << batch;
    EXPECT_EQ(std::memcmp(one.data(), forced.data(), one.size() * 4), 0) << "batch " << batch;
  }
}

INSTANTIATE_TEST_SUITE_P(All, EveryWeightFormat, ::testing::ValuesIn(kWeightFormats),
                         [](const auto& info) { return std::string(traits(info.param).name); });

TEST(Matmul, GemvIsTheBatchOfOne) {
  const Problem p = make_problem(Format::Q4_K, 9, 2, 1, 8);
  std::vector<float> y(static_cast<size_t>(p.rows));
  gemv(p.f, p.w, p.rows, p.cols, std::span<const float>(p.x.data(), static_cast<size_t>(p.cols)), y);
  const std::vector<float> want = run(p, MatmulPath::dot, p.rows);
  EXPECT_EQ(std::memcmp(y.data(), want.data(), y.size() * 4), 0);
}

TEST(Matmul, BadArgumentsAreErrorsThatSayWhatIsWrong) {
  Problem p = make_problem(Format::Q4_0, 4, 2, 2, 9);
  std::vector<float> y(8);
  const MatrixView<float> yv(y.data(), 2, 4);
  auto err = [&](Format f, std::span<const std::byte> w, int64_t rows, int64_t cols, ConstMatrixView<float> x,
                 MatrixView<float> out) { return test::error_of([&] { matmul(f, w, rows, cols, x, out); }); };
  EXPECT_NE(err(Format::Q8_K, p.w, 4, 64, x_view(p), yv).find("activation format"), std::string::npos);
  EXPECT_NE(err(Format::Q4_0, p.w, 4, 48, {p.x.data(), 2, 48, p.x_stride}, yv).find("48"), std::string::npos);
  EXPECT_NE(err(Format::Q4_0, std::span(p.w).first(p.w.size() - 1), 4, 64, x_view(p), yv).find("bytes"),
            std::string::npos);
  EXPECT_NE(err(Format::Q4_0, p.w, 4, 64, {p.x.data(), 2, 32, p.x_stride}, yv).find("32 columns"), std::string::npos);
  EXPECT_NE(err(Format::Q4_0, p.w, 4, 64, x_view(p), MatrixView<float>(y.data(), 2, 3)).find("expected 2 x 4"),
            std::string::npos);
  EXPECT_NE(err(Format::Q4_0, p.w, 4, 64, {p.x.data(), 2, 64, 10}, yv).find("stride"), std::string::npos);
  p.x[5] = std::nanf("");
  for (MatmulPath path : {MatmulPath::dot, MatmulPath::dequant})
    EXPECT_NE(test::error_of([&] { matmul(p.f, p.w, 4, 64, x_view(p), yv, {path}); }).find("[0, 5]"),
              std::string::npos);
  std::vector<float> x1(64), y1(3);
  EXPECT_NE(test::error_of([&] { gemv(Format::Q4_0, p.w, 4, 64, x1, y1); }).find("y has 3"), std::string::npos);
}

TEST(Matmul, EmptyShapesWriteNothingOrZeros) {
  std::vector<float> y(4, 1.0f);
  matmul(Format::Q4_K, {}, 2, 0, ConstMatrixView<float>(nullptr, 2, 0), MatrixView<float>(y.data(), 2, 2));
  for (float v : y) EXPECT_EQ(v, 0.0f);
  EXPECT_NO_THROW(matmul(Format::Q4_K, {}, 0, 256, ConstMatrixView<float>(nullptr, 0, 256),
                         MatrixView<float>(nullptr, 0, 0)));
}

}  // namespace
}  // namespace lowbit
