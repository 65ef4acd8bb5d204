// The C API (include/lowbit/lowbit.h) against expectations that do not come from the C
// layer itself: hand-derived bytes and sizes, and the C++ API it wraps (whose own suites
// check it against ggml, the gguf package and the numpy references), plus every
// status and message a bad argument gets.
#include "lowbit/lowbit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "lowbit/lowbit.hpp"

namespace fs = std::filesystem;
using lowbit::ConstMatrixView;
using lowbit::Format;
using lowbit::MatrixView;

// tests/c_api/c_callers.c: out-of-range enum values passed from C.
extern "C" {
const char* c_status_name(int status);
lowbit_status c_set_log_level(int level);
lowbit_status c_kernel_name(int family, lowbit_format format, const char** out_name);
lowbit_status c_writer_set_int(lowbit_gguf_writer* w, const char* key, int type, int64_t value);
}

namespace {

std::string last_error() { return lowbit_last_error(); }

// EXPECT that `call` returned `status` and the message mentions every fragment.
#define EXPECT_STATUS(call, status, ...)                                                     \
  do {                                                                                      \
    const lowbit_status s_ = (call);                                                        \
    EXPECT_EQ(s_, status) << lowbit_status_name(s_) << ": " << lowbit_last_error();         \
    for (const char* frag_ : {__VA_ARGS__})                                                 \
      EXPECT_NE(last_error().find(frag_), std::string::npos) << "message: " << last_error() \
                                                              << "\nmissing: " << frag_;    \
  } while (0)

#define ASSERT_OK(call)                                                                   \
  do {                                                                                    \
    const lowbit_status s_ = (call);                                                      \
    ASSERT_EQ(s_, LOWBIT_OK) << lowbit_status_name(s_) << ": " << lowbit_last_error(); \
  } while (0)

std::vector<float> weights(int64_t rows, int64_t cols, uint64_t seed = 3) {
  return lowbit::synthetic_weights(rows, cols, seed);
}

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("lowbit_test_c_api_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// ------------------------------------------------------------------ errors, version

TEST(CApiCore, VersionMatchesTheLibrary) {
  EXPECT_STREQ(lowbit_version(), LOWBIT_VERSION_STRING);
  EXPECT_STREQ(lowbit_version(), lowbit::kVersionString);
  EXPECT_EQ(lowbit_abi_version(), LOWBIT_ABI_VERSION);
  EXPECT_EQ(LOWBIT_VERSION_MAJOR, lowbit::kVersionMajor);
  EXPECT_EQ(LOWBIT_VERSION_MINOR, lowbit::kVersionMinor);
  EXPECT_EQ(LOWBIT_VERSION_PATCH, lowbit::kVersionPatch);
}

TEST(CApiCore, StatusNames) {
  EXPECT_STREQ(lowbit_status_name(LOWBIT_OK), "LOWBIT_OK");
  EXPECT_STREQ(lowbit_status_name(LOWBIT_ERROR_BUFFER_TOO_SMALL), "LOWBIT_ERROR_BUFFER_TOO_SMALL");
  EXPECT_STREQ(lowbit_status_name(LOWBIT_ERROR_CANCELLED), "LOWBIT_ERROR_CANCELLED");
  EXPECT_STREQ(c_status_name(99), "unknown status");
  EXPECT_STREQ(c_status_name(-1), "unknown status");
}

TEST(CApiCore, LastErrorIsPerThreadAndKeptBySuccessfulCalls) {
  lowbit_format_info info;
  EXPECT_STATUS(lowbit_format_info_by_name("Q9_Z", &info), LOWBIT_ERROR_NOT_FOUND, "lowbit_format_info_by_name",
                "unknown format 'Q9_Z'", "Q4_K");
  const std::string here = last_error();
  ASSERT_OK(lowbit_format_info_by_name("Q8_0", &info));
  EXPECT_EQ(last_error(), here);  // success keeps the message
  std::string other;
  std::thread([&] { other = lowbit_last_error(); }).join();
  EXPECT_EQ(other, "");  // a fresh thread has no error
  std::thread([&] { lowbit_set_num_threads(-2); }).join();
  EXPECT_EQ(last_error(), here);  // another thread's failure does not touch ours
}

TEST(CApiCore, ThreadsAndLogLevel) {
  EXPECT_STATUS(lowbit_set_num_threads(-1), LOWBIT_ERROR_INVALID_ARGUMENT, "thread count -1 is negative");
  ASSERT_OK(lowbit_set_num_threads(1));
  EXPECT_EQ(lowbit_get_num_threads(), 1);
  ASSERT_OK(lowbit_set_num_threads(0));
  EXPECT_STATUS(c_set_log_level(9), LOWBIT_ERROR_INVALID_ARGUMENT, "log level 9");
  EXPECT_STATUS(c_set_log_level(-3), LOWBIT_ERROR_INVALID_ARGUMENT, "log level -3");
}

struct LogCapture {
  std::vector<std::string> messages;
  std::vector<int> levels;
};

void capture(lowbit_log_level level, const char* message, size_t length, void* user) {
  auto* c = static_cast<LogCapture*>(user);
  EXPECT_EQ(std::strlen(message), length);
  c->messages.emplace_back(message, length);
  c->levels.push_back(level);
}

TEST(CApiCore, LogCallbackReceivesMessages) {
  LogCapture c;
  ASSERT_OK(lowbit_set_log_callback(capture, &c));
  ASSERT_OK(lowbit_set_log_level(LOWBIT_LOG_INFO));
  lowbit::log_message(lowbit::LogLevel::warn, "through the C sink");
  lowbit::log_message(lowbit::LogLevel::debug, "below the level");
  ASSERT_OK(lowbit_set_log_level(LOWBIT_LOG_OFF));
  ASSERT_OK(lowbit_set_log_callback(nullptr, nullptr));
  ASSERT_EQ(c.messages.size(), 1u);
  EXPECT_EQ(c.messages[0], "through the C sink");
  EXPECT_EQ(c.levels[0], LOWBIT_LOG_WARN);
}

// ------------------------------------------------------------------ formats

TEST(CApiFormats, TraitsMatchGgml) {
  // GGML's block sizes and type sizes (ggml.c type_traits), written out by hand.
  struct Expect {
    const char* name;
    lowbit_format id;
    int block, bytes;
  };
  const Expect expect[] = {{"F32", 0, 1, 4},        {"F16", 1, 1, 2},       {"Q4_0", 2, 32, 18},
                           {"Q4_1", 3, 32, 20},     {"Q5_0", 6, 32, 22},    {"Q5_1", 7, 32, 24},
                           {"Q8_0", 8, 32, 34},     {"Q8_1", 9, 32, 36},    {"Q2_K", 10, 256, 84},
                           {"Q3_K", 11, 256, 110},  {"Q4_K", 12, 256, 144}, {"Q5_K", 13, 256, 176},
                           {"Q6_K", 14, 256, 210},  {"Q8_K", 15, 256, 292}, {"IQ4_NL", 20, 32, 18},
                           {"IQ4_XS", 23, 256, 136}, {"BF16", 30, 1, 2}};
  EXPECT_EQ(lowbit_format_count(), std::size(expect));
  for (const Expect& e : expect) {
    lowbit_format_info a{}, b{};
    ASSERT_OK(lowbit_format_info_by_name(e.name, &a));
    ASSERT_OK(lowbit_format_info_by_id(e.id, &b));
    EXPECT_STREQ(a.name, e.name);
    EXPECT_STREQ(b.name, e.name);
    EXPECT_EQ(a.format, e.id);
    EXPECT_EQ(a.block_size, e.block);
    EXPECT_EQ(a.block_bytes, e.bytes);
    EXPECT_DOUBLE_EQ(a.bits_per_weight, 8.0 * e.bytes / e.block);
    EXPECT_EQ(a.quantized != 0, e.block > 1);
    EXPECT_EQ(a.activation_only != 0, e.id == 9 || e.id == 15) << e.name;
  }
  lowbit_format_info info;
  ASSERT_OK(lowbit_format_info_by_name("q4_k", &info));  // case-insensitive
  EXPECT_EQ(info.format, LOWBIT_FORMAT_Q4_K);
  for (size_t i = 0; i < lowbit_format_count(); ++i) {
    ASSERT_OK(lowbit_format_info_at(i, &info));
    EXPECT_EQ(std::string(info.name), lowbit::all_formats()[i].name);
  }
  EXPECT_STATUS(lowbit_format_info_at(lowbit_format_count(), &info), LOWBIT_ERROR_NOT_FOUND, "out of range");
  EXPECT_STATUS(lowbit_format_info_by_id(4, &info), LOWBIT_ERROR_NOT_FOUND, "unknown format id 4");
  EXPECT_STATUS(lowbit_format_info_by_name(nullptr, &info), LOWBIT_ERROR_INVALID_ARGUMENT, "name is NULL");
  EXPECT_STATUS(lowbit_format_info_by_id(8, nullptr), LOWBIT_ERROR_INVALID_ARGUMENT, "out is NULL");
}

TEST(CApiFormats, Sizes) {
  size_t n = 0;
  ASSERT_OK(lowbit_row_size(LOWBIT_FORMAT_Q4_K, 512, &n));
  EXPECT_EQ(n, 288u);
  ASSERT_OK(lowbit_quantized_size(LOWBIT_FORMAT_Q8_0, 3, 64, &n));
  EXPECT_EQ(n, 3u * 2 * 34);
  EXPECT_STATUS(lowbit_row_size(LOWBIT_FORMAT_Q4_K, 100, &n), LOWBIT_ERROR, "Q4_K", "100");
  EXPECT_STATUS(lowbit_quantized_size(LOWBIT_FORMAT_Q8_0, -1, 32, &n), LOWBIT_ERROR_INVALID_ARGUMENT, "-1 x 32");
}

// ------------------------------------------------------------------ matrices and rows

TEST(CApiQuantize, HandDerivedQ8_0Block) {
  // absmax 127 gives d = 1 (fp16 0x3C00) and codes equal to the integer inputs.
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i * 8 - 127);
  std::vector<uint8_t> q(34, 0xAA);
  ASSERT_OK(lowbit_quantize(LOWBIT_FORMAT_Q8_0, x.data(), x.size(), 1, 32, 0, nullptr, 0, q.data(), q.size()));
  EXPECT_EQ(q[0], 0x00);
  EXPECT_EQ(q[1], 0x3C);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(static_cast<int8_t>(q[2 + i]), i * 8 - 127) << i;
  std::vector<float> back(32);
  ASSERT_OK(lowbit_dequantize(LOWBIT_FORMAT_Q8_0, q.data(), q.size(), 1, 32, back.data(), back.size(), 0));
  EXPECT_EQ(back, x);
}

TEST(CApiQuantize, MatchesTheCppApiWithStridesAndImportance) {
  const int64_t rows = 5, cols = 512, stride = 520;
  const std::vector<float> w = weights(rows, cols);
  const std::vector<float> imp = lowbit::synthetic_importance(cols, 9);
  std::vector<float> strided(static_cast<size_t>(rows * stride), 1e30f);  // padding would poison a block
  for (int64_t r = 0; r < rows; ++r) std::memcpy(&strided[r * stride], &w[r * cols], cols * sizeof(float));
  for (const auto& t : lowbit::all_formats()) {
    if (cols % t.block_elems) continue;
    const auto f = static_cast<lowbit_format>(t.format);
    std::vector<std::byte> expect(lowbit::quantized_size(t.format, rows, cols));
    lowbit::quantize(t.format, ConstMatrixView<float>(w.data(), rows, cols), expect, imp);
    std::vector<std::byte> got(expect.size() + 7, std::byte{0x5A});
    ASSERT_OK(lowbit_quantize(f, strided.data(), strided.size(), rows, cols, stride, imp.data(), imp.size(),
                              got.data(), got.size()));
    EXPECT_EQ(0, std::memcmp(got.data(), expect.data(), expect.size())) << t.name;
    EXPECT_EQ(got.back(), std::byte{0x5A}) << t.name << ": wrote past the result";

    std::vector<float> back(static_cast<size_t>(rows * cols)), want(back.size());
    lowbit::dequantize(t.format, expect, MatrixView<float>(want.data(), rows, cols));
    ASSERT_OK(lowbit_dequantize(f, got.data(), got.size(), rows, cols, back.data(), back.size(), 0));
    EXPECT_EQ(0, std::memcmp(back.data(), want.data(), back.size() * sizeof(float))) << t.name;
  }
}

// Each C effort is the C++ effort of the same name; the plain call is the default.
TEST(CApiQuantize, EffortsMatchTheCppApi) {
  const int64_t rows = 3, cols = 512;
  const std::vector<float> w = weights(rows, cols);
  const std::vector<float> imp = lowbit::synthetic_importance(cols, 4);
  const std::pair<lowbit_effort, lowbit::QuantizeEffort> efforts[] = {
      {LOWBIT_EFFORT_FAST, lowbit::QuantizeEffort::fast},
      {LOWBIT_EFFORT_DEFAULT, lowbit::QuantizeEffort::standard},
      {LOWBIT_EFFORT_BEST, lowbit::QuantizeEffort::best}};
  for (lowbit::Format fmt : {lowbit::Format::Q4_0, lowbit::Format::Q5_1, lowbit::Format::Q4_K, lowbit::Format::Q3_K}) {
    const auto f = static_cast<lowbit_format>(fmt);
    std::vector<std::byte> plain(lowbit::quantized_size(fmt, rows, cols));
    ASSERT_OK(lowbit_quantize(f, w.data(), w.size(), rows, cols, 0, imp.data(), imp.size(), plain.data(), plain.size()));
    for (const auto& [ce, e] : efforts) {
      std::vector<std::byte> expect(plain.size()), got(plain.size());
      lowbit::quantize(fmt, ConstMatrixView<float>(w.data(), rows, cols), expect, imp, e);
      ASSERT_OK(lowbit_quantize_effort(f, w.data(), w.size(), rows, cols, 0, imp.data(), imp.size(), ce, got.data(),
                                       got.size()));
      EXPECT_EQ(got, expect) << lowbit::traits(fmt).name << " effort " << lowbit::to_string(e);
      if (ce == LOWBIT_EFFORT_DEFAULT) EXPECT_EQ(got, plain) << lowbit::traits(fmt).name;
    }
  }
  std::vector<std::byte> q(lowbit::quantized_size(lowbit::Format::Q4_K, rows, cols));
  EXPECT_STATUS(lowbit_quantize_effort(LOWBIT_FORMAT_Q4_K, w.data(), w.size(), rows, cols, 0, nullptr, 0,
                                       static_cast<lowbit_effort>(7), q.data(), q.size()),
                LOWBIT_ERROR_INVALID_ARGUMENT, "lowbit_quantize_effort", "unknown effort 7");
}

TEST(CApiQuantize, BadArguments) {
  const std::vector<float> w = weights(2, 256);
  std::vector<uint8_t> q(2 * 144);
  const std::vector<float> imp(100, 1.0f);
  EXPECT_STATUS(lowbit_quantize(LOWBIT_FORMAT_Q4_K, w.data(), w.size(), 2, 256, 0, nullptr, 0, q.data(), 100),
                LOWBIT_ERROR_BUFFER_TOO_SMALL, "lowbit_quantize", "dst holds 100 bytes, 288 are needed");
  EXPECT_STATUS(lowbit_quantize(LOWBIT_FORMAT_Q4_K, w.data(), 300, 2, 256, 0, nullptr, 0, q.data(), q.size()),
                LOWBIT_ERROR_BUFFER_TOO_SMALL, "src holds 300 floats, 512 are needed");
  EXPECT_STATUS(lowbit_quantize(LOWBIT_FORMAT_Q4_K, nullptr, 0, 2, 256, 0, nullptr, 0, q.data(), q.size()),
                LOWBIT_ERROR_INVALID_ARGUMENT, "src is NULL");
  EXPECT_STATUS(lowbit_quantize(LOWBIT_FORMAT_Q4_K, w.data(), w.size(), 2, 256, 0, imp.data(), imp.size(), q.data(),
                                q.size()),
                LOWBIT_ERROR_INVALID_ARGUMENT, "importance has 100 entries, expected one per column (256)");
  EXPECT_STATUS(lowbit_quantize(LOWBIT_FORMAT_Q4_K, w.data(), w.size(), 2, 256, 100, nullptr, 0, q.data(), q.size()),
                LOWBIT_ERROR_INVALID_ARGUMENT, "row stride 100 is smaller than the row length 256");
  EXPECT_STATUS(lowbit_quantize(77, w.data(), w.size(), 2, 256, 0, nullptr, 0, q.data(), q.size()),
                LOWBIT_ERROR_NOT_FOUND, "unknown format id 77");
  EXPECT_STATUS(lowbit_quantize(LOWBIT_FORMAT_Q4_K, w.data(), w.size(), 1, 96, 0, nullptr, 0, q.data(), q.size()),
                LOWBIT_ERROR, "Q4_K", "96");
  std::vector<float> bad = w;
  bad[256 + 3] = NAN;
  EXPECT_STATUS(lowbit_quantize(LOWBIT_FORMAT_Q4_K, bad.data(), bad.size(), 2, 256, 0, nullptr, 0, q.data(), q.size()),
                LOWBIT_ERROR, "[1, 3]");
  std::vector<float> out(10);
  EXPECT_STATUS(lowbit_dequantize(LOWBIT_FORMAT_Q4_K, q.data(), q.size(), 2, 256, out.data(), out.size(), 0),
                LOWBIT_ERROR_BUFFER_TOO_SMALL, "dst holds 10 floats, 512 are needed");
  EXPECT_STATUS(lowbit_dequantize(LOWBIT_FORMAT_Q4_K, q.data(), 10, 2, 256, out.data(), out.size(), 0),
                LOWBIT_ERROR_BUFFER_TOO_SMALL, "src holds 10 bytes, 288 are needed");
  // An empty matrix is fine with null buffers.
  ASSERT_OK(lowbit_quantize(LOWBIT_FORMAT_Q4_K, nullptr, 0, 0, 256, 0, nullptr, 0, nullptr, 0));
}

TEST(CApiRows, MatchTheDispatchTables) {
  const std::vector<float> w = weights(1, 512);
  const std::vector<float> imp = lowbit::synthetic_importance(512, 4);
  for (const auto& t : lowbit::all_formats()) {
    const auto f = static_cast<lowbit_format>(t.format);
    std::vector<std::byte> expect(lowbit::row_bytes(t.format, 512));
    lowbit::select_quantize_kernel(t.format).fn(w.data(), expect.data(), 512, imp.data());
    std::vector<std::byte> got(expect.size());
    ASSERT_OK(lowbit_quantize_row(f, w.data(), 512, imp.data(), imp.size(), got.data(), got.size()));
    EXPECT_EQ(got, expect) << t.name;
    std::vector<float> a(512), b(512);
    lowbit::select_dequantize_kernel(t.format).fn(expect.data(), a.data(), 512);
    ASSERT_OK(lowbit_dequantize_row(f, got.data(), got.size(), b.data(), 512));
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), 512 * sizeof(float))) << t.name;

    const char* name = nullptr;
    ASSERT_OK(lowbit_kernel_name(LOWBIT_KERNEL_DEQUANTIZE, f, &name));
    EXPECT_STREQ(name, lowbit::select_dequantize_kernel(t.format).name);
    ASSERT_OK(lowbit_kernel_name(LOWBIT_KERNEL_QUANTIZE, f, &name));
    EXPECT_STREQ(name, lowbit::select_quantize_kernel(t.format).name);
  }
  const char* name = nullptr;
  ASSERT_OK(lowbit_kernel_name(LOWBIT_KERNEL_GSQ_GEMV, 0, &name));
  EXPECT_EQ(std::string(name).rfind("gsq_gemv", 0), 0u) << name;
  std::vector<uint8_t> y(144);
  EXPECT_STATUS(lowbit_quantize_row(LOWBIT_FORMAT_Q4_K, w.data(), 200, nullptr, 0, y.data(), y.size()), LOWBIT_ERROR,
                "Q4_K", "200");
  EXPECT_STATUS(lowbit_quantize_row(LOWBIT_FORMAT_Q4_K, w.data(), 512, nullptr, 0, y.data(), y.size()),
                LOWBIT_ERROR_BUFFER_TOO_SMALL, "y holds 144 bytes, 288 are needed");
  EXPECT_STATUS(c_kernel_name(7, 0, &name), LOWBIT_ERROR_INVALID_ARGUMENT, "unknown kernel family 7");
}

// ------------------------------------------------------------------ GSQ

lowbit_gsq_config gsq_config(int bits, int group, lowbit_gsq_scheme scheme, lowbit_gsq_search search) {
  lowbit_gsq_config c;
  EXPECT_EQ(lowbit_gsq_config_init(&c), LOWBIT_OK);
  c.bits = bits;
  c.group_size = group;
  c.scheme = scheme;
  c.search = search;
  return c;
}

lowbit::GsqConfig cpp_config(const lowbit_gsq_config& c) {
  lowbit::GsqConfig g;
  g.bits = c.bits;
  g.group_size = c.group_size;
  g.scheme = static_cast<lowbit::GsqScheme>(c.scheme);
  g.search = static_cast<lowbit::ScaleSearch>(c.search);
  g.double_quant = c.double_quant != 0;
  return g;
}

// Caller buffers sized by lowbit_gsq_sizes_for.
struct GsqBuffers {
  std::vector<uint32_t> qweight;
  std::vector<float> scales, mins, scale_blocks;
  std::vector<int32_t> zeros, g_idx;
  std::vector<int8_t> scale_codes;
  lowbit_gsq_output out{};

  explicit GsqBuffers(const lowbit_gsq_sizes& s, bool with_g_idx = true)
      : qweight(s.qweight_len), scales(s.scales_len), mins(s.mins_len), scale_blocks(s.scale_blocks_len),
        zeros(s.zeros_len), g_idx(with_g_idx ? s.g_idx_len : 0), scale_codes(s.scale_codes_len) {
    out = {qweight.data(), qweight.size(), scales.data(), scales.size(), zeros.data(), zeros.size(),
           mins.data(), mins.size(), scale_codes.data(), scale_codes.size(), scale_blocks.data(),
           scale_blocks.size(), with_g_idx ? g_idx.data() : nullptr, g_idx.size()};
  }
  lowbit_gsq_matrix matrix(const lowbit_gsq_config& c, int64_t rows, int64_t cols, bool use_g_idx) const {
    return {c.bits,        c.group_size, c.scheme,     rows,          cols,         qweight.data(),
            qweight.size(), scales.data(), scales.size(), zeros.data(), zeros.size(), mins.empty() ? nullptr : mins.data(),
            mins.size(),   use_g_idx ? g_idx.data() : nullptr, use_g_idx ? g_idx.size() : 0};
  }
};

TEST(CApiGsq, DefaultsAndSizes) {
  lowbit_gsq_config c;
  ASSERT_OK(lowbit_gsq_config_init(&c));
  const lowbit::GsqConfig d;
  EXPECT_EQ(c.bits, d.bits);
  EXPECT_EQ(c.group_size, d.group_size);
  EXPECT_EQ(c.scheme, LOWBIT_GSQ_ASYMMETRIC);
  EXPECT_EQ(c.search, LOWBIT_GSQ_SEARCH_MSE);
  EXPECT_EQ(c.mse_grid, d.mse_grid);
  lowbit_gsq_sizes s;
  ASSERT_OK(lowbit_gsq_sizes_for(&c, 3, 256, &s));  // 4 bits: 8 codes per word
  EXPECT_EQ(s.groups_per_row, 2);
  EXPECT_EQ(s.words_per_row, 32);
  EXPECT_EQ(s.qweight_len, 96u);
  EXPECT_EQ(s.scales_len, 6u);
  EXPECT_EQ(s.zeros_len, 6u);
  EXPECT_EQ(s.mins_len, 0u);
  EXPECT_EQ(s.scale_codes_len, 0u);
  EXPECT_EQ(s.g_idx_len, 256u);
  c.bits = 3;  // 3 x 256 = 768 bits = 24 words
  c.scheme = LOWBIT_GSQ_ASYMMETRIC_FLOAT;
  c.double_quant = 1;
  ASSERT_OK(lowbit_gsq_sizes_for(&c, 300, 256, &s));
  EXPECT_EQ(s.words_per_row, 24);
  EXPECT_EQ(s.mins_len, 600u);
  EXPECT_EQ(s.scale_codes_len, 600u);
  EXPECT_EQ(s.scale_blocks_len, 3u);  // ceil(600 / 256)
  c.group_size = 100;
  EXPECT_STATUS(lowbit_gsq_sizes_for(&c, 3, 256, &s), LOWBIT_ERROR, "group");
  c = gsq_config(4, 128, LOWBIT_GSQ_ASYMMETRIC, LOWBIT_GSQ_SEARCH_MSE);
  c.scheme = 5;
  EXPECT_STATUS(lowbit_gsq_sizes_for(&c, 3, 256, &s), LOWBIT_ERROR_INVALID_ARGUMENT, "GSQ scheme 5");
  c.scheme = LOWBIT_GSQ_SYMMETRIC;
  c.bits = 7;
  EXPECT_STATUS(lowbit_gsq_sizes_for(&c, 3, 256, &s), LOWBIT_ERROR, "7");
}

TEST(CApiGsq, QuantizeDequantizeGemvMatchTheCppApi) {
  const int64_t rows = 7, cols = 256;
  const std::vector<float> w = weights(rows, cols, 5);
  const std::vector<float> imp = lowbit::synthetic_importance(cols, 2);
  const lowbit_gsq_config configs[] = {
      gsq_config(4, 128, LOWBIT_GSQ_ASYMMETRIC, LOWBIT_GSQ_SEARCH_MSE),
      gsq_config(3, 64, LOWBIT_GSQ_SYMMETRIC, LOWBIT_GSQ_SEARCH_IMPORTANCE),
      gsq_config(2, 0, LOWBIT_GSQ_ASYMMETRIC_FLOAT, LOWBIT_GSQ_SEARCH_RTN),
      [] {
        lowbit_gsq_config c = gsq_config(8, 32, LOWBIT_GSQ_ASYMMETRIC, LOWBIT_GSQ_SEARCH_HQQ);
        c.double_quant = 1;
        return c;
      }(),
  };
  for (const lowbit_gsq_config& c : configs) {
    const lowbit::GsqConfig cc = cpp_config(c);
    SCOPED_TRACE(cc.describe());
    const lowbit::GsqResult expect = lowbit::gsq_quantize(cc, ConstMatrixView<float>(w.data(), rows, cols), imp);
    lowbit_gsq_sizes s;
    ASSERT_OK(lowbit_gsq_sizes_for(&c, rows, cols, &s));
    GsqBuffers b(s);
    ASSERT_OK(lowbit_gsq_quantize(&c, w.data(), w.size(), rows, cols, 0, imp.data(), imp.size(), &b.out));
    EXPECT_EQ(b.qweight, expect.qweight);
    EXPECT_EQ(b.scales, expect.scales);
    EXPECT_EQ(b.zeros, expect.zeros);
    EXPECT_EQ(b.mins, expect.mins);
    EXPECT_EQ(b.scale_codes, expect.scale_codes);
    EXPECT_EQ(b.scale_blocks, expect.scale_blocks);
    for (int64_t k = 0; k < cols; ++k) ASSERT_EQ(b.g_idx[k], k / cc.resolved_group(cols));

    std::vector<float> want(static_cast<size_t>(rows * cols)), got(want.size());
    lowbit::gsq_dequantize(expect, MatrixView<float>(want.data(), rows, cols));
    const lowbit_gsq_matrix m = b.matrix(c, rows, cols, false);
    ASSERT_OK(lowbit_gsq_dequantize(&m, got.data(), got.size()));
    EXPECT_EQ(got, want);

    // GEMV against float64 on the decoded matrix (the family's tolerance, docs/kernels.md).
    const std::vector<float> x = lowbit::synthetic_weights(1, cols, 8);
    std::vector<float> y(static_cast<size_t>(rows));
    ASSERT_OK(lowbit_gsq_gemv(&m, x.data(), x.size(), y.data(), y.size()));
    for (int64_t r = 0; r < rows; ++r) {
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < cols; ++k) {
        ref += double(want[r * cols + k]) * x[k];
        mag += std::fabs(double(want[r * cols + k]) * x[k]);
      }
      EXPECT_NEAR(y[r], ref, 1e-5 * mag + 1e-30) << "row " << r;
    }
  }
}

TEST(CApiGsq, BadArguments) {
  const int64_t rows = 2, cols = 128;
  const std::vector<float> w = weights(rows, cols);
  lowbit_gsq_config c = gsq_config(4, 128, LOWBIT_GSQ_ASYMMETRIC, LOWBIT_GSQ_SEARCH_RTN);
  lowbit_gsq_sizes s;
  ASSERT_OK(lowbit_gsq_sizes_for(&c, rows, cols, &s));
  GsqBuffers b(s);
  lowbit_gsq_output small = b.out;
  small.qweight_len = 3;
  b.qweight.assign(b.qweight.size(), 0xDEADBEEF);
  EXPECT_STATUS(lowbit_gsq_quantize(&c, w.data(), w.size(), rows, cols, 0, nullptr, 0, &small),
                LOWBIT_ERROR_BUFFER_TOO_SMALL, "out->qweight holds 3 elements, 32 are needed");
  EXPECT_EQ(b.qweight[0], 0xDEADBEEF);  // nothing written
  c.search = LOWBIT_GSQ_SEARCH_IMPORTANCE;
  EXPECT_STATUS(lowbit_gsq_quantize(&c, w.data(), w.size(), rows, cols, 0, nullptr, 0, &b.out), LOWBIT_ERROR,
                "importance");
  c.search = LOWBIT_GSQ_SEARCH_RTN;
  ASSERT_OK(lowbit_gsq_quantize(&c, w.data(), w.size(), rows, cols, 0, nullptr, 0, &b.out));
  std::vector<int32_t> g_idx(cols, 0);
  g_idx[9] = 1;  // only one group per row
  lowbit_gsq_matrix m = b.matrix(c, rows, cols, false);
  m.g_idx = g_idx.data();
  m.g_idx_len = g_idx.size();
  std::vector<float> x(cols, 1.0f), y(rows);
  EXPECT_STATUS(lowbit_gsq_gemv(&m, x.data(), x.size(), y.data(), y.size()), LOWBIT_ERROR_INVALID_ARGUMENT,
                "matrix->g_idx[9] = 1 is not a group in [0, 1)");
  m = b.matrix(c, rows, cols, false);
  EXPECT_STATUS(lowbit_gsq_gemv(&m, x.data(), 5, y.data(), y.size()), LOWBIT_ERROR_INVALID_ARGUMENT,
                "x has 5 entries, the matrix 128 columns");
  m.scales_len = 1;
  EXPECT_STATUS(lowbit_gsq_gemv(&m, x.data(), x.size(), y.data(), y.size()), LOWBIT_ERROR_BUFFER_TOO_SMALL,
                "matrix->scales");
  EXPECT_STATUS(lowbit_gsq_quantize(nullptr, w.data(), w.size(), rows, cols, 0, nullptr, 0, &b.out),
                LOWBIT_ERROR_INVALID_ARGUMENT, "config is NULL");
}

// ------------------------------------------------------------------ Hessian, GPTQ

std::vector<float> activations(int64_t tokens, int64_t cols, uint64_t seed) {
  std::vector<float> x = lowbit::synthetic_weights(tokens, cols, seed, lowbit::Distribution::gaussian);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < cols; c += 7) x[t * cols + c] *= 4.0f;  // a few louder channels
  return x;
}

TEST(CApiHessian, MatchesTheAccumulator) {
  const int64_t cols = 64, tokens = 40;
  const std::vector<float> x = activations(tokens, cols, 1);
  lowbit::HessianAccumulator expect(cols);
  expect.add(ConstMatrixView<float>(x.data(), tokens, cols));
  lowbit_hessian* h = nullptr;
  ASSERT_OK(lowbit_hessian_create(cols, &h));
  ASSERT_OK(lowbit_hessian_add(h, x.data(), x.size(), tokens, 0));
  int64_t n = 0;
  ASSERT_OK(lowbit_hessian_cols(h, &n));
  EXPECT_EQ(n, cols);
  ASSERT_OK(lowbit_hessian_tokens(h, &n));
  EXPECT_EQ(n, tokens);
  std::vector<float> m(cols * cols), imp(cols);
  ASSERT_OK(lowbit_hessian_matrix(h, m.data(), m.size()));
  EXPECT_EQ(m, expect.matrix());
  ASSERT_OK(lowbit_hessian_importance(h, imp.data(), imp.size()));
  EXPECT_EQ(imp, expect.importance());
  // H = 2/N X^T X, by hand in double for one entry.
  double h01 = 0;
  for (int64_t t = 0; t < tokens; ++t) h01 += double(x[t * cols]) * x[t * cols + 1];
  EXPECT_NEAR(m[1], 2.0 * h01 / tokens, 1e-4 * std::fabs(2.0 * h01 / tokens) + 1e-6);

  // fp16 activations: the same values (exactly representable) give the same matrix.
  std::vector<uint16_t> half(x.size());
  std::vector<float> rounded(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    half[i] = lowbit::fp32_to_fp16(x[i]);
    rounded[i] = lowbit::fp16_to_fp32(half[i]);
  }
  lowbit_hessian *a = nullptr, *b = nullptr;
  ASSERT_OK(lowbit_hessian_create(cols, &a));
  ASSERT_OK(lowbit_hessian_create(cols, &b));
  ASSERT_OK(lowbit_hessian_add_f16(a, half.data(), half.size(), tokens, 0));
  ASSERT_OK(lowbit_hessian_add(b, rounded.data(), rounded.size(), tokens, 0));
  std::vector<float> ma(cols * cols), mb(cols * cols);
  ASSERT_OK(lowbit_hessian_matrix(a, ma.data(), ma.size()));
  ASSERT_OK(lowbit_hessian_matrix(b, mb.data(), mb.size()));
  EXPECT_EQ(ma, mb);
  ASSERT_OK(lowbit_hessian_merge(a, b));
  ASSERT_OK(lowbit_hessian_tokens(a, &n));
  EXPECT_EQ(n, 2 * tokens);
  EXPECT_STATUS(lowbit_hessian_merge(a, a), LOWBIT_ERROR_INVALID_ARGUMENT, "itself");

  // Save and load.
  const fs::path dir = temp_dir("hessian");
  const std::string path = (dir / "h.hess").string();
  ASSERT_OK(lowbit_hessian_save(h, path.c_str()));
  lowbit_hessian* loaded = nullptr;
  ASSERT_OK(lowbit_hessian_load(path.c_str(), &loaded));
  ASSERT_OK(lowbit_hessian_matrix(loaded, ma.data(), ma.size()));
  EXPECT_EQ(ma, m);
  lowbit_hessian_destroy(loaded);
  EXPECT_STATUS(lowbit_hessian_load((dir / "missing.hess").string().c_str(), &loaded), LOWBIT_ERROR, "missing.hess");
  EXPECT_EQ(loaded, nullptr);

  // Bad input.
  std::vector<float> bad = x;
  bad[5 * cols + 2] = INFINITY;
  EXPECT_STATUS(lowbit_hessian_add(h, bad.data(), bad.size(), tokens, 0), LOWBIT_ERROR, "activation [5, 2] is inf");
  EXPECT_STATUS(lowbit_hessian_add(h, x.data(), 10, tokens, 0), LOWBIT_ERROR_BUFFER_TOO_SMALL, "x holds 10 floats");
  EXPECT_STATUS(lowbit_hessian_matrix(h, m.data(), 5), LOWBIT_ERROR_BUFFER_TOO_SMALL, "4096");
  EXPECT_STATUS(lowbit_hessian_create(0, &loaded), LOWBIT_ERROR_INVALID_ARGUMENT, "must be positive");
  lowbit_hessian_destroy(h);
  lowbit_hessian_destroy(a);
  lowbit_hessian_destroy(b);
  lowbit_hessian_destroy(nullptr);  // allowed
  fs::remove_all(dir);
}

TEST(CApiGptq, GgmlAndGsqTargetsMatchTheCppSolver) {
  const int64_t rows = 16, cols = 256, tokens = 300;
  const std::vector<float> w = weights(rows, cols, 11);
  const std::vector<float> x = activations(tokens, cols, 12);
  lowbit::HessianAccumulator acc(cols);
  acc.add(ConstMatrixView<float>(x.data(), tokens, cols));
  lowbit_hessian* h = nullptr;
  ASSERT_OK(lowbit_hessian_create(cols, &h));
  ASSERT_OK(lowbit_hessian_add(h, x.data(), x.size(), tokens, 0));

  // Into Q4_K with the default importance (diag(H) / 2).
  lowbit::GgmlTarget gt(Format::Q4_K, acc.importance());
  const lowbit::GptqReport rep = lowbit::gptq_solve(lowbit::GptqConfig{}, ConstMatrixView<float>(w.data(), rows, cols),
                                                    acc, gt);
  const std::vector<std::byte> expect = gt.result();
  std::vector<std::byte> got(expect.size());
  lowbit_gptq_report report{};
  ASSERT_OK(lowbit_gptq_quantize_ggml(nullptr, h, LOWBIT_FORMAT_Q4_K, w.data(), w.size(), rows, cols, 0, nullptr, 0,
                                      got.data(), got.size(), &report));
  EXPECT_EQ(got, expect);
  EXPECT_DOUBLE_EQ(report.damp_percent_used, rep.damp_percent_used);
  EXPECT_EQ(report.dead_columns, 0);

  // Into GSQ with act-order: g_idx is required and returned.
  lowbit_gptq_config g;
  ASSERT_OK(lowbit_gptq_config_init(&g));
  g.act_order = 1;
  const lowbit_gsq_config c = gsq_config(4, 64, LOWBIT_GSQ_ASYMMETRIC, LOWBIT_GSQ_SEARCH_RTN);
  lowbit::GptqConfig gc;
  gc.act_order = true;
  lowbit::GsqTarget st(cpp_config(c), acc.importance());
  lowbit::gptq_solve(gc, ConstMatrixView<float>(w.data(), rows, cols), acc, st);
  const lowbit::GsqResult q = st.result();
  lowbit_gsq_sizes s;
  ASSERT_OK(lowbit_gsq_sizes_for(&c, rows, cols, &s));
  GsqBuffers none(s, false);
  EXPECT_STATUS(lowbit_gptq_quantize_gsq(&g, h, &c, w.data(), w.size(), rows, cols, 0, nullptr, 0, &none.out, nullptr),
                LOWBIT_ERROR_INVALID_ARGUMENT, "out->g_idx is NULL");
  GsqBuffers b(s);
  ASSERT_OK(lowbit_gptq_quantize_gsq(&g, h, &c, w.data(), w.size(), rows, cols, 0, nullptr, 0, &b.out, nullptr));
  EXPECT_EQ(b.qweight, q.qweight);
  EXPECT_EQ(b.scales, q.scales);
  EXPECT_EQ(b.zeros, q.zeros);
  ASSERT_EQ(q.g_idx.size(), static_cast<size_t>(cols));
  EXPECT_EQ(b.g_idx, q.g_idx);
  // The decoded matrix through the C API equals the C++ decode (g_idx honoured).
  std::vector<float> want(static_cast<size_t>(rows * cols)), dec(want.size());
  lowbit::gsq_dequantize(q, MatrixView<float>(want.data(), rows, cols));
  const lowbit_gsq_matrix m = b.matrix(c, rows, cols, true);
  ASSERT_OK(lowbit_gsq_dequantize(&m, dec.data(), dec.size()));
  EXPECT_EQ(dec, want);

  // Bad input.
  std::vector<float> narrow = weights(rows, 128);
  EXPECT_STATUS(lowbit_gptq_quantize_ggml(nullptr, h, LOWBIT_FORMAT_Q8_0, narrow.data(), narrow.size(), rows, 128, 0,
                                          nullptr, 0, got.data(), got.size(), nullptr),
                LOWBIT_ERROR_INVALID_ARGUMENT, "the Hessian has 256 columns, w has 128");
  EXPECT_STATUS(lowbit_gptq_quantize_ggml(&g, h, LOWBIT_FORMAT_Q4_K, w.data(), w.size(), rows, cols, 0, nullptr, 0,
                                          got.data(), got.size(), nullptr),
                LOWBIT_ERROR, "static");  // act-order into GGML blocks needs static groups
  EXPECT_STATUS(lowbit_gptq_quantize_ggml(nullptr, h, LOWBIT_FORMAT_Q4_K, w.data(), w.size(), rows, cols, 0, nullptr,
                                          0, got.data(), 10, nullptr),
                LOWBIT_ERROR_BUFFER_TOO_SMALL, "dst holds 10 bytes");
  lowbit_hessian_destroy(h);
}

// ------------------------------------------------------------------ GGUF

TEST(CApiGguf, WriteThenReadEveryScalarTypeStringsArraysAndTensors) {
  const fs::path dir = temp_dir("gguf");
  const std::string path = (dir / "t.gguf").string();
  lowbit_gguf_writer* w = nullptr;
  ASSERT_OK(lowbit_gguf_writer_create(&w));
  ASSERT_OK(lowbit_gguf_writer_set_int(w, "u8", LOWBIT_GGUF_UINT8, 255));
  ASSERT_OK(lowbit_gguf_writer_set_int(w, "i8", LOWBIT_GGUF_INT8, -128));
  ASSERT_OK(lowbit_gguf_writer_set_int(w, "u16", LOWBIT_GGUF_UINT16, 65535));
  ASSERT_OK(lowbit_gguf_writer_set_int(w, "i16", LOWBIT_GGUF_INT16, -32768));
  ASSERT_OK(lowbit_gguf_writer_set_int(w, "u32", LOWBIT_GGUF_UINT32, 4000000000));
  ASSERT_OK(lowbit_gguf_writer_set_int(w, "i32", LOWBIT_GGUF_INT32, -2000000000));
  ASSERT_OK(lowbit_gguf_writer_set_int(w, "i64", LOWBIT_GGUF_INT64, INT64_MIN));
  ASSERT_OK(lowbit_gguf_writer_set_uint64(w, "u64", UINT64_MAX));
  ASSERT_OK(lowbit_gguf_writer_set_float(w, "f32", LOWBIT_GGUF_FLOAT32, 0.1));
  ASSERT_OK(lowbit_gguf_writer_set_float(w, "f64", LOWBIT_GGUF_FLOAT64, 0.1));
  ASSERT_OK(lowbit_gguf_writer_set_bool(w, "yes", 1));
  ASSERT_OK(lowbit_gguf_writer_set_string(w, "name", "lowbit\xC3\xA9", 8));
  const char* tokens[] = {"<s>", "", "hello"};
  ASSERT_OK(lowbit_gguf_writer_set_string_array(w, "tokens", tokens, 3));
  const int32_t ints[] = {3, -1, 7};
  ASSERT_OK(lowbit_gguf_writer_set_array(w, "ints", LOWBIT_GGUF_INT32, ints, sizeof ints, 3));
  const float floats[] = {0.5f, -2.0f};
  ASSERT_OK(lowbit_gguf_writer_set_array(w, "floats", LOWBIT_GGUF_FLOAT32, floats, sizeof floats, 2));
  ASSERT_OK(lowbit_gguf_writer_set_int(w, "gone", LOWBIT_GGUF_UINT8, 1));
  ASSERT_OK(lowbit_gguf_writer_remove(w, "gone"));

  EXPECT_STATUS(lowbit_gguf_writer_set_int(w, "x", LOWBIT_GGUF_UINT8, 256), LOWBIT_ERROR_INVALID_ARGUMENT,
                "'x': value 256 does not fit a uint8");
  EXPECT_STATUS(lowbit_gguf_writer_set_int(w, "x", LOWBIT_GGUF_STRING, 1), LOWBIT_ERROR_INVALID_ARGUMENT,
                "not an integer type");
  EXPECT_STATUS(c_writer_set_int(w, "x", 1000, 1), LOWBIT_ERROR_INVALID_ARGUMENT, "type 1000 is not an integer type");
  EXPECT_STATUS(lowbit_gguf_writer_set_array(w, "x", LOWBIT_GGUF_INT32, ints, 4, 3), LOWBIT_ERROR_BUFFER_TOO_SMALL,
                "data holds 4 bytes, 12 are needed");
  EXPECT_STATUS(lowbit_gguf_writer_remove(w, "gone"), LOWBIT_ERROR_NOT_FOUND, "'gone'");
  EXPECT_STATUS(lowbit_gguf_writer_set_bool(w, "", 1), LOWBIT_ERROR_INVALID_ARGUMENT, "key is empty");

  const std::vector<float> f32 = weights(3, 64, 2);
  const int64_t f32_dims[] = {64, 3};
  ASSERT_OK(lowbit_gguf_writer_add_tensor(w, "a.weight", LOWBIT_FORMAT_F32, f32_dims, 2, f32.data(),
                                          f32.size() * sizeof(float)));
  std::vector<uint8_t> q8(2 * 34 * 2);
  ASSERT_OK(lowbit_quantize(LOWBIT_FORMAT_Q8_0, f32.data(), f32.size(), 2, 64, 0, nullptr, 0, q8.data(), q8.size()));
  const int64_t q8_dims[] = {64, 2};
  ASSERT_OK(lowbit_gguf_writer_add_tensor_borrowed(w, "b.weight", LOWBIT_FORMAT_Q8_0, q8_dims, 2, q8.data(),
                                                   q8.size()));
  EXPECT_STATUS(lowbit_gguf_writer_add_tensor(w, "c", LOWBIT_FORMAT_Q8_0, q8_dims, 2, q8.data(), 10), LOWBIT_ERROR,
                "'c'");
  EXPECT_STATUS(lowbit_gguf_writer_add_tensor(w, "d", LOWBIT_FORMAT_F32, q8_dims, 5, q8.data(), 10),
                LOWBIT_ERROR_INVALID_ARGUMENT, "n_dims 5");
  ASSERT_OK(lowbit_gguf_writer_write(w, path.c_str()));
  lowbit_gguf_writer_destroy(w);

  lowbit_gguf* g = nullptr;
  ASSERT_OK(lowbit_gguf_open(path.c_str(), &g));
  uint32_t version = 0;
  ASSERT_OK(lowbit_gguf_version(g, &version));
  EXPECT_EQ(version, 3u);
  size_t n = 0;
  ASSERT_OK(lowbit_gguf_metadata_count(g, &n));
  const char* keys[] = {"u8", "i8", "u16", "i16", "u32", "i32", "i64", "u64",
                        "f32", "f64", "yes", "name", "tokens", "ints", "floats"};
  ASSERT_EQ(n, std::size(keys));
  const lowbit_gguf_type types[] = {LOWBIT_GGUF_UINT8,   LOWBIT_GGUF_INT8,    LOWBIT_GGUF_UINT16, LOWBIT_GGUF_INT16,
                                    LOWBIT_GGUF_UINT32,  LOWBIT_GGUF_INT32,   LOWBIT_GGUF_INT64,  LOWBIT_GGUF_UINT64,
                                    LOWBIT_GGUF_FLOAT32, LOWBIT_GGUF_FLOAT64, LOWBIT_GGUF_BOOL,   LOWBIT_GGUF_STRING,
                                    LOWBIT_GGUF_ARRAY,   LOWBIT_GGUF_ARRAY,   LOWBIT_GGUF_ARRAY};
  for (size_t i = 0; i < n; ++i) {
    const char* key = nullptr;
    lowbit_gguf_type type;
    ASSERT_OK(lowbit_gguf_metadata_key(g, i, &key, &type));
    EXPECT_STREQ(key, keys[i]);
    EXPECT_EQ(type, types[i]) << key;
    size_t found = 99;
    ASSERT_OK(lowbit_gguf_find_key(g, keys[i], &found));
    EXPECT_EQ(found, i);
  }
  const int64_t ints_expected[] = {255, -128, 65535, -32768, 4000000000, -2000000000, INT64_MIN};
  for (size_t i = 0; i < std::size(ints_expected); ++i) {
    int64_t v = 0;
    ASSERT_OK(lowbit_gguf_get_int(g, i, &v));
    EXPECT_EQ(v, ints_expected[i]) << keys[i];
  }
  int64_t v = 0;
  uint64_t u = 0;
  EXPECT_STATUS(lowbit_gguf_get_int(g, 7, &v), LOWBIT_ERROR_TYPE_MISMATCH, "'u64'", "lowbit_gguf_get_uint");
  ASSERT_OK(lowbit_gguf_get_uint(g, 7, &u));
  EXPECT_EQ(u, UINT64_MAX);
  EXPECT_STATUS(lowbit_gguf_get_uint(g, 1, &u), LOWBIT_ERROR_TYPE_MISMATCH, "'i8' = -128 is negative");
  double d = 0;
  ASSERT_OK(lowbit_gguf_get_float(g, 8, &d));
  EXPECT_EQ(d, static_cast<double>(0.1f));
  ASSERT_OK(lowbit_gguf_get_float(g, 9, &d));
  EXPECT_EQ(d, 0.1);
  int b = 0;
  ASSERT_OK(lowbit_gguf_get_bool(g, 10, &b));
  EXPECT_EQ(b, 1);
  const char* s = nullptr;
  size_t len = 0;
  ASSERT_OK(lowbit_gguf_get_string(g, 11, &s, &len));
  EXPECT_EQ(std::string(s, len), "lowbit\xC3\xA9");
  EXPECT_STATUS(lowbit_gguf_get_int(g, 11, &v), LOWBIT_ERROR_TYPE_MISMATCH, "'name' is a string, not an integer");
  EXPECT_STATUS(lowbit_gguf_get_float(g, 0, &d), LOWBIT_ERROR_TYPE_MISMATCH, "'u8' is a uint8");
  EXPECT_STATUS(lowbit_gguf_get_string(g, 0, &s, &len), LOWBIT_ERROR_TYPE_MISMATCH, "not a string");
  lowbit_gguf_type et;
  ASSERT_OK(lowbit_gguf_get_array_info(g, 12, &et, &len));
  EXPECT_EQ(et, LOWBIT_GGUF_STRING);
  EXPECT_EQ(len, 3u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_OK(lowbit_gguf_get_array_string(g, 12, i, &s, &len));
    EXPECT_EQ(std::string(s, len), tokens[i]);
  }
  EXPECT_STATUS(lowbit_gguf_get_array_string(g, 12, 3, &s, &len), LOWBIT_ERROR_NOT_FOUND, "item 3 is out of range");
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_OK(lowbit_gguf_get_array_int(g, 13, i, &v));
    EXPECT_EQ(v, ints[i]);
  }
  ASSERT_OK(lowbit_gguf_get_array_float(g, 14, 1, &d));
  EXPECT_EQ(d, -2.0);
  EXPECT_STATUS(lowbit_gguf_get_array_float(g, 13, 0, &d), LOWBIT_ERROR_TYPE_MISMATCH, "'ints'[0] is a int32");
  EXPECT_STATUS(lowbit_gguf_get_array_info(g, 0, &et, &len), LOWBIT_ERROR_TYPE_MISMATCH, "not an array");
  EXPECT_STATUS(lowbit_gguf_find_key(g, "nope", &len), LOWBIT_ERROR_NOT_FOUND, "no metadata key 'nope'", "t.gguf");
  EXPECT_STATUS(lowbit_gguf_get_int(g, 99, &v), LOWBIT_ERROR_NOT_FOUND, "metadata index 99 is out of range");

  ASSERT_OK(lowbit_gguf_tensor_count(g, &n));
  ASSERT_EQ(n, 2u);
  lowbit_gguf_tensor_info ti;
  ASSERT_OK(lowbit_gguf_get_tensor_info(g, 0, &ti));
  EXPECT_STREQ(ti.name, "a.weight");
  EXPECT_EQ(ti.type, LOWBIT_FORMAT_F32);
  EXPECT_EQ(ti.n_dims, 2);
  EXPECT_EQ(ti.dims[0], 64);
  EXPECT_EQ(ti.dims[1], 3);
  EXPECT_EQ(ti.dims[2], 1);
  EXPECT_EQ(ti.size, f32.size() * sizeof(float));
  EXPECT_EQ(ti.file_offset % 32, 0u);  // the default alignment
  const void* data = nullptr;
  size_t size = 0;
  ASSERT_OK(lowbit_gguf_tensor_data(g, 0, &data, &size));
  ASSERT_EQ(size, ti.size);
  EXPECT_EQ(0, std::memcmp(data, f32.data(), size));
  // The pointer is into the mapped file at the tensor's offset.
  std::ifstream raw(path, std::ios::binary);
  raw.seekg(static_cast<std::streamoff>(ti.file_offset));
  std::vector<char> from_disk(size);
  raw.read(from_disk.data(), static_cast<std::streamsize>(size));
  EXPECT_EQ(0, std::memcmp(from_disk.data(), data, size));
  size_t index = 0;
  ASSERT_OK(lowbit_gguf_find_tensor(g, "b.weight", &index));
  EXPECT_EQ(index, 1u);
  ASSERT_OK(lowbit_gguf_get_tensor_info(g, 1, &ti));
  EXPECT_EQ(ti.type, LOWBIT_FORMAT_Q8_0);
  ASSERT_OK(lowbit_gguf_tensor_data(g, 1, &data, &size));
  ASSERT_EQ(size, q8.size());
  EXPECT_EQ(0, std::memcmp(data, q8.data(), size));
  std::vector<float> dec(128), want(128);
  ASSERT_OK(lowbit_gguf_tensor_to_f32(g, 1, dec.data(), dec.size()));
  ASSERT_OK(lowbit_dequantize(LOWBIT_FORMAT_Q8_0, q8.data(), q8.size(), 2, 64, want.data(), want.size(), 0));
  EXPECT_EQ(dec, want);
  EXPECT_STATUS(lowbit_gguf_tensor_to_f32(g, 1, dec.data(), 5), LOWBIT_ERROR_BUFFER_TOO_SMALL, "out holds 5 floats");
  EXPECT_STATUS(lowbit_gguf_find_tensor(g, "zz", &index), LOWBIT_ERROR_NOT_FOUND, "no tensor 'zz'");
  EXPECT_STATUS(lowbit_gguf_get_tensor_info(g, 2, &ti), LOWBIT_ERROR_NOT_FOUND, "tensor index 2 is out of range");

  // copy_metadata into a new writer reproduces every key.
  ASSERT_OK(lowbit_gguf_writer_create(&w));
  ASSERT_OK(lowbit_gguf_writer_copy_metadata(w, g));
  const std::string copy = (dir / "copy.gguf").string();
  ASSERT_OK(lowbit_gguf_writer_write(w, copy.c_str()));
  lowbit_gguf_writer_destroy(w);
  const lowbit::GgufFile a = lowbit::GgufFile::open(path), c = lowbit::GgufFile::open(copy);
  ASSERT_EQ(a.metadata().size(), c.metadata().size());
  for (size_t i = 0; i < a.metadata().size(); ++i) {
    EXPECT_EQ(a.metadata()[i].key, c.metadata()[i].key);
    EXPECT_TRUE(a.metadata()[i].value == c.metadata()[i].value) << a.metadata()[i].key;
  }
  lowbit_gguf_close(g);
  lowbit_gguf_close(nullptr);

  // A file that is not GGUF names the file; nothing is returned.
  const std::string junk = (dir / "junk.gguf").string();
  std::ofstream(junk) << "not a gguf file at all";
  g = reinterpret_cast<lowbit_gguf*>(&len);
  EXPECT_STATUS(lowbit_gguf_open(junk.c_str(), &g), LOWBIT_ERROR, "junk.gguf");
  EXPECT_EQ(g, nullptr);
  fs::remove_all(dir);
}

// ------------------------------------------------------------------ whole models

// A two-layer llama-shaped model: F16 token embedding, F32 norms, F32 linear weights.
void write_tiny_model(const std::string& path) {
  lowbit::GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("llama.block_count", uint32_t{2});
  w.set("llama.embedding_length", uint32_t{256});
  w.set("llama.attention.head_count", uint32_t{4});
  w.set("llama.attention.head_count_kv", uint32_t{4});
  w.set("llama.feed_forward_length", uint32_t{512});
  auto f32 = [](const std::vector<float>& v) {
    std::vector<std::byte> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  uint64_t seed = 1;
  w.add_tensor("token_embd.weight", {256, 32}, Format::F32, f32(weights(32, 256, seed++)));
  for (int l = 0; l < 2; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    w.add_tensor(p + "attn_norm.weight", {256}, Format::F32, f32(std::vector<float>(256, 1.0f)));
    for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"})
      w.add_tensor(p + n + ".weight", {256, 256}, Format::F32, f32(weights(256, 256, seed++)));
    w.add_tensor(p + "ffn_gate.weight", {256, 512}, Format::F32, f32(weights(512, 256, seed++)));
    w.add_tensor(p + "ffn_up.weight", {256, 512}, Format::F32, f32(weights(512, 256, seed++)));
    w.add_tensor(p + "ffn_down.weight", {512, 256}, Format::F32, f32(weights(256, 512, seed++)));
  }
  w.add_tensor("output_norm.weight", {256}, Format::F32, f32(std::vector<float>(256, 1.0f)));
  w.add_tensor("output.weight", {256, 32}, Format::F32, f32(weights(32, 256, seed++)));
  w.write(path);
}

struct Progress {
  std::vector<int64_t> done;
  int64_t total = 0;
  int cancel_after = -1;  // calls before asking to stop; -1 never
};

int on_progress(int64_t done, int64_t total, void* user) {
  auto* p = static_cast<Progress*>(user);
  p->done.push_back(done);
  p->total = total;
  return p->cancel_after >= 0 && static_cast<int>(p->done.size()) > p->cancel_after ? 1 : 0;
}

class CApiModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir("model");
    in_ = (dir_ / "tiny-f32.gguf").string();
    write_tiny_model(in_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::string in_;
};

TEST_F(CApiModel, QuantizesWithProgressAndSummary) {
  const std::string out = (dir_ / "tiny-q8.gguf").string();
  Progress p;
  lowbit_model_summary s{};
  ASSERT_OK(lowbit_quantize_model(in_.c_str(), out.c_str(), "Q8_0", nullptr, "rtn", nullptr, 1, on_progress, &p, &s));
  // 16 linear weights plus token_embd and output: everything 2-D converts.
  const int64_t linear = 2 * (4 * 256 * 256 + 3 * 256 * 512), work = linear + 2 * 32 * 256;
  ASSERT_FALSE(p.done.empty());
  EXPECT_EQ(p.total, work);
  EXPECT_EQ(p.done.back(), work);
  EXPECT_TRUE(std::is_sorted(p.done.begin(), p.done.end()));
  EXPECT_EQ(s.tensors, 2 * 8 + 3);
  EXPECT_EQ(s.converted, 2 * 7 + 2);
  EXPECT_EQ(s.elements, work + 3 * 256);
  EXPECT_EQ(s.bytes_out, static_cast<uint64_t>(work / 32 * 34 + 3 * 256 * 4));
  const lowbit::GgufFile f = lowbit::GgufFile::open(out);
  EXPECT_EQ(f.tensor("blk.1.ffn_down.weight").format, Format::Q8_0);
  EXPECT_EQ(f.tensor("blk.0.attn_norm.weight").format, Format::F32);
  EXPECT_EQ(f.at("general.file_type").as_int(), 7);  // LLAMA_FTYPE_MOSTLY_Q8_0
  // The bytes are lowbit_quantize's.
  const lowbit::GgufFile in = lowbit::GgufFile::open(in_);
  const auto& t = in.tensor("blk.0.attn_q.weight");
  std::vector<uint8_t> q(lowbit::quantized_size(Format::Q8_0, 256, 256));
  ASSERT_OK(lowbit_quantize(LOWBIT_FORMAT_Q8_0, reinterpret_cast<const float*>(in.data(t).data()), 256 * 256, 256, 256,
                            0, nullptr, 0, q.data(), q.size()));
  const auto got = f.data(f.tensor("blk.0.attn_q.weight"));
  ASSERT_EQ(got.size(), q.size());
  EXPECT_EQ(0, std::memcmp(got.data(), q.data(), q.size()));
  // No progress callback and no summary are fine too.
  ASSERT_OK(lowbit_quantize_model(in_.c_str(), out.c_str(), "Q4_K_M", nullptr, nullptr, nullptr, 0, nullptr, nullptr,
                                  nullptr));
}

TEST_F(CApiModel, CancellationLeavesNoOutputFile) {
  const std::string out = (dir_ / "cancelled.gguf").string();
  Progress p;
  p.cancel_after = 1;
  EXPECT_STATUS(lowbit_quantize_model(in_.c_str(), out.c_str(), "Q4_K_M", nullptr, nullptr, nullptr, 0, on_progress,
                                      &p, nullptr),
                LOWBIT_ERROR_CANCELLED, "cancelled");
  EXPECT_EQ(p.done.size(), 2u);  // stopped right after the callback asked
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(dir_))  // no temporary left either
    EXPECT_EQ(e.path().filename().string().find("cancelled"), std::string::npos) << e.path();
  // An existing file at the output path is left as it was.
  std::ofstream(out) << "keep me";
  p = Progress{};
  p.cancel_after = 0;
  EXPECT_EQ(lowbit_quantize_model(in_.c_str(), out.c_str(), "Q8_0", nullptr, nullptr, nullptr, 0, on_progress, &p,
                                  nullptr),
            LOWBIT_ERROR_CANCELLED);
  std::ifstream kept(out);
  std::string text;
  std::getline(kept, text);
  EXPECT_EQ(text, "keep me");
}

TEST_F(CApiModel, CppPipelineCancellation) {
  // The mechanism the C API uses: QuantizeModelOptions::cancelled, polled per tensor and per progress step.
  lowbit::QuantizeModelOptions o;
  o.scheme = *lowbit::quant_scheme_from_name("Q8_0");
  int polls = 0;
  o.cancelled = [&] { return ++polls > 3; };
  const std::string out = (dir_ / "cpp.gguf").string();
  EXPECT_THROW(lowbit::quantize_model(fs::path(in_), fs::path(out), o), lowbit::QuantizeCancelled);
  EXPECT_EQ(polls, 4);
  EXPECT_FALSE(fs::exists(out));
  o.cancelled = [] { return false; };
  lowbit::quantize_model(fs::path(in_), fs::path(out), o);
  EXPECT_TRUE(fs::exists(out));
}

TEST_F(CApiModel, BadArguments) {
  const std::string out = (dir_ / "x.gguf").string();
  EXPECT_STATUS(lowbit_quantize_model(in_.c_str(), out.c_str(), "Q4_Z", nullptr, nullptr, nullptr, 0, nullptr, nullptr,
                                      nullptr),
                LOWBIT_ERROR_NOT_FOUND, "unknown type 'Q4_Z'", "Q4_K_M");
  EXPECT_STATUS(lowbit_quantize_model(in_.c_str(), out.c_str(), "Q8_0", nullptr, "best", nullptr, 0, nullptr, nullptr,
                                      nullptr),
                LOWBIT_ERROR_NOT_FOUND, "unknown method 'best'");
  EXPECT_STATUS(lowbit_quantize_model(in_.c_str(), out.c_str(), "Q8_0", nullptr, "gptq", nullptr, 0, nullptr, nullptr,
                                      nullptr),
                LOWBIT_ERROR_INVALID_ARGUMENT, "hessian_dir");
  EXPECT_STATUS(lowbit_quantize_model(in_.c_str(), (dir_ / "no" / "x.gguf").string().c_str(), "Q8_0", nullptr,
                                      nullptr, nullptr, 0, nullptr, nullptr, nullptr),
                LOWBIT_ERROR, "does not exist");
  EXPECT_STATUS(lowbit_quantize_model((dir_ / "missing.gguf").string().c_str(), out.c_str(), "Q8_0", nullptr, nullptr,
                                      nullptr, 0, nullptr, nullptr, nullptr),
                LOWBIT_ERROR, "missing.gguf");
  EXPECT_STATUS(lowbit_quantize_model(in_.c_str(), out.c_str(), "Q8_0", (dir_ / "none.imatrix").string().c_str(),
                                      nullptr, nullptr, 0, nullptr, nullptr, nullptr),
                LOWBIT_ERROR, "none.imatrix");
  EXPECT_STATUS(lowbit_quantize_model(nullptr, out.c_str(), "Q8_0", nullptr, nullptr, nullptr, 0, nullptr, nullptr,
                                      nullptr),
                LOWBIT_ERROR_INVALID_ARGUMENT, "in_path is NULL");
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CApiModel, GptqFromAHessianDirectory) {
  // One tensor gets a Hessian; the rest fall back to rtn (the pipeline's rule).
  const fs::path hdir = dir_ / "hessians";
  fs::create_directories(hdir);
  lowbit_hessian* h = nullptr;
  ASSERT_OK(lowbit_hessian_create(256, &h));
  const std::vector<float> x = activations(64, 256, 3);
  ASSERT_OK(lowbit_hessian_add(h, x.data(), x.size(), 64, 0));
  ASSERT_OK(lowbit_hessian_save(h, (hdir / "blk.0.attn_q.weight.hess").string().c_str()));
  const std::string out = (dir_ / "gptq.gguf").string();
  ASSERT_OK(lowbit_quantize_model(in_.c_str(), out.c_str(), "Q8_0", nullptr, "gptq", hdir.string().c_str(), 0,
                                  nullptr, nullptr, nullptr));
  // blk.0.attn_q equals GPTQ into Q8_0 through the C API directly.
  const lowbit::GgufFile in = lowbit::GgufFile::open(in_), f = lowbit::GgufFile::open(out);
  const auto& t = in.tensor("blk.0.attn_q.weight");
  std::vector<uint8_t> q(lowbit::quantized_size(Format::Q8_0, 256, 256));
  ASSERT_OK(lowbit_gptq_quantize_ggml(nullptr, h, LOWBIT_FORMAT_Q8_0, reinterpret_cast<const float*>(in.data(t).data()),
                                      256 * 256, 256, 256, 0, nullptr, 0, q.data(), q.size(), nullptr));
  const auto got = f.data(f.tensor("blk.0.attn_q.weight"));
  ASSERT_EQ(got.size(), q.size());
  EXPECT_EQ(0, std::memcmp(got.data(), q.data(), q.size()));
  lowbit_hessian_destroy(h);
}

}  // namespace
