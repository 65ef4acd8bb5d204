// llama.cpp importance-matrix readers (lowbit/io/imatrix.hpp) on files assembled
// byte by byte here from the documented layouts.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/io/imatrix.hpp"

namespace lowbit {
namespace {

// Little-endian byte assembly.
struct Bytes {
  std::vector<std::byte> b;
  template <class T>
  Bytes& put(T v) {
    const size_t n = b.size();
    b.resize(n + sizeof(T));
    std::memcpy(b.data() + n, &v, sizeof(T));
    return *this;
  }
  Bytes& raw(const std::string& s) {
    for (char c : s) b.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Bytes& gguf_string(const std::string& s) { return put<uint64_t>(s.size()).raw(s); }
  Bytes& pad_to(size_t align) {
    while (b.size() % align) b.push_back(std::byte{0});
    return *this;
  }
};

std::filesystem::path write_temp(const std::vector<std::byte>& bytes, const std::string& tag) {
  const auto p = std::filesystem::temp_directory_path() /
                 ("lowbit_imatrix_" + tag + "_" + std::to_string(::getpid()) + ".bin");
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return p;
}

// Legacy layout: i32 n_entries; per entry i32 len, name, i32 ncall, i32 nval, nval f32
// (mean(x^2) * ncall); then optional i32 chunk count, i32 len, dataset name.
Bytes legacy_file(bool trailer) {
  Bytes f;
  f.put<int32_t>(2);
  f.put<int32_t>(19).raw("blk.0.attn_q.weight").put<int32_t>(4).put<int32_t>(4);
  for (float v : {4.0f, 8.0f, 0.0f, 2.0f}) f.put(v);
  f.put<int32_t>(21).raw("blk.0.ffn_down.weight").put<int32_t>(0).put<int32_t>(2);
  for (float v : {3.0f, 5.0f}) f.put(v);
  if (trailer) f.put<int32_t>(7).put<int32_t>(4).raw("wiki");
  return f;
}

TEST(Imatrix, LegacyFormatDividesByNcall) {
  const Bytes f = legacy_file(true);
  const Imatrix im = parse_legacy_imatrix(f.b, "test.dat");
  EXPECT_TRUE(im.legacy);
  ASSERT_EQ(im.entries.size(), 2u);
  const ImatrixEntry* q = im.find("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  // Stored values / ncall (4): 4/4, 8/4, 0/4, 2/4.
  EXPECT_EQ(q->importance, (std::vector<float>{1.0f, 2.0f, 0.0f, 0.5f}));
  EXPECT_EQ(q->matrices, 1);
  EXPECT_EQ(q->columns(), 4);
  // ncall 0: the values as stored.
  EXPECT_EQ(im.find("blk.0.ffn_down.weight")->importance, (std::vector<float>{3.0f, 5.0f}));
  EXPECT_EQ(im.chunk_count, 7);
  ASSERT_EQ(im.datasets.size(), 1u);
  EXPECT_EQ(im.datasets[0], "wiki");
  EXPECT_EQ(im.find("missing"), nullptr);

  // Through load_imatrix (detected by the absence of the GGUF magic).
  const auto path = write_temp(f.b, "legacy");
  const Imatrix from_file = load_imatrix(path);
  std::filesystem::remove(path);
  EXPECT_EQ(from_file.find("blk.0.attn_q.weight")->importance, q->importance);
}

TEST(Imatrix, LegacyTrailerIsOptional) {
  const Imatrix im = parse_legacy_imatrix(legacy_file(false).b, "test.dat");
  EXPECT_EQ(im.entries.size(), 2u);
  EXPECT_EQ(im.chunk_count, 0);
  EXPECT_TRUE(im.datasets.empty());
}

TEST(Imatrix, LegacyTruncationIsAnErrorAtEveryOffset) {
  const Bytes full = legacy_file(true);
  const size_t entries_end = legacy_file(false).b.size();
  for (size_t n = 0; n < full.b.size(); ++n) {
    const std::vector<std::byte> cut(full.b.begin(), full.b.begin() + static_cast<ptrdiff_t>(n));
    // Cutting exactly before the trailer, or right after the chunk count, leaves a valid file.
    if (n == entries_end || n == entries_end + 4) {
      EXPECT_NO_THROW(parse_legacy_imatrix(cut, "cut.dat")) << n;
      continue;
    }
    EXPECT_THROW(parse_legacy_imatrix(cut, "cut.dat"), Error) << "truncated at " << n;
  }
}

TEST(Imatrix, LegacyBadValuesAreErrors) {
  auto one_entry = [](int32_t n_entries, int32_t len, int32_t ncall, int32_t nval, float value) {
    Bytes f;
    f.put<int32_t>(n_entries).put<int32_t>(len).raw("w.weight").put<int32_t>(ncall).put<int32_t>(nval).put(value);
    return f.b;
  };
  EXPECT_NO_THROW(parse_legacy_imatrix(one_entry(1, 8, 1, 1, 2.0f), "ok"));
  EXPECT_THROW(parse_legacy_imatrix(one_entry(0, 8, 1, 1, 2.0f), "no entries"), Error);
  EXPECT_THROW(parse_legacy_imatrix(one_entry(1, 1 << 30, 1, 1, 2.0f), "lying name length"), Error);
  EXPECT_THROW(parse_legacy_imatrix(one_entry(1, -3, 1, 1, 2.0f), "negative name length"), Error);
  EXPECT_THROW(parse_legacy_imatrix(one_entry(1, 8, 1, 1 << 30, 2.0f), "lying value count"), Error);
  EXPECT_THROW(parse_legacy_imatrix(one_entry(1, 8, 1, 0, 2.0f), "no values"), Error);
  EXPECT_THROW(parse_legacy_imatrix(one_entry(1, 8, -1, 1, 2.0f), "negative ncall"), Error);
  EXPECT_THROW(parse_legacy_imatrix(one_entry(1, 8, 1, 1, -1.0f), "negative value"), Error);
  EXPECT_THROW(parse_legacy_imatrix(one_entry(1, 8, 1, 1, std::numeric_limits<float>::quiet_NaN()), "nan"), Error);
  try {
    parse_legacy_imatrix(one_entry(1, 8, 1, 1 << 30, 2.0f), "bad.dat");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.dat"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("byte offset"), std::string::npos) << e.what();
  }
}

// GGUF v3: magic, u32 version, u64 tensor count, u64 kv count, the kvs (string key,
// u32 type, value), the tensor infos (string name, u32 n_dims, u64 dims, u32 type,
// u64 offset), padding to 32, the data.
struct GgufTensor {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type;  // 0 = F32, 1 = F16
  std::vector<float> values;
};

std::vector<std::byte> gguf_imatrix(const std::vector<GgufTensor>& tensors) {
  Bytes f;
  f.raw("GGUF").put<uint32_t>(3).put<uint64_t>(tensors.size()).put<uint64_t>(3);
  f.gguf_string("imatrix.datasets").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(1).gguf_string("calib.txt");
  f.gguf_string("imatrix.chunk_count").put<uint32_t>(4).put<uint32_t>(5);
  f.gguf_string("imatrix.chunk_size").put<uint32_t>(4).put<uint32_t>(512);
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const GgufTensor& t : tensors) {
    f.gguf_string(t.name).put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) f.put(d);
    f.put(t.type).put(offset);
    offsets.push_back(offset);
    const uint64_t bytes = t.values.size() * (t.type == 0 ? 4 : 2);
    offset += (bytes + 31) / 32 * 32;
  }
  f.pad_to(32);
  const size_t data = f.b.size();
  for (size_t i = 0; i < tensors.size(); ++i) {
    f.b.resize(data + offsets[i]);
    for (float v : tensors[i].values) {
      if (tensors[i].type == 0) f.put(v);
      else f.put<uint16_t>(0x3c00);  // 1.0 in fp16
    }
  }
  f.pad_to(32);
  return f.b;
}

TEST(Imatrix, GgufFormatDividesByCounts) {
  // Two matrices (experts) of 3 columns: in_sum2 [3, 2], counts [1, 2] = {3, 0}.
  // Matrix 0: sums / 3; matrix 1 saw no tokens: importance 1 (as llama.cpp).
  const auto bytes = gguf_imatrix({
      {"blk.0.ffn_down.weight.in_sum2", {3, 2}, 0, {6, 12, 3, 1, 2, 3}},
      {"blk.0.ffn_down.weight.counts", {1, 2}, 0, {3, 0}},
      {"blk.0.attn_q.weight.in_sum2", {2, 1}, 0, {10, 5}},
      {"blk.0.attn_q.weight.counts", {1, 1}, 0, {10}},
  });
  const auto path = write_temp(bytes, "gguf");
  const Imatrix im = load_imatrix(path);
  std::filesystem::remove(path);
  EXPECT_FALSE(im.legacy);
  ASSERT_EQ(im.entries.size(), 2u);
  const ImatrixEntry* down = im.find("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->matrices, 2);
  EXPECT_EQ(down->columns(), 3);
  EXPECT_EQ(down->importance, (std::vector<float>{2, 4, 1, 1, 1, 1}));
  EXPECT_EQ(std::vector<float>(down->matrix(1).begin(), down->matrix(1).end()), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(im.find("blk.0.attn_q.weight")->importance, (std::vector<float>{1.0f, 0.5f}));
  EXPECT_EQ(im.chunk_count, 5);
  EXPECT_EQ(im.chunk_size, 512);
  ASSERT_EQ(im.datasets.size(), 1u);
  EXPECT_EQ(im.datasets[0], "calib.txt");
}

TEST(Imatrix, GgufDefectsAreErrors) {
  auto load = [](const std::vector<GgufTensor>& t, const char* tag) {
    const auto path = write_temp(gguf_imatrix(t), tag);
    try {
      load_imatrix(path);
    } catch (...) {
      std::filesystem::remove(path);
      throw;
    }
    std::filesystem::remove(path);
  };
  // A sum without its counts, counts without sums, a non-F32 tensor, sums that do
  // not split into the matrices, negative sums, a file with no entries at all.
  EXPECT_THROW(load({{"w.in_sum2", {2, 1}, 0, {1, 2}}}, "nocounts"), Error);
  EXPECT_THROW(load({{"w.counts", {1, 1}, 0, {1}}}, "nosums"), Error);
  EXPECT_THROW(load({{"w.in_sum2", {2, 1}, 1, {1, 2}}, {"w.counts", {1, 1}, 0, {1}}}, "f16"), Error);
  EXPECT_THROW(load({{"w.in_sum2", {3, 1}, 0, {1, 2, 3}}, {"w.counts", {1, 2}, 0, {1, 1}}}, "split"), Error);
  EXPECT_THROW(load({{"w.in_sum2", {2, 1}, 0, {-1, 2}}, {"w.counts", {1, 1}, 0, {1}}}, "negative"), Error);
  EXPECT_THROW(load({{"token_embd.weight", {2, 1}, 0, {1, 2}}}, "model"), Error);
  // Truncated GGUF (the last cut is inside the counts data): the container reader's
  // Error, not a crash.
  auto bytes = gguf_imatrix({{"w.in_sum2", {2, 1}, 0, {1, 2}}, {"w.counts", {1, 1}, 0, {1}}});
  for (size_t n : {size_t{4}, size_t{20}, bytes.size() / 2, bytes.size() - 30}) {
    const auto path = write_temp(std::vector<std::byte>(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n)), "cut");
    EXPECT_THROW(load_imatrix(path), Error) << n;
    std::filesystem::remove(path);
  }
  EXPECT_THROW(load_imatrix("/nonexistent/imatrix.gguf"), Error);
}

}  // namespace
}  // namespace lowbit
