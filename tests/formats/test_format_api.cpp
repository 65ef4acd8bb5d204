// Format traits, the dispatch tables, and the checks every format shares at the
// API surface: bad input gives lowbit::Error, results ignore the thread count.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "lowbit/lowbit.hpp"
#include "test_util.hpp"

namespace lowbit {
// Readable test names and failure messages: "Q4_K", not "4-byte object".
void PrintTo(Format f, std::ostream* os) { *os << traits(f).name; }
}  // namespace lowbit

namespace {

using lowbit::Format;

struct Expected {
  const char* name;
  uint32_t id;
  int elems, bytes;
  double bpw;
};

// GGML's table (the format table in docs/formats.md / ggml.c type_traits), typed in by hand.
const Expected kGgmlTable[] = {
    {"F32", 0, 1, 4, 32},          {"F16", 1, 1, 2, 16},          {"BF16", 30, 1, 2, 16},
    {"Q4_0", 2, 32, 18, 4.5},      {"Q4_1", 3, 32, 20, 5.0},      {"Q5_0", 6, 32, 22, 5.5},
    {"Q5_1", 7, 32, 24, 6.0},      {"Q8_0", 8, 32, 34, 8.5},      {"Q8_1", 9, 32, 36, 9.0},
    {"Q2_K", 10, 256, 84, 2.625},  {"Q3_K", 11, 256, 110, 3.4375}, {"Q4_K", 12, 256, 144, 4.5},
    {"Q5_K", 13, 256, 176, 5.5},   {"Q6_K", 14, 256, 210, 6.5625}, {"Q8_K", 15, 256, 292, 9.125},
    {"IQ4_NL", 20, 32, 18, 4.5},   {"IQ4_XS", 23, 256, 136, 4.25},
};

TEST(FormatTraits, MatchGgmlTable) {
  ASSERT_EQ(lowbit::all_formats().size(), std::size(kGgmlTable));
  for (const Expected& e : kGgmlTable) {
    SCOPED_TRACE(e.name);
    auto f = lowbit::format_from_name(e.name);
    ASSERT_TRUE(f.has_value());
    const auto& t = lowbit::traits(*f);
    EXPECT_EQ(t.name, e.name);
    EXPECT_EQ(t.ggml_type, e.id);
    EXPECT_EQ(static_cast<uint32_t>(*f), e.id);
    EXPECT_EQ(t.block_elems, e.elems);
    EXPECT_EQ(t.block_bytes, e.bytes);
    EXPECT_DOUBLE_EQ(t.bits_per_weight(), e.bpw);
    EXPECT_EQ(lowbit::format_from_ggml_type(e.id), *f);
  }
  EXPECT_EQ(lowbit::format_from_name("q4_k"), Format::Q4_K);
  EXPECT_FALSE(lowbit::format_from_name("Q4_K_M").has_value());
  EXPECT_THROW(lowbit::format_from_ggml_type(16), lowbit::Error);  // IQ2_XXS: not implemented
}

TEST(FormatTraits, RowBytesRejectsRaggedRows) {
  EXPECT_EQ(lowbit::row_bytes(Format::Q4_K, 4096), 16u * 144u);
  EXPECT_EQ(lowbit::row_bytes(Format::F16, 7), 14u);
  try {
    lowbit::row_bytes(Format::Q4_K, 4000);
    FAIL() << "expected an error";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("4000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Q4_K"), std::string::npos) << e.what();
  }
}

TEST(Registry, EveryFormatHasBothKernelFamilies) {
  for (const auto& t : lowbit::all_formats()) {
    EXPECT_EQ(lowbit::select_quantize_kernel(t.format).key, t.format) << t.name;
    EXPECT_EQ(lowbit::select_dequantize_kernel(t.format).key, t.format) << t.name;
  }
}

class EveryFormat : public ::testing::TestWithParam<Format> {};

std::string format_name(const ::testing::TestParamInfo<Format>& info) {
  return std::string(lowbit::traits(info.param).name);
}

std::vector<Format> formats() {
  std::vector<Format> v;
  for (const auto& t : lowbit::all_formats()) v.push_back(t.format);
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, EveryFormat, ::testing::ValuesIn(formats()), format_name);

using lowbit::test::error_of;

TEST_P(EveryFormat, RaggedRowShortBufferAndNullAreErrors) {
  const Format f = GetParam();
  const int block = lowbit::traits(f).block_elems;
  if (block == 1) GTEST_SKIP() << "plain float types accept any row length";
  const int64_t cols = block * 2;
  auto w = lowbit::synthetic_weights(2, cols + 1, 1);
  std::vector<std::byte> q(lowbit::quantized_size(f, 2, cols));
  std::vector<float> out(2 * cols);

  EXPECT_NE(error_of([&] { lowbit::quantize(f, {w.data(), 2, cols + 1}, q); }).find("not a multiple"), std::string::npos);
  std::span<std::byte> short_dst(q.data(), q.size() - 1);
  EXPECT_NE(error_of([&] { lowbit::quantize(f, {w.data(), 2, cols}, short_dst); }).find("needs"), std::string::npos);
  EXPECT_NE(error_of([&] { lowbit::quantize(f, {nullptr, 2, cols}, q); }).find("null"), std::string::npos);
  EXPECT_NE(error_of([&] { lowbit::quantize(f, {w.data(), 2, cols}, std::span<std::byte>()); }).find("null"), std::string::npos);
  std::span<const std::byte> short_src(q.data(), q.size() - 1);
  EXPECT_NE(error_of([&] { lowbit::dequantize(f, short_src, {out.data(), 2, cols}); }).find("needs"), std::string::npos);
  EXPECT_NE(error_of([&] { lowbit::dequantize(f, q, {out.data(), 2, cols + 1}); }).find("not a multiple"), std::string::npos);
  EXPECT_NE(error_of([&] { lowbit::dequantize(f, q, {nullptr, 2, cols}); }).find("null"), std::string::npos);
}

TEST_P(EveryFormat, NonFiniteInputIsAnErrorNamingTheElement) {
  const Format f = GetParam();
  const int64_t cols = 256;
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    auto w = lowbit::synthetic_weights(3, cols, 2);
    w[2 * cols + 77] = bad;
    std::vector<std::byte> q(lowbit::quantized_size(f, 3, cols));
    const std::string msg = error_of([&] { lowbit::quantize(f, {w.data(), 3, cols}, q); });
    EXPECT_NE(msg.find("[2, 77]"), std::string::npos) << "message: " << msg;
  }
}

TEST_P(EveryFormat, BadImportanceIsAnError) {
  const Format f = GetParam();
  const int64_t cols = 256;
  auto w = lowbit::synthetic_weights(2, cols, 3);
  std::vector<std::byte> q(lowbit::quantized_size(f, 2, cols));
  std::vector<float> imp(cols - 1, 1.0f);
  EXPECT_NE(error_of([&] { lowbit::quantize(f, {w.data(), 2, cols}, q, imp); }).find("255 entries"), std::string::npos);
  imp.assign(cols, 1.0f);
  imp[9] = -1.0f;
  EXPECT_NE(error_of([&] { lowbit::quantize(f, {w.data(), 2, cols}, q, imp); }).find("importance[9]"), std::string::npos);
  imp[9] = NAN;
  EXPECT_NE(error_of([&] { lowbit::quantize(f, {w.data(), 2, cols}, q, imp); }).find("importance[9]"), std::string::npos);
}

TEST_P(EveryFormat, BytesDoNotDependOnThreadCountOrStride) {
  const Format f = GetParam();
  const int64_t rows = 64, cols = 1024;
  auto w = lowbit::synthetic_weights(rows, cols, 4);
  auto imp = lowbit::synthetic_importance(cols, 4);
  const size_t n = lowbit::quantized_size(f, rows, cols);
  std::vector<std::byte> one(n), two(n), strided(n);
  lowbit::set_num_threads(1);
  lowbit::quantize(f, {w.data(), rows, cols}, one, imp);
  lowbit::set_num_threads(2);
  lowbit::quantize(f, {w.data(), rows, cols}, two, imp);
  lowbit::set_num_threads(0);
  EXPECT_EQ(one, two);
  // The same rows inside a wider buffer give the same bytes.
  std::vector<float> wide(rows * (cols + 32), 99.0f);
  for (int64_t r = 0; r < rows; ++r) std::copy_n(&w[r * cols], cols, &wide[r * (cols + 32)]);
  lowbit::quantize(f, {wide.data(), rows, cols, cols + 32}, strided, imp);
  EXPECT_EQ(one, strided);
}

TEST_P(EveryFormat, EmptyMatrixIsFine) {
  const Format f = GetParam();
  std::vector<std::byte> q;
  EXPECT_NO_THROW(lowbit::quantize(f, {nullptr, 0, 256}, q));
  EXPECT_NO_THROW(lowbit::dequantize(f, q, {nullptr, 0, 256}));
}

// A matrix with no columns (or no rows) but an absurd other dimension is nothing to
// do: it must return at once, not loop over 2^62 empty rows.
TEST(WholeMatrix, EmptyMatricesWithHugeOtherDimensionReturnAtOnce) {
  const int64_t huge = int64_t{1} << 62;
  for (const auto& t : lowbit::all_formats()) {
    std::vector<std::byte> none;
    EXPECT_EQ(lowbit::quantized_size(t.format, huge, 0), 0u) << t.name;
    EXPECT_NO_THROW(lowbit::quantize(t.format, {nullptr, huge, 0}, none)) << t.name;
    EXPECT_NO_THROW(lowbit::dequantize(t.format, none, {nullptr, huge, 0})) << t.name;
  }
  // A byte count that does not fit size_t is an error, not a wrapped small number.
  EXPECT_NE(error_of([&] { lowbit::quantized_size(Format::F32, huge, 1024); }).find("size_t"), std::string::npos);
}

// Finite values a format cannot represent are refused, naming the element, instead
// of being clipped to a block whose error is the value itself. Hand-derived limits:
// F16 rounds 65520 and above to Inf; Q4_K reaches 65504 * 63 * 15 upwards and only
// 65504 * 63 (dmin times the largest 6-bit min) downwards; Q4_0 65504 * 8 both ways.
TEST(WholeMatrix, ValuesBeyondAFormatsRangeAreErrorsNamingTheElement) {
  auto msg_for = [](Format f, float value, int64_t at) {
    std::vector<float> w(2 * 256, 0.5f);
    w[at] = value;
    std::vector<std::byte> q(lowbit::quantized_size(f, 2, 256));
    return error_of([&] { lowbit::quantize(f, {w.data(), 2, 256}, q); });
  };
  std::string msg = msg_for(Format::F16, 65520.0f, 256 + 7);
  EXPECT_NE(msg.find("[1, 7]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("65520"), std::string::npos) << msg;
  EXPECT_EQ(msg_for(Format::F16, 65519.0f, 3), "");  // rounds to 65504: representable
  EXPECT_EQ(msg_for(Format::F16, -65504.0f, 3), "");
  EXPECT_NE(msg_for(Format::Q4_K, 7e7f, 9).find("[0, 9]"), std::string::npos);
  EXPECT_EQ(msg_for(Format::Q4_K, 6e7f, 9), "");
  EXPECT_NE(msg_for(Format::Q4_K, -4.2e6f, 9).find("outside the range"), std::string::npos);
  EXPECT_EQ(msg_for(Format::Q4_K, -4.1e6f, 9), "");
  EXPECT_NE(msg_for(Format::Q4_0, -5.3e5f, 0).find("[0, 0]"), std::string::npos);
  EXPECT_EQ(msg_for(Format::Q4_0, -5.2e5f, 0), "");
  for (Format f : {Format::F32, Format::BF16, Format::Q8_K}) EXPECT_EQ(msg_for(f, 3e38f, 1), "") << int(f);
  // BF16: 0x7f7f is the largest finite value; from 0x7f7f8000 (half an ulp above) fp32
  // values round to Inf. (Found by the kernels fuzzer.)
  EXPECT_NE(msg_for(Format::BF16, std::bit_cast<float>(0x7f7f8000u), 2).find("[0, 2]"), std::string::npos);
  EXPECT_EQ(msg_for(Format::BF16, std::bit_cast<float>(0x7f7f7fffu), 2), "");
  // Within range, a large value is represented, not clipped: Q4_K keeps 6e7 within
  // its block's error.
  std::vector<float> w(256, 0.0f), y(256);
  w[0] = 6e7f;
  std::vector<std::byte> q(lowbit::quantized_size(Format::Q4_K, 1, 256));
  lowbit::quantize(Format::Q4_K, {w.data(), 1, 256}, q);
  lowbit::dequantize(Format::Q4_K, q, {y.data(), 1, 256});
  EXPECT_NEAR(y[0], 6e7, 6e7 * 0.05);
}

// Importance vectors are used up to a common factor. Subnormal ones (which made the
// K-quants' weight normalisation overflow and zero whole tensors) and huge ones must
// give the bytes that a well-scaled vector with the same proportions gives.
TEST(WholeMatrix, ImportanceScaleDoesNotMatter) {
  const int64_t rows = 8, cols = 512;
  const auto w = lowbit::synthetic_weights(rows, cols, 9);
  const auto imp = lowbit::synthetic_importance(cols, 9);
  for (const auto& t : lowbit::all_formats()) {
    if (!t.quantized) continue;
    std::vector<std::byte> base(lowbit::quantized_size(t.format, rows, cols));
    lowbit::quantize(t.format, {w.data(), rows, cols}, base, imp);
    for (int e : {-140, -120, -100, 60}) {  // 2^-140: deep in fp32's subnormals
      std::vector<float> scaled(imp);
      for (float& v : scaled) v = std::ldexp(v, e);
      std::vector<std::byte> q(base.size());
      lowbit::quantize(t.format, {w.data(), rows, cols}, q, scaled);
      std::vector<float> a(rows * cols), b(rows * cols);
      lowbit::dequantize(t.format, base, {a.data(), rows, cols});
      lowbit::dequantize(t.format, q, {b.data(), rows, cols});
      const double ea = lowbit::relative_rmse({w.data(), rows, cols}, {a.data(), rows, cols}, imp);
      const double eb = lowbit::relative_rmse({w.data(), rows, cols}, {b.data(), rows, cols}, imp);
      // Exact powers of two change nothing where no weight underflows; at 2^-140 the
      // smallest weights lose bits, so allow a small difference in weighted error.
      EXPECT_LE(eb, ea * 1.02 + 1e-9) << t.name << " importance x 2^" << e;
      if (e >= -100) EXPECT_EQ(q, base) << t.name << " importance x 2^" << e;
    }
  }
}

}  // namespace
