// safetensors reader, sharded index and writer. Files are assembled byte by byte in
// the tests from the documented layout (u64 LE header length, JSON header, data), so
// the reader is checked against the format, not against our own writer.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/io/safetensors.hpp"

namespace fs = std::filesystem;
using lowbit::SafetensorsDtype;
using lowbit::SafetensorsFile;
using lowbit::SafetensorsModel;
using lowbit::SafetensorsStreamWriter;
using lowbit::SafetensorsWriter;

namespace {

using Bytes = std::vector<uint8_t>;

// A fresh folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("lowbit_st_" + std::to_string(::getpid()) + "_" +
                                         info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

void append_u64_le(Bytes& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// The documented layout: header length (u64 LE), header text, data buffer.
Bytes make_file(const std::string& header, const Bytes& data) {
  Bytes b;
  append_u64_le(b, header.size());
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void write_bytes(const fs::path& p, const Bytes& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  ASSERT_TRUE(out.good());
}

Bytes read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Bytes span_bytes(std::span<const std::byte> s) {
  Bytes b(s.size());
  if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// Opening `bytes` must throw lowbit::Error whose message names the file and holds
// every one of `needles`.
void expect_open_error(const TempDir& dir, const Bytes& bytes, std::initializer_list<std::string> needles,
                       const std::string& label) {
  const fs::path p = dir / "bad.safetensors";
  write_bytes(p, bytes);
  try {
    SafetensorsFile::open(p);
    ADD_FAILURE() << label << ": opened without error";
  } catch (const lowbit::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(p.string()), std::string::npos) << label << ": message does not name the file: " << msg;
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << label << ": message lacks '" << n << "': " << msg;
  }
}

void expect_header_error(const TempDir& dir, const std::string& header, const Bytes& data,
                         std::initializer_list<std::string> needles) {
  expect_open_error(dir, make_file(header, data), needles, header);
}

// A small valid file used by the corruption tests: two tensors, metadata, odd header length.
Bytes small_valid_file() {
  const std::string header =
      R"({"__metadata__":{"k":"v"},"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"I32","shape":[1,2],"data_offsets":[4,12]}})";
  return make_file(header, {0x00, 0x3c, 0x00, 0xc0, 1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff});
}

std::vector<std::byte> as_std_bytes(const Bytes& b) {
  std::vector<std::byte> out(b.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reader on hand-built files

TEST(SafetensorsReader, HandBuiltFileParsesToExpectedValues) {
  TempDir dir;
  // F16 [2,2]: 0x3C00 = 1.0, 0xC000 = -2.0, 0x3800 = 0.5, 0x7BFF = 65504 (largest half:
  // (2 - 2^-10) * 2^15). BF16 [3]: 0x3F80 = 1.0, 0xC040 = -3.0, 0x4049 = 3.140625
  // (1 + 0x49/128) * 2. F32 scalar: 0x40200000 = 2.5. I32 [0]: empty.
  const std::string header =
      R"({"__metadata__":{"format":"pt","note":"h\u00e9"},)"
      R"("w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},)"
      R"("empty":{"dtype":"I32","shape":[0],"data_offsets":[14,14]},)"
      R"("s":{"dtype":"F32","shape":[],"data_offsets":[14,18]}}    )";  // trailing padding spaces
  const Bytes data = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0xff, 0x7b,  // w
                      0x80, 0x3f, 0x40, 0xc0, 0x49, 0x40,              // b
                      0x00, 0x00, 0x20, 0x40};                         // s
  const Bytes file = make_file(header, data);
  write_bytes(dir / "m.safetensors", file);

  const auto f = SafetensorsFile::open(dir / "m.safetensors");
  EXPECT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "h\xc3\xa9");  // \u00e9 decoded to UTF-8

  // File order: by data offset, the zero-size tensor before the scalar at the same offset.
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.tensors()[0].name, "w");
  EXPECT_EQ(f.tensors()[1].name, "b");
  EXPECT_EQ(f.tensors()[2].name, "empty");
  EXPECT_EQ(f.tensors()[3].name, "s");

  const auto& w = f.tensor("w");
  EXPECT_EQ(w.dtype, SafetensorsDtype::F16);
  EXPECT_EQ(w.shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(w.numel(), 4u);
  const size_t data_start = 8 + header.size();
  EXPECT_EQ(span_bytes(w.data), Bytes(file.begin() + data_start, file.begin() + data_start + 8));
  EXPECT_EQ(f.read_float32("w"), (std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f}));

  const auto& b = f.tensor("b");
  EXPECT_EQ(b.dtype, SafetensorsDtype::BF16);
  EXPECT_EQ(f.read_float32("b"), (std::vector<float>{1.0f, -3.0f, 3.140625f}));

  const auto& e = f.tensor("empty");
  EXPECT_EQ(e.dtype, SafetensorsDtype::I32);
  EXPECT_EQ(e.numel(), 0u);
  EXPECT_TRUE(e.data.empty());

  const auto& s = f.tensor("s");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.numel(), 1u);
  EXPECT_EQ(f.read_float32("s"), std::vector<float>{2.5f});

  EXPECT_EQ(f.find("missing"), nullptr);
  EXPECT_THROW(f.tensor("missing"), lowbit::Error);
  // Integer tensors do not convert to float32 implicitly.
  EXPECT_THROW(f.read_float32("empty"), lowbit::Error);
}

TEST(SafetensorsReader, IntegerAndByteDtypesKeepTheirBytes) {
  TempDir dir;
  const std::string header =
      R"({"i64":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
      R"("u16":{"dtype":"U16","shape":[2],"data_offsets":[8,12]},)"
      R"("flags":{"dtype":"BOOL","shape":[2],"data_offsets":[12,14]},)"
      R"("f8":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[14,15]}})";
  const Bytes data = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // i64 -1
                      0x34, 0x12, 0xcd, 0xab,                          // u16 0x1234, 0xabcd
                      0x01, 0x00,                                      // true, false
                      0x38};                                           // e4m3 1.0
  write_bytes(dir / "m.safetensors", make_file(header, data));
  const auto f = SafetensorsFile::open(dir / "m.safetensors");
  EXPECT_TRUE(f.metadata().empty());
  int64_t i64;
  std::memcpy(&i64, f.tensor("i64").data.data(), 8);
  EXPECT_EQ(i64, -1);
  uint16_t u16[2];
  std::memcpy(u16, f.tensor("u16").data.data(), 4);
  EXPECT_EQ(u16[0], 0x1234);
  EXPECT_EQ(u16[1], 0xabcd);
  EXPECT_EQ(f.tensor("flags").dtype, SafetensorsDtype::BOOL);
  EXPECT_EQ(span_bytes(f.tensor("flags").data), (Bytes{1, 0}));
  EXPECT_EQ(f.tensor("f8").dtype, SafetensorsDtype::F8_E4M3);
  EXPECT_EQ(span_bytes(f.tensor("f8").data), Bytes{0x38});
}

TEST(SafetensorsReader, EmptyHeaderObjectIsAnEmptyFile) {
  TempDir dir;
  write_bytes(dir / "e.safetensors", make_file("{}", {}));
  const auto f = SafetensorsFile::open(dir / "e.safetensors");
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_TRUE(f.metadata().empty());
}

TEST(SafetensorsReader, LeadingWhitespaceAndNullMetadataAreAccepted) {
  // The reference parses the header as JSON text, so JSON whitespace may surround it,
  // and it reads "__metadata__": null as no metadata.
  TempDir dir;
  write_bytes(dir / "w.safetensors",
              make_file(" \t\r\n{\"__metadata__\":null,\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
                        "\"data_offsets\":[0,1]}}\n  ",
                        Bytes{5}));
  const auto f = SafetensorsFile::open(dir / "w.safetensors");
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_EQ(span_bytes(f.tensor("a").data), Bytes{5});
}

TEST(SafetensorsReader, DtypeNamesAndSizes) {
  const std::pair<const char*, size_t> expected[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
      {"F32", 4},  {"F64", 8}, {"I64", 8}, {"U64", 8},     {"C64", 8}};
  for (const auto& [name, size] : expected) {
    const auto d = lowbit::safetensors_dtype_from_name(name);
    ASSERT_TRUE(d.has_value()) << name;
    EXPECT_EQ(lowbit::to_string(*d), name);
    EXPECT_EQ(lowbit::element_size(*d), size) << name;
  }
  EXPECT_FALSE(lowbit::safetensors_dtype_from_name("f32").has_value());
  EXPECT_FALSE(lowbit::safetensors_dtype_from_name("Q4_0").has_value());
  EXPECT_FALSE(lowbit::safetensors_dtype_from_name("F4").has_value());  // sub-byte: unsupported
}

// ---------------------------------------------------------------------------------------------
// Bad files: every defect is a lowbit::Error naming the file and the culprit.

TEST(SafetensorsReader, TruncationAtEveryOffsetIsAnError) {
  TempDir dir;
  const Bytes good = small_valid_file();
  write_bytes(dir / "good.safetensors", good);
  ASSERT_NO_THROW(SafetensorsFile::open(dir / "good.safetensors"));
  for (size_t n = 0; n < good.size(); ++n)
    expect_open_error(dir, Bytes(good.begin(), good.begin() + n), {}, "truncated to " + std::to_string(n));
  // Extra bytes after the last tensor are refused too.
  Bytes longer = good;
  longer.push_back(0);
  expect_open_error(dir, longer, {"after the last tensor"}, "one trailing byte");
}

TEST(SafetensorsReader, LyingHeaderLength) {
  TempDir dir;
  const Bytes good = small_valid_file();
  const auto with_length = [&](uint64_t len) {
    Bytes b = good;
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(len >> (8 * i));
    return b;
  };
  const uint64_t real = good.size() - 8 - 12;
  expect_open_error(dir, with_length(good.size()), {"header length", "runs past"}, "past end");
  expect_open_error(dir, with_length(~uint64_t{0}), {"header length", "limit"}, "2^64-1");
  expect_open_error(dir, with_length(uint64_t{1} << 40), {"limit"}, "2^40");
  expect_open_error(dir, with_length(0), {"invalid JSON"}, "zero");
  expect_open_error(dir, with_length(real - 1), {"JSON"}, "one short");
  // One long: the header swallows a data byte (0x00), which is not JSON whitespace.
  expect_open_error(dir, with_length(real + 1), {"JSON", "NUL", "file offset " + std::to_string(8 + real)},
                    "one long");
  // A NUL right after a complete object, inside the declared header, is refused too.
  expect_header_error(dir, std::string("{}\0 ", 4), {}, {"NUL", "file offset 10"});
}

TEST(SafetensorsReader, HugeAndInvalidShapes) {
  TempDir dir;
  expect_header_error(dir, R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", {},
                      {"'t'", "shape", "overflows"});
  // 2^62 elements fit, but not their 4-byte size.
  expect_header_error(dir, R"({"t":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", {},
                      {"'t'", "byte size", "overflows"});
  expect_header_error(dir, R"({"t":{"dtype":"U8","shape":[1099511627776],"data_offsets":[0,4]}})", Bytes(4),
                      {"'t'", "needs 1099511627776"});
  expect_header_error(dir, R"({"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", {}, {"'t'", "shape[0]"});
  expect_header_error(dir, R"({"t":{"dtype":"U8","shape":[1e30],"data_offsets":[0,0]}})", {}, {"'t'", "shape[0]"});
  expect_header_error(dir, R"({"t":{"dtype":"U8","shape":[2.5],"data_offsets":[0,0]}})", {}, {"'t'", "shape[0]"});
  expect_header_error(dir, R"({"t":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]}})", {},
                      {"'t'", "shape[0]"});
  expect_header_error(dir, R"({"t":{"dtype":"U8","shape":"2","data_offsets":[0,2]}})", Bytes(2), {"'t'", "shape"});
}

TEST(SafetensorsReader, BadDataOffsets) {
  TempDir dir;
  const Bytes d8(8), d12(12);
  expect_header_error(dir,
                      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                      d12, {"'b'", "overlaps", "'a'"});
  expect_header_error(dir, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                      d8, {"overlaps"});
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", d8,
                      {"bytes [0, 4)", "'a'", "no tensor"});
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[1000],"data_offsets":[0,1000]}})", d8,
                      {"'a'", "data_offsets [0, 1000]", "run past"});
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[9,9]}})", d8, {"'a'", "run past"});
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[8,4]}})", d8, {"'a'", "end before"});
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8,8]}})", d8, {"'a'", "data_offsets"});
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0]}})", d8, {"'a'", "data_offsets"});
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8.0]}})", d8,
                      {"'a'", "data_offsets[1]"});
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[-1,8]}})", d8,
                      {"'a'", "data_offsets[0]"});
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", d8,
                      {"bytes [4, 8)", "after the last tensor"});
}

TEST(SafetensorsReader, DtypeSizeMismatchAndUnknownDtypes) {
  TempDir dir;
  expect_header_error(dir, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", Bytes(4),
                      {"'w'", "span 4 bytes", "F32", "needs 8"});
  expect_header_error(dir, R"({"w":{"dtype":"BF16","shape":[3,1],"data_offsets":[0,3]}})", Bytes(3),
                      {"'w'", "needs 6"});
  expect_header_error(dir, R"({"w":{"dtype":"Q4_0","shape":[2],"data_offsets":[0,2]}})", Bytes(2),
                      {"'w'", "unknown dtype", "Q4_0"});
  expect_header_error(dir, R"({"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", Bytes(8),
                      {"'w'", "unknown dtype"});
  expect_header_error(dir, R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", Bytes(4), {"'w'", "dtype"});
  expect_header_error(dir, R"({"w":{"shape":[1],"data_offsets":[0,4]}})", Bytes(4), {"'w'", "\"dtype\""});
  expect_header_error(dir, R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", Bytes(4), {"'w'", "\"shape\""});
  expect_header_error(dir, R"({"w":{"dtype":"F32","shape":[1]}})", Bytes(4), {"'w'", "\"data_offsets\""});
  expect_header_error(dir, R"({"w":[1,2]})", {}, {"'w'", "object"});
}

TEST(SafetensorsReader, BadJsonAndMetadata) {
  TempDir dir;
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]})", Bytes(1), {"invalid JSON"});
  expect_header_error(dir, R"({"a":1,})", {}, {"invalid JSON", "file offset"});
  expect_header_error(dir, R"({}x)", {}, {"invalid JSON"});
  expect_header_error(dir, R"([])", {}, {"not a JSON object"});
  expect_header_error(dir, R"("x")", {}, {"not a JSON object"});
  expect_header_error(dir, R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                           R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                      Bytes(2), {"duplicate key", "'a'"});
  expect_header_error(dir, R"({"__metadata__":{"k":1}})", {}, {"__metadata__", "'k'"});
  expect_header_error(dir, R"({"__metadata__":["x"]})", {}, {"__metadata__"});
  expect_header_error(dir, std::string(64, '[') + std::string(64, ']'), {}, {});
  expect_header_error(dir, R"({"a":)" + std::string(40, '[') + std::string(40, ']') + "}", {}, {"nested"});
}

TEST(SafetensorsReader, NonUtf8NamesAreRefused) {
  TempDir dir;
  // Raw 0xFF in a tensor name: the header starts at file offset 8, the name's byte at 8 + 2.
  expect_header_error(dir, "{\"\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", Bytes(1),
                      {"UTF-8", "file offset 10"});
  // Overlong encoding of '/', a truncated sequence and an encoded surrogate.
  expect_header_error(dir, "{\"a\xc0\xaf\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", Bytes(1),
                      {"UTF-8", "file offset 11"});
  expect_header_error(dir, "{\"a\xe2\x82\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", Bytes(1),
                      {"UTF-8"});
  expect_header_error(dir, "{\"\xed\xa0\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", Bytes(1),
                      {"UTF-8"});
  // A lone surrogate written as a JSON escape has no UTF-8 form either.
  expect_header_error(dir, R"({"\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", Bytes(1),
                      {"invalid JSON"});
  // Valid multi-byte names are fine.
  write_bytes(dir / "ok.safetensors",
              make_file("{\"\xe6\x9d\x83\xe9\x87\x8d\xf0\x9f\x98\x80\":{\"dtype\":\"U8\",\"shape\":[1],"
                        "\"data_offsets\":[0,1]}}",
                        Bytes{7}));
  const auto f = SafetensorsFile::open(dir / "ok.safetensors");
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].name, "\xe6\x9d\x83\xe9\x87\x8d\xf0\x9f\x98\x80");
}

TEST(SafetensorsReader, MissingFileAndDirectory) {
  TempDir dir;
  EXPECT_THROW(SafetensorsFile::open(dir / "nope.safetensors"), lowbit::Error);
  EXPECT_THROW(SafetensorsFile::open(dir.path()), lowbit::Error);
}

TEST(SafetensorsReader, RandomCorruptionNeverCrashes) {
  TempDir dir;
  const Bytes good = small_valid_file();
  std::mt19937 rng(1234);
  const fs::path p = dir / "fuzz.safetensors";
  int opened = 0, refused = 0;
  for (int trial = 0; trial < 500; ++trial) {
    Bytes b = good;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    write_bytes(p, b);
    try {
      const auto f = SafetensorsFile::open(p);
      // Whatever opened must be self-consistent: every span inside the file.
      for (const auto& t : f.tensors()) EXPECT_EQ(t.data.size(), t.numel() * lowbit::element_size(t.dtype));
      ++opened;
    } catch (const lowbit::Error&) {
      ++refused;
    }
  }
  EXPECT_EQ(opened + refused, 500);
  EXPECT_GT(refused, 0);
}

// ---------------------------------------------------------------------------------------------
// Writer

TEST(SafetensorsWriter, TinyFileMatchesHandAssembledBytes) {
  TempDir dir;
  SafetensorsWriter w;
  w.set_metadata("a", "b");
  const float x[] = {1.0f, -2.0f};
  w.add_float32("x", {2}, x);
  const uint8_t y[] = {1, 2, 3};
  w.add("y", SafetensorsDtype::U8, {3}, std::as_bytes(std::span(y)));
  w.write(dir / "t.safetensors");

  // The header is 132 bytes of compact JSON, padded with 4 spaces to 136 = 17 * 8.
  const std::string header =
      R"({"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("y":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}    )";
  ASSERT_EQ(header.size(), 136u);
  Bytes expected = {136, 0, 0, 0, 0, 0, 0, 0};
  expected.insert(expected.end(), header.begin(), header.end());
  // 1.0f = 0x3F800000, -2.0f = 0xC0000000, little-endian; then the three bytes of y.
  for (uint8_t v : {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 1, 2, 3}) expected.push_back(v);

  EXPECT_EQ(read_bytes(dir / "t.safetensors"), expected);
  EXPECT_EQ(span_bytes(w.serialize()), expected);
}

// The streaming writer: the same hand-assembled bytes, produced one tensor at a time.
TEST(SafetensorsStreamWriter, TinyFileMatchesHandAssembledBytes) {
  TempDir dir;
  SafetensorsStreamWriter w;
  w.set_metadata("a", "b");
  w.declare("x", SafetensorsDtype::F32, {2});
  w.declare("y", SafetensorsDtype::U8, {3});
  std::vector<size_t> asked;
  w.write(dir / "t.safetensors", [&](size_t i) {
    asked.push_back(i);
    const std::vector<uint8_t> x = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0}, y = {1, 2, 3};
    const auto& v = i == 0 ? x : y;
    std::vector<std::byte> b(v.size());
    std::memcpy(b.data(), v.data(), v.size());
    return b;
  });
  EXPECT_EQ(asked, (std::vector<size_t>{0, 1}));
  const std::string header =
      R"({"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("y":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}    )";
  Bytes expected = {136, 0, 0, 0, 0, 0, 0, 0};
  expected.insert(expected.end(), header.begin(), header.end());
  for (uint8_t v : {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 1, 2, 3}) expected.push_back(v);
  EXPECT_EQ(read_bytes(dir / "t.safetensors"), expected);
}

TEST(SafetensorsStreamWriter, AWrongSizeOrAFailedProducerLeavesNoFile) {
  TempDir dir;
  SafetensorsStreamWriter w;
  w.declare("x", SafetensorsDtype::F32, {2});
  EXPECT_THROW(w.declare("x", SafetensorsDtype::F32, {1}), lowbit::Error);  // twice
  EXPECT_THROW(w.declare("__metadata__", SafetensorsDtype::F32, {1}), lowbit::Error);
  try {
    w.write(dir / "t.safetensors", [](size_t) { return std::vector<std::byte>(7); });
    FAIL() << "a 7-byte F32[2] was accepted";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("declared 8"), std::string::npos) << e.what();
  }
  EXPECT_THROW(w.write(dir / "t.safetensors", [](size_t) -> std::vector<std::byte> { throw lowbit::Error("stop"); }),
               lowbit::Error);
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(SafetensorsWriter, EmptyWriterWritesAnEmptyObject) {
  SafetensorsWriter w;
  // "{}" padded to 8 bytes.
  Bytes expected = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  EXPECT_EQ(span_bytes(w.serialize()), expected);
}

TEST(SafetensorsWriter, RoundTripsEveryDtype) {
  TempDir dir;
  const char* names[] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16",
                         "BF16", "I32", "U32", "F32",     "F64",     "I64",     "U64", "C64"};
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.set_metadata("unicode \xc3\xa9", "value \xe2\x82\xac \"quoted\" \\ \n");
  std::vector<Bytes> payloads;
  for (size_t i = 0; i < std::size(names); ++i) {
    const auto d = *lowbit::safetensors_dtype_from_name(names[i]);
    const std::vector<uint64_t> shape = {3, i % 4 + 1};
    Bytes payload(3 * (i % 4 + 1) * lowbit::element_size(d));
    for (size_t k = 0; k < payload.size(); ++k)
      payload[k] = d == SafetensorsDtype::BOOL ? static_cast<uint8_t>(k % 2) : static_cast<uint8_t>(k * 37 + i);
    payloads.push_back(payload);
    w.add(std::string("t.") + names[i], d, shape, as_std_bytes(payload));
  }
  w.add("zero", SafetensorsDtype::F32, {0, 5}, {});
  w.add("scalar", SafetensorsDtype::F64, {}, as_std_bytes(Bytes(8, 0x11)));
  w.write(dir / "all.safetensors");

  const auto f = SafetensorsFile::open(dir / "all.safetensors");
  EXPECT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata().at("unicode \xc3\xa9"), "value \xe2\x82\xac \"quoted\" \\ \n");
  ASSERT_EQ(f.tensors().size(), std::size(names) + 2);
  for (size_t i = 0; i < std::size(names); ++i) {
    const auto& t = f.tensors()[i];  // file order is the order of add()
    EXPECT_EQ(t.name, std::string("t.") + names[i]);
    EXPECT_EQ(lowbit::to_string(t.dtype), names[i]);
    EXPECT_EQ(t.shape, (std::vector<uint64_t>{3, i % 4 + 1}));
    EXPECT_EQ(span_bytes(t.data), payloads[i]) << names[i];
  }
  EXPECT_EQ(f.tensor("zero").shape, (std::vector<uint64_t>{0, 5}));
  EXPECT_TRUE(f.tensor("zero").data.empty());
  EXPECT_EQ(span_bytes(f.tensor("scalar").data), Bytes(8, 0x11));
  // The data buffer starts 8-byte aligned.
  const Bytes raw = read_bytes(dir / "all.safetensors");
  uint64_t header_len;
  std::memcpy(&header_len, raw.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
  EXPECT_EQ(raw, span_bytes(w.serialize()));
}

TEST(SafetensorsWriter, Float32RoundTripThroughHalfTypes) {
  TempDir dir;
  // Values exact in both fp16 and bf16, stored as hand-written bit patterns.
  const uint16_t f16[] = {0x3c00, 0xbc00, 0x4500, 0x0001};  // 1, -1, 5, 2^-24
  const uint16_t bf16[] = {0x3f80, 0xbf80, 0x40a0, 0x0080};  // 1, -1, 5, 2^-126
  SafetensorsWriter w;
  w.add("h", SafetensorsDtype::F16, {4}, std::as_bytes(std::span(f16)));
  w.add("b", SafetensorsDtype::BF16, {2, 2}, std::as_bytes(std::span(bf16)));
  w.write(dir / "h.safetensors");
  const auto f = SafetensorsFile::open(dir / "h.safetensors");
  EXPECT_EQ(f.read_float32("h"), (std::vector<float>{1.0f, -1.0f, 5.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(f.read_float32("b"), (std::vector<float>{1.0f, -1.0f, 5.0f, std::ldexp(1.0f, -126)}));
}

TEST(SafetensorsWriter, RefusesInconsistentTensors) {
  SafetensorsWriter w;
  const Bytes four(4);
  EXPECT_THROW(w.add("a", SafetensorsDtype::F32, {2}, as_std_bytes(four)), lowbit::Error);
  EXPECT_THROW(w.add("__metadata__", SafetensorsDtype::U8, {4}, as_std_bytes(four)), lowbit::Error);
  EXPECT_THROW(w.add("bad\xff", SafetensorsDtype::U8, {4}, as_std_bytes(four)), lowbit::Error);
  EXPECT_THROW(w.add("huge", SafetensorsDtype::U8, {1ull << 32, 1ull << 32}, as_std_bytes(four)), lowbit::Error);
  EXPECT_THROW(w.set_metadata("k", "\xc3"), lowbit::Error);
  w.add("a", SafetensorsDtype::U8, {4}, as_std_bytes(four));
  try {
    w.add("a", SafetensorsDtype::U8, {2, 2}, as_std_bytes(four));
    ADD_FAILURE() << "duplicate name accepted";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'a'"), std::string::npos) << e.what();
  }
}

TEST(SafetensorsWriter, FailedWriteLeavesNoFileBehind) {
  TempDir dir;
  SafetensorsWriter w;
  const float x[] = {1.0f};
  w.add_float32("x", {1}, x);
  // Destination folder missing: nothing can be created.
  EXPECT_THROW(w.write(dir / "missing" / "m.safetensors"), lowbit::Error);
  // Destination is a directory: the temporary file is written, the rename fails and the
  // temporary must be removed again.
  fs::create_directory(dir / "taken");
  EXPECT_THROW(w.write(dir / "taken"), lowbit::Error);
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "taken");
  }
  EXPECT_EQ(entries, 1u);
}

TEST(SafetensorsWriter, ReplacesAnExistingFileWhole) {
  TempDir dir;
  const fs::path p = dir / "m.safetensors";
  write_bytes(p, Bytes(1000, 0xaa));
  SafetensorsWriter w;
  const float x[] = {3.0f};
  w.add_float32("x", {1}, x);
  w.write(p);
  const auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f.read_float32("x"), std::vector<float>{3.0f});
  EXPECT_EQ(read_bytes(p), span_bytes(w.serialize()));
}

// ---------------------------------------------------------------------------------------------
// Sharded models

namespace {

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

// Two shards, the second one in a subfolder, built from hand-assembled bytes:
// shard 1 holds a (F32 [2] = 1, 2) and b (U8 [1] = 9); shard 2 holds c (BF16 [1] = -1).
void write_two_shards(const TempDir& dir) {
  write_bytes(dir / "model-00001-of-00002.safetensors",
              make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}})",
                        {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 9}));
  fs::create_directories(dir / "sub");
  write_bytes(dir / "sub" / "model-00002-of-00002.safetensors",
              make_file(R"({"c":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}})", {0x80, 0xbf}));
}

void expect_index_error(const TempDir& dir, const std::string& index, std::initializer_list<std::string> needles) {
  const fs::path p = dir / "bad.index.json";
  write_text(p, index);
  try {
    SafetensorsModel::open_index(p);
    ADD_FAILURE() << index << ": opened without error";
  } catch (const lowbit::Error& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "lacks '" << n << "': " << msg;
  }
}

}  // namespace

TEST(SafetensorsSharded, ResolvesTensorsAcrossShards) {
  TempDir dir;
  write_two_shards(dir);
  write_text(dir / "model.safetensors.index.json",
             R"({"metadata": {"total_size": 11, "format": "pt"},
                 "weight_map": {"a": "model-00001-of-00002.safetensors",
                                "b": "model-00001-of-00002.safetensors",
                                "c": "sub/model-00002-of-00002.safetensors"}})");
  auto m = SafetensorsModel::open_index(dir / "model.safetensors.index.json");
  EXPECT_EQ(m.metadata().at("total_size"), "11");
  EXPECT_EQ(m.metadata().at("format"), "pt");
  EXPECT_EQ(m.shards().size(), 2u);
  EXPECT_EQ(m.weight_map().at("c"), "sub/model-00002-of-00002.safetensors");
  EXPECT_EQ(m.read_float32("a"), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(span_bytes(m.tensor("b").data), Bytes{9});
  EXPECT_EQ(m.read_float32("c"), std::vector<float>{-1.0f});
  EXPECT_EQ(m.find("d"), nullptr);
  EXPECT_THROW(m.tensor("d"), lowbit::Error);

  // Moving the model keeps its tensors valid (they point into the shards' mappings).
  const SafetensorsModel moved = std::move(m);
  EXPECT_EQ(moved.read_float32("c"), std::vector<float>{-1.0f});
}

TEST(SafetensorsSharded, RefusesInconsistentIndexes) {
  TempDir dir;
  write_two_shards(dir);
  expect_index_error(dir, R"({"weight_map": {"c": "model-00001-of-00002.safetensors"}})",
                     {"'c'", "model-00001-of-00002.safetensors", "no such tensor"});
  expect_index_error(dir, R"({"weight_map": {"a": "model-00003.safetensors"}})", {"model-00003.safetensors"});
  expect_index_error(dir, R"({"weight_map": {"a": "../model-00001-of-00002.safetensors"}})", {"'a'", "relative"});
  expect_index_error(dir, R"({"weight_map": {"a": "/etc/passwd"}})", {"'a'", "relative"});
  expect_index_error(dir, R"({"weight_map": {"a": ""}})", {"'a'"});
  expect_index_error(dir, R"({"weight_map": {"a": 3}})", {"'a'"});
  expect_index_error(dir, R"({"metadata": {}})", {"weight_map"});
  expect_index_error(dir, R"({"weight_map": []})", {"weight_map"});
  expect_index_error(dir, R"({"weight_map": {"a": "x", "a": "y"}})", {"duplicate key", "'a'"});
  expect_index_error(dir, R"({"weight_map": {)", {"invalid JSON"});
  EXPECT_THROW(SafetensorsModel::open_index(dir / "nope.json"), lowbit::Error);
  // A corrupt shard surfaces as the shard's own error.
  write_bytes(dir / "broken.safetensors", Bytes{1, 2, 3});
  expect_index_error(dir, R"({"weight_map": {"a": "broken.safetensors"}})", {"broken.safetensors", "too short"});
}
