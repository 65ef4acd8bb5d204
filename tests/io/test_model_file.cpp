// lowbit::ModelFile: one view of GGUF and safetensors files (what `lowbit inspect`
// and `lowbit compare` print), checked on small files written by the library's writers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/core/synthetic.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/model_file.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/formats/quantize.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using lowbit::Format;
using lowbit::ModelFile;
using lowbit::ModelTensor;

namespace {

class ModelFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lowbit_test_model_file_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A GGUF with a Q4_K weight [4 x 256] (GGUF shape {256, 4}), an F16 vector and metadata.
  fs::path write_gguf() {
    w_ = lowbit::synthetic_weights(4, 256, 3);
    q_ = lowbit::test::encode(Format::Q4_K, w_, 4, 256);
    std::vector<std::byte> f16(2 * 8);
    for (int i = 0; i < 8; ++i) {
      const uint16_t h = lowbit::fp32_to_fp16(0.5f * float(i));
      std::memcpy(f16.data() + 2 * i, &h, 2);
    }
    lowbit::GgufWriter g;
    g.set("general.architecture", "llama");
    g.set("llama.block_count", uint32_t{1});
    g.set("general.epsilon", 1e-5f);
    g.set("tokens", lowbit::GgufValue::array_of_strings(std::vector<std::string>(20, "t")));
    g.add_tensor("blk.0.attn_q.weight", {256, 4}, Format::Q4_K, q_);
    g.add_tensor("blk.0.attn_norm.weight", {8}, Format::F16, f16);
    const fs::path p = dir_ / "model.gguf";
    g.write(p);
    return p;
  }

  fs::path dir_;
  std::vector<float> w_;
  std::vector<std::byte> q_;
};

TEST_F(ModelFileTest, GgufTensorsMetadataAndValues) {
  const ModelFile m = ModelFile::open(write_gguf());
  EXPECT_EQ(m.container(), "gguf");
  ASSERT_EQ(m.tensors().size(), 2u);
  const ModelTensor& q = m.tensors()[0];
  EXPECT_EQ(q.name, "blk.0.attn_q.weight");
  EXPECT_EQ(q.shape, (std::vector<int64_t>{256, 4}));  // GGUF order: ne0 first
  EXPECT_EQ(q.type, "Q4_K");
  EXPECT_EQ(q.bytes, lowbit::quantized_size(Format::Q4_K, 4, 256));
  EXPECT_EQ(q.elements(), 1024);
  EXPECT_EQ(m.find("blk.0.attn_norm.weight"), &m.tensors()[1]);
  EXPECT_EQ(m.find("missing"), nullptr);
  EXPECT_TRUE(m.is_float(q));

  // read_f32 is lowbit::dequantize of the stored blocks.
  EXPECT_EQ(m.read_f32(q), lowbit::test::decode_matrix(Format::Q4_K, q_, 4, 256));
  const std::vector<float> norm = m.read_f32(m.tensors()[1]);
  ASSERT_EQ(norm.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(norm[i], 0.5f * float(i));

  // JSON: keys in file order, a float32 by its shortest decimal, arrays in full.
  const std::string json = m.metadata_json();
  EXPECT_NE(json.find(R"("general.architecture":"llama")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("llama.block_count":1)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("general.epsilon":1e-05)"), std::string::npos) << json;
  EXPECT_LT(json.find("general.architecture"), json.find("llama.block_count"));
  // Text: long arrays shortened to max_items.
  const auto text = m.metadata_text(3);
  ASSERT_EQ(text.size(), 4u);
  EXPECT_EQ(text[0], (std::pair<std::string, std::string>{"general.architecture", "\"llama\""}));
  EXPECT_EQ(text[3].second, R"(["t", "t", "t", ... (20 string items)])");
}

TEST_F(ModelFileTest, SafetensorsFileInItsOwnOrder) {
  lowbit::SafetensorsWriter s;
  s.set_metadata("format", "pt");
  const std::vector<float> v = {1, -2, 3, -4, 5, -6};
  s.add_float32("lm_head.weight", {2, 3}, v);
  const int64_t ids[2] = {7, 9};
  s.add("position_ids", lowbit::SafetensorsDtype::I64, {2},
        std::span<const std::byte>(reinterpret_cast<const std::byte*>(ids), sizeof ids));
  const fs::path p = dir_ / "model.bin";  // told by content, not by name
  s.write(p);

  const ModelFile m = ModelFile::open(p);
  EXPECT_EQ(m.container(), "safetensors");
  ASSERT_EQ(m.tensors().size(), 2u);
  const ModelTensor* w = m.find("lm_head.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 3}));  // the file's own order
  EXPECT_EQ(w->type, "F32");
  EXPECT_EQ(w->bytes, 24u);
  EXPECT_EQ(m.read_f32(*w), v);
  const ModelTensor* ids_t = m.find("position_ids");
  ASSERT_NE(ids_t, nullptr);
  EXPECT_EQ(ids_t->type, "I64");
  EXPECT_FALSE(m.is_float(*ids_t));
  EXPECT_EQ(m.metadata_json(), R"({"format":"pt"})");
}

TEST_F(ModelFileTest, UnreadableFilesAreErrorsNamingThePath) {
  const fs::path junk = dir_ / "junk.bin";
  std::ofstream(junk) << "neither GGUF nor safetensors";
  std::string msg = lowbit::test::error_of([&] { ModelFile::open(junk); });
  EXPECT_NE(msg.find("not GGUF either"), std::string::npos) << msg;
  msg = lowbit::test::error_of([&] { ModelFile::open(dir_); });
  EXPECT_NE(msg.find("is a directory"), std::string::npos) << msg;
  msg = lowbit::test::error_of([&] { ModelFile::open(dir_ / "missing.gguf"); });
  EXPECT_NE(msg.find("missing.gguf"), std::string::npos) << msg;
  // A model whose handle moved keeps working.
  ModelFile a = ModelFile::open(write_gguf());
  ModelFile b = std::move(a);
  EXPECT_EQ(b.tensors().size(), 2u);
}

TEST(ShapeString, BracketsAndCommas) {
  EXPECT_EQ(lowbit::shape_string(std::vector<int64_t>{4096, 11008}), "[4096, 11008]");
  EXPECT_EQ(lowbit::shape_string(std::vector<int64_t>{7}), "[7]");
  EXPECT_EQ(lowbit::shape_string(std::vector<int64_t>{}), "[]");
}

}  // namespace
