// Readers against a hostile user (docs/reliability.md): files assembled byte by byte
// here, each defect an Error naming the file and what is wrong, never a crash, a
// raw library exception, an endless read or a silently wrong result.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/gsq/hf_layout.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
#include "lowbit/io/imatrix.hpp"
#include "lowbit/io/model_file.hpp"
#include "lowbit/io/safetensors.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using lowbit::test::error_of;

namespace {

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("lowbit_rd_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct Bytes {
  std::string b;
  template <class T>
  Bytes& put(T v) {
    char raw[sizeof(T)];
    std::memcpy(raw, &v, sizeof(T));
    b.append(raw, sizeof(T));
    return *this;
  }
  Bytes& raw(const std::string& s) {
    b += s;
    return *this;
  }
  Bytes& gguf_string(const std::string& s) { return put<uint64_t>(s.size()).raw(s); }
};

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from its parts: u64 header length, header, data.
std::string safetensors(const std::string& header, const std::string& data = "") {
  return Bytes().put<uint64_t>(header.size()).raw(header).raw(data).b;
}

// ------------------------------------------------------------------ GGUF: general.alignment

// A GGUF v3 file with one key, general.alignment = value, and no tensors.
std::string gguf_with_alignment(uint32_t value) {
  return Bytes()
      .raw("GGUF")
      .put<uint32_t>(3)
      .put<uint64_t>(0)
      .put<uint64_t>(1)
      .gguf_string("general.alignment")
      .put<uint32_t>(4)  // uint32
      .put<uint32_t>(value)
      .b;
}

TEST(ReaderHardening, GgufAlignmentIsBounded) {
  TempDir dir;
  const fs::path p = dir / "align.gguf";
  write_file(p, gguf_with_alignment(uint32_t{1} << 31));
  const std::string e = error_of([&] { lowbit::GgufFile::open(p); });
  // The value sits after magic, version, two counts, the key (8 + 17 bytes) and its type: offset 53.
  EXPECT_NE(e.find("GGUF '" + p.string() + "': metadata key 'general.alignment': value at byte offset 53: "
                   "2147483648 is larger than lowbit's limit of 1048576 (1 MiB)"),
            std::string::npos)
      << e;
  write_file(p, gguf_with_alignment(uint32_t{1} << 20));  // the limit itself is fine
  EXPECT_EQ(lowbit::GgufFile::open(p).alignment(), size_t{1} << 20);
}

// ------------------------------------------------------------------ imatrix

TEST(ReaderHardening, ImatrixOfADirectoryOrDeviceIsRefusedByName) {
  TempDir dir;
  std::string e = error_of([&] { lowbit::load_imatrix(dir.path()); });
  EXPECT_NE(e.find("importance-matrix file '" + dir.path().string() + "': is a directory, not a regular file"),
            std::string::npos)
      << e;
  e = error_of([] { lowbit::load_imatrix("/"); });
  EXPECT_NE(e.find("'/': is a directory"), std::string::npos) << e;
  e = error_of([] { lowbit::load_imatrix("/dev/zero"); });  // used to read until bad_alloc
  EXPECT_NE(e.find("'/dev/zero': is a character device, not a regular file"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { lowbit::load_imatrix(dir / "missing.dat"); }).find("cannot open"), std::string::npos);
  // A FIFO without a writer: refused at once, the open does not wait for one.
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  e = error_of([&] { lowbit::load_imatrix(dir / "fifo"); });
  EXPECT_NE(e.find("is a FIFO (named pipe), not a regular file"), std::string::npos) << e;
  e = error_of([&] { lowbit::GgufFile::open(dir / "fifo"); });
  EXPECT_NE(e.find("is a FIFO (named pipe), not a regular file"), std::string::npos) << e;
}

TEST(ReaderHardening, ImatrixZeroSizeTensorsAreErrors) {
  // GGUF imatrix with an empty W.in_sum2 ([0, 1]) and its W.counts ([1, 1]).
  Bytes f;
  f.raw("GGUF").put<uint32_t>(3).put<uint64_t>(2).put<uint64_t>(0);
  f.gguf_string("w.in_sum2").put<uint32_t>(2).put<int64_t>(0).put<int64_t>(1).put<uint32_t>(0).put<uint64_t>(0);
  f.gguf_string("w.counts").put<uint32_t>(2).put<int64_t>(1).put<int64_t>(1).put<uint32_t>(0).put<uint64_t>(0);
  while (f.b.size() % 32) f.b.push_back('\0');
  f.put<float>(4.0f);
  TempDir dir;
  write_file(dir / "empty.imatrix", f.b);
  const std::string e = error_of([&] { lowbit::load_imatrix(dir / "empty.imatrix"); });
  EXPECT_NE(e.find("imatrix tensor 'w.in_sum2' has no values"), std::string::npos) << e;
}

// ------------------------------------------------------------------ safetensors

TEST(ReaderHardening, SafetensorsByteOrderMarkIsRefused) {
  TempDir dir;
  const fs::path p = dir / "bom.safetensors";
  write_file(p, safetensors("\xEF\xBB\xBF{}      "));
  std::string e = error_of([&] { lowbit::SafetensorsFile::open(p); });
  EXPECT_NE(e.find("safetensors file '" + p.string() + "': UTF-8 byte-order mark (EF BB BF) at file offset 8"),
            std::string::npos)
      << e;
  write_file(p, safetensors("{}      "));  // the same without it is a valid empty file
  EXPECT_TRUE(lowbit::SafetensorsFile::open(p).tensors().empty());
  write_file(dir / "index.json", "\xEF\xBB\xBF{\"weight_map\": {}}");
  e = error_of([&] { lowbit::SafetensorsModel::open_index(dir / "index.json"); });
  EXPECT_NE(e.find("byte-order mark (EF BB BF) at file offset 0"), std::string::npos) << e;
}

// A dimension above INT64_MAX next to a zero one: zero bytes, but printed negative
// and indexed wrongly by every int64 consumer, so refused.
TEST(ReaderHardening, SafetensorsDimensionAboveInt64MaxIsRefused) {
  TempDir dir;
  const fs::path p = dir / "dims.safetensors";
  write_file(p, safetensors(R"({"t":{"dtype":"F32","shape":[0,9223372036854775808],"data_offsets":[0,0]}})"));
  const std::string e = error_of([&] { lowbit::SafetensorsFile::open(p); });
  EXPECT_NE(e.find("above INT64_MAX"), std::string::npos) << e;
  write_file(p, safetensors(R"({"a\u0000b":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})"));
  const std::string e2 = error_of([&] { lowbit::SafetensorsFile::open(p); });
  EXPECT_NE(e2.find("NUL character"), std::string::npos) << e2;
}

TEST(ReaderHardening, OneShardUnderTwoSpellingsIsOpenedOnce) {
  TempDir dir;
  // Two F32 tensors of one element each in one shard.
  write_file(dir / "a.safetensors",
             safetensors(R"({"t1":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("t2":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         Bytes().put(1.0f).put(2.0f).b));
  fs::create_hard_link(dir / "a.safetensors", dir / "b.safetensors");
  write_file(dir / "model.safetensors.index.json",
             R"({"weight_map": {"t1": "a.safetensors", "t2": "./a.safetensors"}})");
  const auto m = lowbit::SafetensorsModel::open_index(dir / "model.safetensors.index.json");
  EXPECT_EQ(m.shards().size(), 1u);
  EXPECT_EQ(m.read_float32("t1"), std::vector<float>{1.0f});
  EXPECT_EQ(m.read_float32("t2"), std::vector<float>{2.0f});
  EXPECT_EQ(m.weight_map().at("t2"), "./a.safetensors");  // as written

  // Through a hard link too, and ModelFile lists each tensor once.
  write_file(dir / "model.safetensors.index.json",
             R"({"weight_map": {"t1": "a.safetensors", "t2": "b.safetensors"}})");
  EXPECT_EQ(lowbit::SafetensorsModel::open_index(dir / "model.safetensors.index.json").shards().size(), 1u);
  const auto f = lowbit::ModelFile::open(dir / "model.safetensors.index.json");
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_NE(f.tensors()[0].name, f.tensors()[1].name);

  // A tensor mapped to a shard that does not hold it is still an error.
  write_file(dir / "c.safetensors", safetensors("{}      "));
  write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"t1": "a.safetensors", "t2": "c.safetensors"}})");
  EXPECT_NE(error_of([&] { lowbit::SafetensorsModel::open_index(dir / "model.safetensors.index.json"); })
                .find("puts tensor 't2' in shard 'c.safetensors', which has no such tensor"),
            std::string::npos);
  // A directory as the index is refused by name.
  EXPECT_NE(error_of([&] { lowbit::SafetensorsModel::open_index(dir.path()); }).find("is a directory"),
            std::string::npos);
}

// ------------------------------------------------------------------ HF GPTQ checkpoints

// A one-layer 4-bit checkpoint with in = 32, out = 8, group 32: qweight I32 [4, 8],
// qzeros I32 [1, 1], scales F16 [1, 8], g_idx I32 [32] (all zeros: valid).
std::string gptq_tensors(uint64_t g_idx_len = 32) {
  const std::string header =
      R"({"l.qweight":{"dtype":"I32","shape":[4,8],"data_offsets":[0,128]},)"
      R"("l.qzeros":{"dtype":"I32","shape":[1,1],"data_offsets":[128,132]},)"
      R"("l.scales":{"dtype":"F16","shape":[1,8],"data_offsets":[132,148]},)"
      R"("l.g_idx":{"dtype":"I32","shape":[)" +
      std::to_string(g_idx_len) + R"(],"data_offsets":[148,)" + std::to_string(148 + 4 * g_idx_len) + "]}}";
  std::string data(148 + 4 * g_idx_len, '\0');
  for (size_t i = 132; i < 148; i += 2) data[i + 1] = 0x3c;  // fp16 1.0
  return safetensors(header, data);
}

std::string load_error(const TempDir& dir, const std::string& config, const std::string& tensors = gptq_tensors()) {
  write_file(dir / "quantize_config.json", config);
  write_file(dir / "model.safetensors", tensors);
  return error_of([&] { lowbit::load_hf_gptq_checkpoint(dir.path()); });
}

TEST(ReaderHardening, HfConfigNumbersMustBeIntegersInRange) {
  TempDir dir;
  const std::string cfg = (dir / "quantize_config.json").string();
  EXPECT_EQ(load_error(dir, R"({"bits": 4, "group_size": 32, "sym": true})"), "");
  const auto layers = lowbit::load_hf_gptq_checkpoint(dir.path());
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].tensors.bits, 4);
  EXPECT_EQ(layers[0].tensors.in_features, 32);

  struct Case {
    const char* json;
    std::string expected;
  };
  const Case cases[] = {
      {R"({"bits": 4.7, "group_size": 32})", "\"bits\" must be an integer, got 4.7"},
      {R"({"bits": 4.0, "group_size": 32})", "\"bits\" must be an integer, got 4.0"},
      {R"({"bits": 1e300, "group_size": 32})", "\"bits\" must be an integer, got 1e+300"},
      {R"({"bits": -4, "group_size": 32})", "\"bits\" is -4, outside [1, 32]"},
      {R"({"bits": 40, "group_size": 32})", "\"bits\" is 40, outside [1, 32]"},
      // Non-negative JSON integers parse as unsigned: the lower bound must hold there too.
      {R"({"bits": 0, "group_size": 32})", "\"bits\" is 0, outside [1, 32]"},
      {R"({"bits": 99999999999999999999, "group_size": 32})", "\"bits\" must be an integer"},
      {R"({"bits": "4", "group_size": 32})", "\"bits\" must be an integer, got \"4\""},
      {R"({"bits": 4, "group_size": 1e300})", "\"group_size\" must be an integer, got 1e+300"},
      {R"({"bits": 4, "group_size": 4294967296})", "\"group_size\" is 4294967296, outside [-1, 2147483647]"},
      {R"({"bits": 4, "group_size": -2})", "\"group_size\" is -2, outside [-1, 2147483647]"},
      {R"({"bits": 4})", "has no \"group_size\""},
      {R"({"bits": 4, "group_size": 32, "checkpoint_format": 5})", "\"checkpoint_format\" must be a string, got 5"},
      {R"({"bits": 4, "group_size": 32, "checkpoint_format": ["gptq"]})",
       "\"checkpoint_format\" must be a string, got [\"gptq\"]"},
      {R"({"bits": 4, "group_size": 32, "checkpoint_format": "awq"})", "checkpoint_format \"awq\" is not gptq"},
      {R"({"bits": 4, "group_size": 32, "sym": "yes"})", "\"sym\" must be true or false, got \"yes\""},
      {R"([4, 32])", "the top level is not a JSON object"},
      {"\xEF\xBB\xBF{\"bits\": 4, \"group_size\": 32}", "a UTF-8 byte-order mark at offset 0"},
      {R"({"bits": 4,)", "is not valid JSON"},
  };
  for (const Case& c : cases) {
    const std::string e = load_error(dir, c.json);
    EXPECT_NE(e.find("HF GPTQ checkpoint: '" + cfg + "'"), std::string::npos) << c.json << " -> " << e;
    EXPECT_NE(e.find(c.expected), std::string::npos) << c.json << " -> " << e;
  }
  fs::remove(dir / "quantize_config.json");
  fs::create_directory(dir / "quantize_config.json");
  const std::string e = error_of([&] { lowbit::load_hf_gptq_checkpoint(dir.path()); });
  EXPECT_NE(e.find("is a directory, not a regular file"), std::string::npos) << e;
}

TEST(ReaderHardening, HfZeroSizeTensorsAreHandled) {
  TempDir dir;
  const std::string cfg = R"({"bits": 4, "group_size": 32})";
  // qweight [0, 8]: no input features; refused with the tensor and its shape.
  const std::string empty_qweight = safetensors(
      R"({"l.qweight":{"dtype":"I32","shape":[0,8],"data_offsets":[0,0]}})");
  std::string e = load_error(dir, cfg, empty_qweight);
  EXPECT_NE(e.find("tensor 'l.qweight' has shape [0, 8]"), std::string::npos) << e;
  // [2^62, 0]: a zero-size tensor claiming a huge dimension.
  e = load_error(dir, cfg,
                 safetensors(R"({"l.qweight":{"dtype":"I32","shape":[4611686018427387904,0],"data_offsets":[0,0]}})"));
  EXPECT_NE(e.find("has shape [4611686018427387904, 0]"), std::string::npos) << e;
  // An empty g_idx is copied without touching a null pointer (UBSan) and loads; the
  // layout check then names it.
  EXPECT_EQ(load_error(dir, cfg, gptq_tensors(0)), "");
  const auto layers = lowbit::load_hf_gptq_checkpoint(dir.path());
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_TRUE(layers[0].tensors.g_idx.empty());
  e = error_of([&] { lowbit::from_hf_gptq(layers[0].tensors); });
  EXPECT_NE(e.find("g_idx has 0 entries, expected 32"), std::string::npos) << e;
}

}  // namespace
