// HF GPTQ checkpoints on disk: GPTQ -> HF tensors -> model.safetensors +
// quantize_config.json -> back, lossless.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lowbit/lowbit.hpp"
#include "test_util.hpp"

namespace {

using namespace lowbit;
using lowbit::test::error_of;

struct TempDir {
  std::filesystem::path path;
  TempDir() : path(std::filesystem::path(::testing::TempDir()) / ("lowbit_hf_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

GsqResult gptq_layer(int64_t rows, int64_t cols, uint64_t seed, const GsqConfig& g, const GptqConfig& cfg) {
  auto w = synthetic_weights(rows, cols, seed);
  auto x = synthetic_activations(512, cols, seed + 1);
  HessianAccumulator h(cols);
  h.add({x.data(), 512, cols});
  GsqTarget t(g);
  gptq_solve(cfg, {w.data(), rows, cols}, h, t);
  return t.result();
}

TEST(HfCheckpoint, SavesTheHfLayoutAndLoadsItBackLosslessly) {
  TempDir dir;
  GsqConfig g;
  g.bits = 4, g.group_size = 64, g.scheme = GsqScheme::asymmetric, g.search = ScaleSearch::rtn;
  GptqConfig cfg;
  cfg.act_order = true;
  const GsqResult q = gptq_layer(64, 256, 1, g, cfg), k = gptq_layer(32, 256, 2, g, cfg);
  const std::vector<HfGptqLayer> layers = {{"model.layers.0.self_attn.q_proj", to_hf_gptq(q, 2)},
                                           {"model.layers.0.self_attn.k_proj", to_hf_gptq(k, 2)}};
  save_hf_gptq_checkpoint(dir.path, layers, g, cfg, 2);

  // The file holds the four tensors per layer in the HF dtypes and shapes.
  const auto st = SafetensorsFile::open(dir.path / "model.safetensors");
  const auto& qw = st.tensor("model.layers.0.self_attn.q_proj.qweight");
  EXPECT_EQ(qw.dtype, SafetensorsDtype::I32);
  EXPECT_EQ(qw.shape, (std::vector<uint64_t>{256 * 4 / 32, 64}));
  EXPECT_EQ(st.tensor("model.layers.0.self_attn.q_proj.qzeros").shape, (std::vector<uint64_t>{4, 64 * 4 / 32}));
  EXPECT_EQ(st.tensor("model.layers.0.self_attn.k_proj.scales").dtype, SafetensorsDtype::F16);
  EXPECT_EQ(st.tensor("model.layers.0.self_attn.k_proj.scales").shape, (std::vector<uint64_t>{4, 32}));
  EXPECT_EQ(st.tensor("model.layers.0.self_attn.k_proj.g_idx").shape, (std::vector<uint64_t>{256}));
  std::ifstream cfg_file(dir.path / "quantize_config.json");
  std::stringstream json;
  json << cfg_file.rdbuf();
  EXPECT_NE(json.str().find("\"desc_act\": true"), std::string::npos) << json.str();
  EXPECT_NE(json.str().find("\"checkpoint_format\": \"gptq_v2\""), std::string::npos);

  const auto back = load_hf_gptq_checkpoint(dir.path);
  ASSERT_EQ(back.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const GsqResult& orig = i == 0 ? q : k;
    const auto it = std::find_if(back.begin(), back.end(), [&](const HfGptqLayer& l) { return l.name == layers[i].name; });
    ASSERT_NE(it, back.end()) << layers[i].name;
    const GsqResult r = from_hf_gptq(it->tensors);
    std::vector<float> a(orig.rows * orig.cols), b(a.size());
    gsq_dequantize(orig, {a.data(), orig.rows, orig.cols});
    gsq_dequantize(r, {b.data(), r.rows, r.cols});
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4)) << layers[i].name;
  }
}

TEST(HfCheckpoint, MismatchesAndMissingFilesAreErrors) {
  TempDir dir;
  GsqConfig g;
  g.bits = 4, g.group_size = 64, g.scheme = GsqScheme::symmetric, g.search = ScaleSearch::rtn;
  const GsqResult q = gptq_layer(32, 128, 3, g, GptqConfig{});
  GsqConfig other = g;
  other.bits = 3;
  const std::vector<HfGptqLayer> layers = {{"proj", to_hf_gptq(q, 2)}};
  EXPECT_NE(error_of([&] { save_hf_gptq_checkpoint(dir.path, layers, other, GptqConfig{}, 2); }).find("layer 'proj'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_hf_gptq_checkpoint(dir.path); }).find("quantize_config.json"), std::string::npos);
  // v1 (AutoGPTQ's default when checkpoint_format is absent) round-trips too.
  const std::vector<HfGptqLayer> v1 = {{"proj", to_hf_gptq(q, 1)}};
  save_hf_gptq_checkpoint(dir.path, v1, g, GptqConfig{}, 1);
  const auto back = load_hf_gptq_checkpoint(dir.path);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].tensors.format_version, 1);
  EXPECT_EQ(from_hf_gptq(back[0].tensors).zeros, q.zeros);
}

}  // namespace
