// GGUF reader and writer. Expected bytes are assembled by hand in the tests with a
// tiny little-endian builder (independent of the library), following the GGUF v3
// layout: "GGUF", u32 version, u64 tensor count, u64 KV count, KVs (u64-length key,
// u32 type, value), tensor infos (name, u32 n_dims, u64 dims, u32 type, u64 offset),
// zero padding to the alignment, tensor data each padded to the alignment.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/io/gguf.hpp"

namespace fs = std::filesystem;
using lowbit::Format;
using lowbit::GgufArray;
using lowbit::GgufFile;
using lowbit::GgufType;
using lowbit::GgufValue;
using lowbit::GgufWriter;

namespace {

// Little-endian byte assembly, written out byte by byte.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Bytes& u8(uint8_t v) { return le(v, 1); }
  Bytes& u16(uint16_t v) { return le(v, 2); }
  Bytes& u32(uint32_t v) { return le(v, 4); }
  Bytes& u64(uint64_t v) { return le(v, 8); }
  Bytes& f32(float v) { return u32(std::bit_cast<uint32_t>(v)); }
  Bytes& f64(double v) { return u64(std::bit_cast<uint64_t>(v)); }
  Bytes& raw(std::string_view s) {
    for (char c : s) b.push_back(static_cast<uint8_t>(c));
    return *this;
  }
  Bytes& str(std::string_view s) { return u64(s.size()).raw(s); }
  Bytes& pad_to(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  Bytes& key(std::string_view k, uint32_t type) { return str(k).u32(type); }
  Bytes& tensor(std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  size_t size() const { return b.size(); }
};

class TempDir {
 public:
  TempDir() : dir_(fs::temp_directory_path() / ("lowbit_gguf_test_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path file(const std::string& name) const { return dir_ / name; }
  fs::path write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    const auto p = file(name);
    std::ofstream(p, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  const fs::path& path() const { return dir_; }

 private:
  fs::path dir_;
};

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::byte> as_bytes(const std::vector<uint8_t>& v) {
  std::vector<std::byte> out(v.size());
  std::memcpy(out.data(), v.data(), v.size());
  return out;
}

// Opens `bytes` as a file and returns the Error message ("" when it opened).
std::string open_error(const TempDir& tmp, const Bytes& bytes) {
  const auto p = tmp.write("bad.gguf", bytes.b);
  try {
    (void)GgufFile::open(p);
  } catch (const lowbit::Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + 37 * i + (i >> 7));
  return v;
}

// A valid file with one KV of every type (plus nested arrays), a Q8_0 tensor and
// an F32 tensor; `data_start` receives where the data section begins.
Bytes all_types_file(size_t* data_start = nullptr) {
  Bytes b;
  b.header(2, 16);
  b.key("k.u8", 0).u8(200);
  b.key("k.i8", 1).u8(0x85);  // -123
  b.key("k.u16", 2).u16(65000);
  b.key("k.i16", 3).u16(0x8000);  // -32768
  b.key("k.u32", 4).u32(4000000000u);
  b.key("k.i32", 5).u32(0xFFFFFFFE);  // -2
  b.key("k.f32", 6).u32(0x3FC00000);  // 1.5f
  b.key("k.bool", 7).u8(1);
  b.key("k.str", 8).str("h\xC3\xA9llo");  // "héllo"
  b.key("k.arr", 9).u32(5).u64(3).u32(1).u32(0xFFFFFFFF).u32(7);  // int32 [1, -1, 7]
  b.key("k.u64", 10).u64(0xFFFFFFFFFFFFFFFFull);
  b.key("k.i64", 11).u64(0x8000000000000000ull);  // INT64_MIN
  b.key("k.f64", 12).u64(0xC004000000000000ull);  // -2.5
  b.key("k.strs", 9).u32(8).u64(2).str("a").str("");
  // [[1, 2], []] as an array of uint8 arrays.
  b.key("k.nested", 9).u32(9).u64(2).u32(0).u64(2).u8(1).u8(2).u32(0).u64(0);
  b.key("general.alignment", 4).u32(32);
  b.tensor("blk.0.q", {32, 2}, 8, 0);   // Q8_0: 2 rows x 34 bytes = 68, padded to 96
  b.tensor("norm", {8}, 0, 96);         // F32: 32 bytes
  b.pad_to(32);
  if (data_start) *data_start = b.size();
  const auto q = pattern(68, 3);
  b.b.insert(b.b.end(), q.begin(), q.end());
  b.pad_to(32);
  for (int i = 0; i < 8; ++i) b.f32(0.25f * static_cast<float>(i) - 1.0f);
  return b;
}

// A NUL inside a tensor name or key would end it early for every C consumer.
TEST(GgufBad, NulInsideANameOrKey) {
  TempDir tmp;
  Bytes b;
  b.header(1, 0).tensor(std::string_view("a\0b.weight", 10), {32}, 0, 0).pad_to(32);
  for (int i = 0; i < 32; ++i) b.f32(0.0f);
  std::string msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "NUL byte");
  EXPECT_CONTAINS(msg, "byte offset 24");
  Bytes c;
  c.header(0, 1).key(std::string_view("general.x\0y", 11), 4).u32(1);
  msg = open_error(tmp, c);
  EXPECT_CONTAINS(msg, "NUL byte");
}

}  // namespace

// ------------------------------------------------------------------ reading

TEST(GgufRead, HandBuiltAllValueTypes) {
  TempDir tmp;
  size_t data_start = 0;
  const Bytes b = all_types_file(&data_start);
  const auto f = GgufFile::open(tmp.write("all.gguf", b.b));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), data_start);
  ASSERT_EQ(f.metadata().size(), 16u);
  EXPECT_EQ(f.metadata()[0].key, "k.u8");
  EXPECT_EQ(f.at("k.u8").get<uint8_t>(), 200);
  EXPECT_EQ(f.at("k.i8").get<int8_t>(), -123);
  EXPECT_EQ(f.at("k.u16").get<uint16_t>(), 65000);
  EXPECT_EQ(f.at("k.i16").get<int16_t>(), -32768);
  EXPECT_EQ(f.at("k.u32").get<uint32_t>(), 4000000000u);
  EXPECT_EQ(f.at("k.i32").get<int32_t>(), -2);
  EXPECT_EQ(f.at("k.f32").get<float>(), 1.5f);
  EXPECT_EQ(f.at("k.bool").get<bool>(), true);
  EXPECT_EQ(f.at("k.str").as_string(), "h\xC3\xA9llo");
  EXPECT_EQ(f.at("k.u64").get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.at("k.i64").get<int64_t>(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.at("k.f64").get<double>(), -2.5);
  EXPECT_EQ(f.at("k.i32").as_int(), -2);
  EXPECT_EQ(f.at("k.u8").type(), GgufType::uint8);

  const auto& arr = f.at("k.arr").as_array();
  EXPECT_EQ(arr.element_type, GgufType::int32);
  ASSERT_EQ(arr.items.size(), 3u);
  EXPECT_EQ(arr.items[1].get<int32_t>(), -1);
  EXPECT_EQ(f.at("k.arr"), GgufValue::array<int32_t>({1, -1, 7}));
  EXPECT_EQ(f.at("k.strs"), GgufValue::array_of_strings(std::vector<std::string>{"a", ""}));
  const auto& nested = f.at("k.nested").as_array();
  EXPECT_EQ(nested.element_type, GgufType::array);
  ASSERT_EQ(nested.items.size(), 2u);
  EXPECT_EQ(nested.items[0], GgufValue::array<uint8_t>({1, 2}));
  EXPECT_EQ(nested.items[1].as_array().element_type, GgufType::uint8);
  EXPECT_TRUE(nested.items[1].as_array().items.empty());

  EXPECT_EQ(f.find("missing"), nullptr);
  EXPECT_THROW((void)f.at("missing"), lowbit::Error);
  EXPECT_THROW((void)f.at("k.u8").get<uint32_t>(), lowbit::Error);  // no silent widening

  ASSERT_EQ(f.tensors().size(), 2u);
  const auto& q = f.tensor("blk.0.q");
  EXPECT_EQ(q.shape, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(q.format, Format::Q8_0);
  EXPECT_EQ(q.offset, 0u);
  EXPECT_EQ(q.file_offset, data_start);
  EXPECT_EQ(q.nbytes, 68u);
  EXPECT_EQ(q.row_length(), 32);
  EXPECT_EQ(q.rows(), 2);
  const auto qd = f.data(q);
  ASSERT_EQ(qd.size(), 68u);
  const auto expect_q = pattern(68, 3);
  EXPECT_EQ(std::memcmp(qd.data(), expect_q.data(), 68), 0);
  const auto& n = f.tensor("norm");
  EXPECT_EQ(n.format, Format::F32);
  EXPECT_EQ(n.file_offset, data_start + 96);
  const auto nd = f.data(n);
  ASSERT_EQ(nd.size(), 32u);
  float v[8];
  std::memcpy(v, nd.data(), sizeof(v));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(v[i], 0.25f * static_cast<float>(i) - 1.0f);
  EXPECT_EQ(f.find_tensor("nope"), nullptr);
  EXPECT_THROW((void)f.tensor("nope"), lowbit::Error);
}

TEST(GgufRead, CustomAlignmentAndVersion2) {
  TempDir tmp;
  Bytes b;
  b.header(1, 1, 2);
  b.key("general.alignment", 4).u32(64);
  b.tensor("t", {4, 1, 1, 1}, 1, 0);  // F16, 4 dims
  const size_t infos_end = b.size();
  b.pad_to(64);
  b.u16(0x3C00).u16(0x4000).u16(0xBC00).u16(0);
  const auto f = GgufFile::open(tmp.write("a64.gguf", b.b));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset(), (infos_end + 63) / 64 * 64);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.tensors()[0].shape, (std::vector<int64_t>{4, 1, 1, 1}));
  EXPECT_EQ(f.tensors()[0].nbytes, 8u);
}

TEST(GgufRead, NoTensorsAndZeroDims) {
  TempDir tmp;
  {
    Bytes b;  // metadata only, no padding after it
    b.header(0, 1).key("x", 8).str("y");
    const auto f = GgufFile::open(tmp.write("meta.gguf", b.b));
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_EQ(f.at("x").as_string(), "y");
  }
  {
    Bytes b;  // a 0-d tensor holds one element; an empty tensor none
    b.header(2, 0).tensor("scalar", {}, 0, 0).tensor("empty", {0, 3}, 0, 32).pad_to(32);
    b.f32(3.0f).pad_to(32);
    const auto f = GgufFile::open(tmp.write("scalar.gguf", b.b));
    EXPECT_TRUE(f.tensor("scalar").shape.empty());
    EXPECT_EQ(f.tensor("scalar").nbytes, 4u);
    EXPECT_EQ(f.tensor("empty").nbytes, 0u);
  }
}

// ------------------------------------------------------------------ writing

TEST(GgufWrite, TinyFileMatchesHandAssembledBytes) {
  // One uint32 KV "a.b" = 7 and one F32 tensor "t" of shape [2] holding {1, -2}.
  const std::vector<uint8_t> expected = {
      'G', 'G', 'U', 'F', 3, 0, 0, 0,          // magic, version 3
      1, 0, 0, 0, 0, 0, 0, 0,                  // 1 tensor
      1, 0, 0, 0, 0, 0, 0, 0,                  // 1 KV
      3, 0, 0, 0, 0, 0, 0, 0, 'a', '.', 'b',   // key
      4, 0, 0, 0, 7, 0, 0, 0,                  // uint32 7
      1, 0, 0, 0, 0, 0, 0, 0, 't',             // tensor name
      1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,      // n_dims 1, ne0 2
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      // type F32, offset 0
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // 76 -> 96
      0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0,              // 1.0f, -2.0f
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // 104 -> 128
  };
  ASSERT_EQ(expected.size(), 128u);
  GgufWriter w;
  w.set("a.b", uint32_t{7});
  const float data[2] = {1.0f, -2.0f};
  w.add_tensor("t", {2}, Format::F32, std::as_bytes(std::span(data)));
  EXPECT_EQ(w.serialize(), as_bytes(expected));
  TempDir tmp;
  const auto p = tmp.file("tiny.gguf");
  w.write(p);
  EXPECT_EQ(read_bytes(p), expected);
}

TEST(GgufWrite, RoundTripAllValueTypesAndFormats) {
  GgufWriter w;
  w.set("general.alignment", uint32_t{64});
  w.set("u8", uint8_t{255});
  w.set("i8", int8_t{-128});
  w.set("u16", uint16_t{1234});
  w.set("i16", int16_t{-1234});
  w.set("u32", uint32_t{0xDEADBEEF});
  w.set("i32", int32_t{std::numeric_limits<int32_t>::min()});
  w.set("f32.nan", std::numeric_limits<float>::quiet_NaN());
  w.set("f32.negzero", -0.0f);
  w.set("f32.inf", std::numeric_limits<float>::infinity());
  w.set("f32.denorm", std::numeric_limits<float>::denorm_min());
  w.set("b.true", true);
  w.set("b.false", false);
  w.set("s.empty", "");
  w.set("s.utf8", "\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80");
  w.set("u64", std::numeric_limits<uint64_t>::max());
  w.set("i64", std::numeric_limits<int64_t>::min());
  w.set("f64", 0.1);
  w.set("a.f32", GgufValue::array<float>({1.f, -0.f, 3.5f}));
  w.set("a.i64", GgufValue::array<int64_t>({-1, 0, 1}));
  w.set("a.bool", GgufValue::array<bool>({true, false}));
  w.set("a.str", GgufValue::array_of_strings(std::vector<std::string>{"<s>", "", "\xC3\xA9"}));
  w.set("a.empty", GgufValue(GgufArray{GgufType::float64, {}}));
  w.set("a.nested", GgufValue(GgufArray{GgufType::array,
                                        {GgufValue::array<uint16_t>({1, 2}),
                                         GgufValue(GgufArray{GgufType::uint16, {}})}}));
  w.set("u8", uint8_t{254});  // replacing keeps the place
  EXPECT_EQ(w.find("u8")->get<uint8_t>(), 254);

  // Several formats and ranks; ragged sizes so padding between tensors matters.
  struct T {
    std::string name;
    std::vector<int64_t> shape;
    Format format;
    size_t nbytes;
  };
  const std::vector<T> specs = {
      {"f32", {3, 5}, Format::F32, 60},       {"f16", {7}, Format::F16, 14},
      {"bf16", {2, 2, 2}, Format::BF16, 16},   {"q8_0", {64, 3}, Format::Q8_0, 2 * 3 * 34},
      {"q4_k", {256, 2}, Format::Q4_K, 288},   {"q6_k", {512, 1, 1, 2}, Format::Q6_K, 4 * 210},
      {"iq4_xs", {256}, Format::IQ4_XS, 136},  {"q2_k", {256, 3}, Format::Q2_K, 3 * 84},
  };
  std::vector<std::vector<uint8_t>> payload;
  for (size_t i = 0; i < specs.size(); ++i) {
    payload.push_back(pattern(specs[i].nbytes, static_cast<uint8_t>(i * 11)));
    w.add_tensor(specs[i].name, specs[i].shape, specs[i].format, as_bytes(payload.back()));  // owned copy
  }

  TempDir tmp;
  const auto p1 = tmp.file("rt1.gguf");
  w.write(p1);
  const auto f = GgufFile::open(p1);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  ASSERT_EQ(f.metadata().size(), 24u);
  EXPECT_EQ(f.metadata()[1].key, "u8");
  EXPECT_EQ(f.at("u8").get<uint8_t>(), 254);
  // Every value reads back identical (floats by bit pattern: NaN, -0.0, denormals).
  size_t i = 0;
  for (const auto& kv : f.metadata()) {
    const GgufValue* want = w.find(kv.key);
    ASSERT_NE(want, nullptr) << kv.key;
    EXPECT_EQ(kv.value, *want) << kv.key;
    ++i;
  }
  EXPECT_TRUE(std::isnan(f.at("f32.nan").get<float>()));
  EXPECT_TRUE(std::signbit(f.at("f32.negzero").get<float>()));
  EXPECT_EQ(f.at("f64").get<double>(), 0.1);
  EXPECT_EQ(f.at("a.str").as_array().items[2].as_string(), "\xC3\xA9");
  ASSERT_EQ(f.tensors().size(), specs.size());
  for (size_t k = 0; k < specs.size(); ++k) {
    const auto& t = f.tensors()[k];
    EXPECT_EQ(t.name, specs[k].name);
    EXPECT_EQ(t.shape, specs[k].shape);
    EXPECT_EQ(t.format, specs[k].format);
    EXPECT_EQ(t.nbytes, specs[k].nbytes);
    EXPECT_EQ(t.file_offset % 64, 0u);
    const auto d = f.data(t);
    ASSERT_EQ(d.size(), payload[k].size());
    EXPECT_EQ(std::memcmp(d.data(), payload[k].data(), d.size()), 0) << t.name;
  }

  // Copying metadata and borrowing the mapped tensors reproduces the file byte for byte.
  GgufWriter copy;
  copy.copy_metadata(f);
  for (const auto& t : f.tensors()) copy.add_tensor(t.name, t.shape, t.format, f.data(t));
  const auto p2 = tmp.file("rt2.gguf");
  copy.write(p2);
  EXPECT_EQ(read_bytes(p1), read_bytes(p2));
}

TEST(GgufWrite, RejectsBadInput) {
  GgufWriter w;
  const std::vector<std::byte> f32x4(16);
  EXPECT_THROW(w.set("", uint8_t{1}), lowbit::Error);
  EXPECT_THROW(w.set("bad\xFF", uint8_t{1}), lowbit::Error);
  EXPECT_THROW(w.set("general.alignment", uint64_t{32}), lowbit::Error);   // must be uint32
  EXPECT_THROW(w.set("general.alignment", uint32_t{48}), lowbit::Error);   // not a power of two
  EXPECT_THROW(w.set("general.alignment", uint32_t{0}), lowbit::Error);
  EXPECT_THROW(GgufValue(GgufArray{GgufType::uint8, {GgufValue(uint16_t{1})}}), lowbit::Error);  // mixed array
  // Nine levels of arrays exceed what the reader accepts, so the writer refuses them too.
  GgufValue deep = GgufValue::array<uint8_t>({1});
  for (int level = 1; level < 9; ++level) deep = GgufValue(GgufArray{GgufType::array, {deep}});
  EXPECT_THROW(w.set("deep", deep), lowbit::Error);

  w.add_tensor("a", {4}, Format::F32, std::span<const std::byte>(f32x4));
  EXPECT_THROW(w.add_tensor("a", {4}, Format::F32, std::span<const std::byte>(f32x4)), lowbit::Error);  // duplicate
  EXPECT_THROW(w.add_tensor("", {4}, Format::F32, std::span<const std::byte>(f32x4)), lowbit::Error);
  EXPECT_THROW(w.add_tensor("\xC0\x80", {4}, Format::F32, std::span<const std::byte>(f32x4)), lowbit::Error);
  EXPECT_THROW(w.add_tensor("b", {2}, Format::F32, std::span<const std::byte>(f32x4)), lowbit::Error);  // size
  EXPECT_THROW(w.add_tensor("c", {16}, Format::Q8_0, std::span<const std::byte>(f32x4)), lowbit::Error);  // ragged
  EXPECT_THROW(w.add_tensor("d", {1, 1, 1, 1, 4}, Format::F32, std::span<const std::byte>(f32x4)), lowbit::Error);
  EXPECT_THROW(w.add_tensor("e", {-4}, Format::F32, std::span<const std::byte>(f32x4)), lowbit::Error);
  try {
    w.add_tensor("b", {2}, Format::F32, std::span<const std::byte>(f32x4));
  } catch (const lowbit::Error& e) {
    EXPECT_CONTAINS(e.what(), "'b'");
    EXPECT_CONTAINS(e.what(), "16 bytes given");
  }
}

TEST(GgufWrite, AtomicReplaceAndCleanupOnFailure) {
  TempDir tmp;
  GgufWriter w;
  w.set("x", int32_t{1});
  const auto p = tmp.file("out.gguf");
  {
    std::ofstream(p) << "old contents";
  }
  w.write(p);  // replaces an existing file
  EXPECT_EQ(GgufFile::open(p).at("x").get<int32_t>(), 1);

  // A target that is a non-empty directory: the rename fails after the temporary
  // was fully written; the error names the path and nothing is left behind.
  const auto dir_target = tmp.file("dir");
  fs::create_directories(dir_target / "inner");
  try {
    w.write(dir_target);
    ADD_FAILURE() << "write over a directory succeeded";
  } catch (const lowbit::Error& e) {
    EXPECT_CONTAINS(e.what(), dir_target.string());
  }
  EXPECT_TRUE(fs::is_directory(dir_target / "inner"));
  // A missing parent folder: the temporary cannot even be created.
  EXPECT_THROW(w.write(tmp.file("no/such/dir/x.gguf")), lowbit::Error);
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

// ------------------------------------------------------------------ hostile input

TEST(GgufBad, TruncationAtEveryOffset) {
  TempDir tmp;
  const Bytes full = all_types_file();
  ASSERT_EQ(full.size() % 32, 0u);  // the last tensor ends the file: every cut removes needed bytes
  (void)GgufFile::open(tmp.write("full.gguf", full.b));
  for (size_t n = 0; n < full.size(); ++n) {
    Bytes cut;
    cut.b.assign(full.b.begin(), full.b.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string msg = open_error(tmp, cut);
    ASSERT_FALSE(msg.empty()) << "truncated to " << n << " bytes opened without error";
    EXPECT_CONTAINS(msg, "byte offset");
  }
}

TEST(GgufBad, NotAFile) {
  TempDir tmp;
  for (const fs::path& p : {tmp.file("missing.gguf"), tmp.path()}) {
    try {
      (void)GgufFile::open(p);
      ADD_FAILURE() << p << " opened";
    } catch (const lowbit::Error& e) {
      EXPECT_CONTAINS(e.what(), p.string());
    }
  }
  const std::string msg = open_error(tmp, Bytes{});  // empty file
  EXPECT_CONTAINS(msg, "magic at byte offset 0");
}

TEST(GgufBad, MagicAndVersion) {
  TempDir tmp;
  Bytes b;
  b.raw("GGML").u32(3).u64(0).u64(0);
  auto msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "magic at byte offset 0");
  EXPECT_CONTAINS(msg, "'GGML'");
  for (uint32_t v : {0u, 1u, 4u}) {
    Bytes c;
    c.header(0, 0, v);
    msg = open_error(tmp, c);
    EXPECT_CONTAINS(msg, "version at byte offset 4");
    EXPECT_CONTAINS(msg, "unsupported version " + std::to_string(v));
  }
  Bytes be;
  be.header(0, 0, 0x03000000);
  EXPECT_CONTAINS(open_error(tmp, be), "big-endian");
}

TEST(GgufBad, LyingCounts) {
  TempDir tmp;
  Bytes b;
  b.header(uint64_t{1} << 60, 0);
  auto msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "tensor count at byte offset 8");
  b = {};
  b.header(0, 1000);
  b.key("a", 4).u32(1);
  msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "metadata count at byte offset 16");

  b = {};
  b.header(0, 1).u64(~uint64_t{0}).raw("kkkkk");  // key length 2^64-1
  msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "key at byte offset 24");
  EXPECT_CONTAINS(msg, "string length 18446744073709551615");

  b = {};
  b.header(0, 1).key("s", 8).u64(uint64_t{1} << 62).raw("abc");  // string value longer than the file
  msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "key 's'");
  EXPECT_CONTAINS(msg, "string value at byte offset 37");

  b = {};
  b.header(0, 1).key("arr", 9).u32(10).u64(uint64_t{1} << 61).u64(5);  // 2^61 uint64s
  msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "key 'arr'");
  EXPECT_CONTAINS(msg, "array length at byte offset 43");

  b = {};
  b.header(0, 1).key("arr", 9).u32(8).u64(3).str("a");  // 3 strings promised, 1 present
  msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "array length at byte offset 43");
}

TEST(GgufBad, ValueTypesAndKeys) {
  TempDir tmp;
  Bytes b;
  b.header(0, 1).key("t", 13).u8(0);
  auto msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "value type at byte offset 33");
  EXPECT_CONTAINS(msg, "unknown GGUF value type id 13");

  b = {};
  b.header(0, 1).key("a", 9).u32(77).u64(0);
  EXPECT_CONTAINS(open_error(tmp, b), "array element type at byte offset 37");

  b = {};
  b.header(0, 1).key("b", 7).u8(2);
  EXPECT_CONTAINS(open_error(tmp, b), "bool value at byte offset 37");

  b = {};
  b.header(0, 2).key("dup", 0).u8(1).key("dup", 0).u8(2);
  msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "key 'dup'");
  EXPECT_CONTAINS(msg, "duplicate key");
  EXPECT_CONTAINS(msg, "byte offset 40");

  b = {};
  b.header(0, 1).key("bad\xFF", 0).u8(1);
  EXPECT_CONTAINS(open_error(tmp, b), "not valid UTF-8");

  b = {};
  b.header(0, 1).key("general.alignment", 4).u32(24);
  msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "general.alignment");
  EXPECT_CONTAINS(msg, "not a power of two");
  b = {};
  b.header(0, 1).key("general.alignment", 10).u64(32);
  EXPECT_CONTAINS(open_error(tmp, b), "must be a uint32");
}

TEST(GgufBad, NestedArraysTooDeep) {
  TempDir tmp;
  auto nested = [](int levels) {
    Bytes b;
    b.header(0, 1).key("n", 9);
    for (int i = 1; i < levels; ++i) b.u32(9).u64(1);  // array of 1 array
    b.u32(0).u64(1).u8(42);                               // innermost: uint8 [42]
    return b;
  };
  const auto f = GgufFile::open(tmp.write("ok.gguf", nested(8).b));
  const GgufValue* v = &f.at("n");
  for (int i = 1; i < 8; ++i) v = &v->as_array().items.at(0);
  EXPECT_EQ(*v, GgufValue::array<uint8_t>({42}));
  const auto msg = open_error(tmp, nested(9));
  EXPECT_CONTAINS(msg, "nested deeper than 8");
  EXPECT_CONTAINS(msg, "key 'n'");
  // A long chain must fail on the limit, not on the stack.
  EXPECT_CONTAINS(open_error(tmp, nested(100000)), "nested deeper than 8");
}

TEST(GgufBad, TensorInfos) {
  TempDir tmp;
  // Tensor info starts at byte 24: name 8+len, n_dims at 24+8+len.
  auto one = [](std::string_view name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data) {
    Bytes b;
    b.header(1, 0).tensor(name, std::move(dims), type, offset).pad_to(32);
    b.b.resize(b.b.size() + data, 0);
    return b;
  };
  auto msg = open_error(tmp, one("w", {1, 1, 1, 1, 1}, 0, 0, 64));
  EXPECT_CONTAINS(msg, "tensor 'w'");
  EXPECT_CONTAINS(msg, "n_dims at byte offset 33");

  msg = open_error(tmp, one("w", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, 0, 64));
  EXPECT_CONTAINS(msg, "ne1 at byte offset 45");
  EXPECT_CONTAINS(msg, "overflows");
  msg = open_error(tmp, one("w", {uint64_t{1} << 63}, 0, 0, 64));
  EXPECT_CONTAINS(msg, "ne0 at byte offset 37");
  EXPECT_CONTAINS(msg, "INT64_MAX");
  // Elements fit int64 but bytes do not: 2^62 F32 elements.
  msg = open_error(tmp, one("w", {uint64_t{1} << 62}, 0, 0, 64));
  EXPECT_CONTAINS(msg, "overflows");
  // A zero ne0 must not hide overflowing higher dims (found by fuzz_gguf: rows()
  // overflowed on {0, 2^62, 4}).
  msg = open_error(tmp, one("w", {0, uint64_t{1} << 62, 4}, 0, 0, 64));
  EXPECT_CONTAINS(msg, "ne2 at byte offset 53");
  EXPECT_CONTAINS(msg, "overflows");

  msg = open_error(tmp, one("w", {32}, 99, 0, 64));
  EXPECT_CONTAINS(msg, "tensor 'w'");
  EXPECT_CONTAINS(msg, "type at byte offset 45");
  EXPECT_CONTAINS(msg, "GGML type id 99");

  msg = open_error(tmp, one("w", {100}, 12, 0, 1024));  // Q4_K needs a multiple of 256
  EXPECT_CONTAINS(msg, "not a multiple of the Q4_K block size 256");

  msg = open_error(tmp, one("w", {4}, 0, 8, 64));  // misaligned
  EXPECT_CONTAINS(msg, "offset at byte offset 49");
  EXPECT_CONTAINS(msg, "not a multiple of the alignment 32");

  msg = open_error(tmp, one("w", {16}, 0, 32, 64));  // [32, 96) in a 64-byte data section
  EXPECT_CONTAINS(msg, "offset at byte offset 49");
  EXPECT_CONTAINS(msg, "past the end of the file");
  msg = open_error(tmp, one("w", {4}, 0, uint64_t{1} << 63, 64));  // offset + size would wrap
  EXPECT_CONTAINS(msg, "past the end of the file");

  msg = open_error(tmp, one("\xE2\x82", {4}, 0, 0, 64));  // truncated UTF-8 sequence
  EXPECT_CONTAINS(msg, "not valid UTF-8");
  EXPECT_CONTAINS(msg, "\\xe2\\x82");

  Bytes b;
  b.header(2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad_to(32);
  b.b.resize(b.size() + 64);
  msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "tensor 'w'");
  EXPECT_CONTAINS(msg, "duplicate tensor name");
  EXPECT_CONTAINS(msg, "name at byte offset 57");

  b = {};
  b.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad_to(32);  // a is [0, 64)
  b.b.resize(b.size() + 64);
  msg = open_error(tmp, b);
  EXPECT_CONTAINS(msg, "tensor 'b'");
  EXPECT_CONTAINS(msg, "overlaps tensor 'a'");
}

TEST(GgufBad, RandomByteMutationsNeverCrash) {
  // Deterministic mutations of a valid file (1 to 4 bytes overwritten, biased to
  // the header, counts and lengths): each must open or throw lowbit::Error.
  TempDir tmp;
  const Bytes full = all_types_file();
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&] {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  int opened = 0, rejected = 0;
  for (int iter = 0; iter < 800; ++iter) {
    Bytes m = full;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t limit = (next() % 2) ? 96 : m.size();
      static constexpr uint8_t kValues[] = {0x00, 0xFF, 0x7F, 0x80, 0x01, 0x40};
      m.b[next() % limit] = (next() % 2) ? static_cast<uint8_t>(next()) : kValues[next() % 6];
    }
    try {
      const auto f = GgufFile::open(tmp.write("mut.gguf", m.b));
      for (const auto& t : f.tensors()) EXPECT_EQ(f.data(t).size(), t.nbytes);
      ++opened;
    } catch (const lowbit::Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(opened, 0);  // some edits only change values, and those files stay valid
}
