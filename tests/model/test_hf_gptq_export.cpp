// The Hugging Face GPTQ export (lowbit/model/hf_gptq_export.hpp) on the tiny synthetic
// llama: names, the q/k row order (derived here from llama.cpp's converter, not from
// lowbit's code), the dense fp16 tensors, config.json, the Hessians that true-sequential
// GPTQ feeds each block (against lowbit::calibrate on a model rebuilt here from the
// exported checkpoint), thread-count independence and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "lowbit/core/half.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/hf_checkpoint.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/model/calibrate.hpp"
#include "lowbit/model/hf_gptq_export.hpp"
#include "lowbit/model/llama.hpp"
#include "test_util.hpp"
#include "tiny_llama.hpp"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using test::error_of, test::kCtx, test::kEmbd, test::kFf, test::kHeadDim, test::kHeads, test::kKvHeads,
    test::kLayers, test::kTokens, test::make_model, test::text_of;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("lowbit_hfexport_" + name + "_" + std::to_string(getpid()))) {
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

const std::map<std::string, std::string> kModules = {
    {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"}, {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"}, {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"}};

HfGptqExportOptions options(int bits, int group) {
  HfGptqExportOptions o;
  o.gsq.bits = bits;
  o.gsq.group_size = group;
  o.calibration.text = text_of(5);  // 50 tokens + BOS: 3 windows of 16
  o.calibration.ctx = kCtx;
  return o;
}

std::vector<float> f32_of(const GgufFile& f, const std::string& name) {
  const GgufTensorInfo& t = f.tensor(name);
  std::vector<float> v(static_cast<size_t>(t.elements()));
  std::memcpy(v.data(), f.data(t).data(), v.size() * sizeof(float));  // the tiny model is F32
  return v;
}

// llama.cpp's convert_hf_to_gguf: w.reshape(heads, 2, d / 2, cols).swapaxes(1, 2) — GGUF
// row h*d + 2i + j is Hugging Face row h*d + j*d/2 + i.
int64_t gguf_row_of_hf(int64_t hf, int64_t d) {
  const int64_t h = hf / d, k = hf % d, j = k / (d / 2), i = k % (d / 2);
  return h * d + 2 * i + j;
}

std::vector<float> decoded(const HfGptqLayer& l) {
  const GsqResult r = from_hf_gptq(l.tensors);
  std::vector<float> w(static_cast<size_t>(r.rows * r.cols));
  gsq_dequantize(r, MatrixView<float>(w.data(), r.rows, r.cols));
  return w;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(HfGptqExport, LayersUnderTransformersNamesWithQkRowsInHuggingFaceOrder) {
  const auto m = make_model("hf_names");
  TempDir dir("names");
  const HfGptqExportReport rep = export_hf_gptq(m->path, dir.path, options(8, 32));
  EXPECT_EQ(rep.quantized_layers, 7 * kLayers);
  EXPECT_EQ(rep.format_version, 1);  // symmetric: AutoGPTQ's "gptq"
  const GgufFile src = GgufFile::open(m->path);
  const std::vector<HfGptqLayer> layers = load_hf_gptq_checkpoint(dir.path);
  ASSERT_EQ(layers.size(), size_t(7 * kLayers));
  std::map<std::string, const HfGptqLayer*> by_name;
  for (const HfGptqLayer& l : layers) by_name[l.name] = &l;
  for (int64_t il = 0; il < kLayers; ++il)
    for (const auto& [gguf, module] : kModules) {
      const std::string hf = "model.layers." + std::to_string(il) + "." + module;
      ASSERT_TRUE(by_name.contains(hf)) << hf;
      const HfGptqLayer& l = *by_name.at(hf);
      const GgufTensorInfo& t = src.tensor("blk." + std::to_string(il) + "." + gguf + ".weight");
      const int64_t rows = t.rows(), cols = t.row_length();
      ASSERT_EQ(l.tensors.out_features, rows) << hf;
      ASSERT_EQ(l.tensors.in_features, cols) << hf;
      const std::vector<float> w = f32_of(src, t.name), q = decoded(l);
      const bool permuted = gguf == "attn_q" || gguf == "attn_k";
      // 8-bit codes: each decoded row lies close to its source row and to no other.
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t want = permuted ? gguf_row_of_hf(r, kHeadDim) : r;
        double best = 1e30, at_want = 0, norm = 0;
        int64_t best_row = -1;
        for (int64_t s = 0; s < rows; ++s) {
          double e = 0;
          for (int64_t c = 0; c < cols; ++c) {
            const double d = double(q[r * cols + c]) - w[s * cols + c];
            e += d * d;
          }
          if (e < best) best = e, best_row = s;
          if (s == want) at_want = e;
        }
        for (int64_t c = 0; c < cols; ++c) norm += double(w[want * cols + c]) * w[want * cols + c];
        EXPECT_EQ(best_row, want) << hf << " row " << r;
        EXPECT_LT(at_want, 1e-3 * norm) << hf << " row " << r;
      }
    }
}

TEST(HfGptqExport, DenseTensorsInFp16AndConfigFromTheGguf) {
  const auto m = make_model("hf_dense");
  TempDir dir("dense");
  export_hf_gptq(m->path, dir.path, options(4, 32));
  const GgufFile src = GgufFile::open(m->path);
  const SafetensorsFile st = SafetensorsFile::open(dir.path / "model.safetensors");
  std::map<std::string, std::string> dense = {{"token_embd.weight", "model.embed_tokens.weight"},
                                              {"output_norm.weight", "model.norm.weight"}};
  for (int il = 0; il < kLayers; ++il) {
    dense["blk." + std::to_string(il) + ".attn_norm.weight"] = "model.layers." + std::to_string(il) + ".input_layernorm.weight";
    dense["blk." + std::to_string(il) + ".ffn_norm.weight"] =
        "model.layers." + std::to_string(il) + ".post_attention_layernorm.weight";
  }
  EXPECT_EQ(st.tensors().size(), dense.size() + 4 * 7 * kLayers);
  for (const auto& [g, h] : dense) {
    const SafetensorsTensor& t = st.tensor(h);
    const GgufTensorInfo& gt = src.tensor(g);
    ASSERT_EQ(t.dtype, SafetensorsDtype::F16) << h;
    std::vector<uint64_t> want_shape;
    for (auto it = gt.shape.rbegin(); it != gt.shape.rend(); ++it) want_shape.push_back(uint64_t(*it));
    EXPECT_EQ(t.shape, want_shape) << h;
    const std::vector<float> w = f32_of(src, g);
    ASSERT_EQ(t.data.size(), w.size() * 2) << h;
    for (size_t k = 0; k < w.size(); ++k) {
      uint16_t bits;
      std::memcpy(&bits, t.data.data() + 2 * k, 2);
      ASSERT_EQ(bits, fp32_to_fp16(w[k])) << h << " element " << k;
    }
  }
  EXPECT_EQ(st.find("lm_head.weight"), nullptr);  // tied output

  const auto cfg = nlohmann::json::parse(read_file(dir.path / "config.json"));
  EXPECT_EQ(cfg["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(cfg["hidden_size"], kEmbd);
  EXPECT_EQ(cfg["intermediate_size"], kFf);
  EXPECT_EQ(cfg["num_hidden_layers"], kLayers);
  EXPECT_EQ(cfg["num_attention_heads"], kHeads);
  EXPECT_EQ(cfg["num_key_value_heads"], kKvHeads);
  EXPECT_EQ(cfg["head_dim"], kHeadDim);
  EXPECT_EQ(cfg["vocab_size"], kTokens.size());
  EXPECT_EQ(cfg["tie_word_embeddings"], true);
  EXPECT_DOUBLE_EQ(cfg["rms_norm_eps"].get<double>(), 1e-5);
  EXPECT_DOUBLE_EQ(cfg["rope_theta"].get<double>(), 10000.0);
  const auto qc = nlohmann::json::parse(read_file(dir.path / "quantize_config.json"));
  EXPECT_EQ(cfg["quantization_config"], qc);
  EXPECT_EQ(qc["bits"], 4);
  EXPECT_EQ(qc["group_size"], 32);
  EXPECT_EQ(qc["sym"], true);
  EXPECT_EQ(qc["checkpoint_format"], "gptq");
}

// Block 1's q/k/v Hessian must be the one lowbit::calibrate measures on the source model
// with block 0's seven weights replaced by the checkpoint's decoded ones, put back in
// GGUF order here: the runtime went on with exactly what the checkpoint holds.
TEST(HfGptqExport, LaterBlocksSeeTheExportedWeights) {
  const auto m = make_model("hf_hess");
  TempDir dir("hess");
  HfGptqExportOptions o = options(3, 32);
  o.gsq.scheme = GsqScheme::asymmetric;
  o.gptq.act_order = true;
  std::map<std::string, std::shared_ptr<const HessianAccumulator>> seen;
  o.calibration.on_hessian = [&](const std::string& w, const std::shared_ptr<const HessianAccumulator>& h) {
    seen[w] = h;
  };
  const HfGptqExportReport rep = export_hf_gptq(m->path, dir.path, o);
  EXPECT_EQ(rep.format_version, 2);  // asymmetric: v1 cannot store a zero of 0
  ASSERT_EQ(seen.size(), size_t(7 * kLayers));

  const GgufFile src = GgufFile::open(m->path);
  std::map<std::string, const HfGptqLayer*> by_name;
  const std::vector<HfGptqLayer> layers = load_hf_gptq_checkpoint(dir.path);
  for (const HfGptqLayer& l : layers) by_name[l.name] = &l;
  GgufWriter w;
  w.copy_metadata(src);
  for (const GgufTensorInfo& t : src.tensors()) {
    const std::string prefix = "blk.0.";
    const std::string part = t.name.starts_with(prefix) ? t.name.substr(6, t.name.size() - 6 - 7) : "";
    if (!kModules.contains(part)) {
      w.add_tensor(t.name, t.shape, t.format, src.data(t));
      continue;
    }
    const HfGptqLayer& l = *by_name.at("model.layers.0." + kModules.at(part));
    EXPECT_FALSE(l.tensors.g_idx.empty());
    const std::vector<float> hf = decoded(l);
    const int64_t rows = t.rows(), cols = t.row_length();
    std::vector<float> g(hf.size());
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t dst = (part == "attn_q" || part == "attn_k") ? gguf_row_of_hf(r, kHeadDim) : r;
      std::copy_n(hf.data() + r * cols, cols, g.data() + dst * cols);
    }
    std::vector<std::byte> bytes(g.size() * sizeof(float));
    std::memcpy(bytes.data(), g.data(), bytes.size());
    w.add_tensor(t.name, t.shape, Format::F32, std::move(bytes));
  }
  const fs::path mixed = dir.path.string() + "_mixed.gguf";
  w.write(mixed);
  CalibrationOptions co;
  co.ctx = kCtx;
  co.hessians = true;
  const Calibration c = calibrate(LlamaModel::load(mixed), text_of(5), co);
  fs::remove(mixed);
  const std::vector<float> want = c.hessians.at("blk.1.attn_q.weight")->matrix();
  const std::vector<float> got = seen.at("blk.1.attn_q.weight")->matrix();
  ASSERT_EQ(want.size(), got.size());
  double scale = 0, diff = 0;
  for (size_t k = 0; k < want.size(); ++k) {
    scale = std::max(scale, double(std::fabs(want[k])));
    diff = std::max(diff, double(std::fabs(want[k] - got[k])));
  }
  EXPECT_LE(diff, 1e-5 * scale);
  // And not the unquantized model's: block 0 really changed.
  const Calibration one_shot = calibrate(LlamaModel::load(m->path), text_of(5), co);
  const std::vector<float> orig = one_shot.hessians.at("blk.1.attn_q.weight")->matrix();
  double moved = 0;
  for (size_t k = 0; k < orig.size(); ++k) moved = std::max(moved, double(std::fabs(orig[k] - got[k])));
  EXPECT_GT(moved, 1e-4 * scale);
}

TEST(HfGptqExport, SameBytesAtAnyThreadCount) {
  const auto m = make_model("hf_threads");
  TempDir a("threads_a"), b("threads_b");
  HfGptqExportOptions o = options(4, 32);
  o.threads = 1;
  export_hf_gptq(m->path, a.path, o);
  o.threads = 2;
  export_hf_gptq(m->path, b.path, o);
  for (const char* f : {"model.safetensors", "quantize_config.json", "config.json"})
    EXPECT_EQ(read_file(a.path / f), read_file(b.path / f)) << f;
}

TEST(HfGptqExport, RefusesWhatACheckpointCannotHoldBeforeWriting) {
  const auto m = make_model("hf_bad");
  TempDir dir("bad");
  // 64 input features hold no group of 128: named, with the sizes that fit.
  std::string e = error_of([&] { export_hf_gptq(m->path, dir.path, options(4, 128)); });
  EXPECT_NE(e.find("blk.0."), std::string::npos) << e;
  EXPECT_NE(e.find("group sizes that fit: 64, 32"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(dir.path));
  e = error_of([&] { export_hf_gptq(m->path, dir.path, options(5, 32)); });
  EXPECT_NE(e.find("5-bit"), std::string::npos) << e;
  HfGptqExportOptions o = options(4, 32);
  o.gsq.scheme = GsqScheme::asymmetric_float;
  e = error_of([&] { export_hf_gptq(m->path, dir.path, o); });
  EXPECT_NE(e.find("float minimums"), std::string::npos) << e;
  o = options(4, 32);
  o.format_version = 3;
  EXPECT_NE(error_of([&] { export_hf_gptq(m->path, dir.path, o); }).find("version 3"), std::string::npos);
  o = options(4, 32);
  o.calibration.text = text_of(1);  // 11 tokens: no window of 16
  EXPECT_NE(error_of([&] { export_hf_gptq(m->path, dir.path, o); }).find("fewer than one window"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.path));

  // A tensor LlamaForCausalLM has no name for (one the runtime ignores, and one it
  // refuses itself).
  for (const char* name : {"blk.0.attn_extra.weight", "blk.0.attn_q.bias"}) {
    const auto extra = make_model("hf_extra", [&](GgufWriter& w) {
      std::vector<std::byte> b(kEmbd * sizeof(float));
      w.add_tensor(name, {kEmbd}, Format::F32, std::move(b));
    });
    e = error_of([&] { export_hf_gptq(extra->path, dir.path, options(4, 32)); });
    EXPECT_NE(e.find(name), std::string::npos) << e;
  }
  // Another architecture is named by the runtime.
  const auto arch = make_model("hf_arch", [](GgufWriter& w) { w.set("general.architecture", "gemma3"); });
  EXPECT_NE(error_of([&] { export_hf_gptq(arch->path, dir.path, options(4, 32)); }).find("gemma3"),
            std::string::npos);
  // Found during the work: a dense tensor beyond fp16's range. No model.safetensors,
  // and the folder this call created is gone again.
  {
    const GgufFile src = GgufFile::open(m->path);
    GgufWriter w;
    w.copy_metadata(src);
    for (const GgufTensorInfo& t : src.tensors()) {
      if (t.name != "output_norm.weight") {
        w.add_tensor(t.name, t.shape, t.format, src.data(t));
        continue;
      }
      std::vector<float> v(static_cast<size_t>(t.elements()), 1.0f);
      v[5] = 1e6f;
      std::vector<std::byte> b(v.size() * sizeof(float));
      std::memcpy(b.data(), v.data(), b.size());
      w.add_tensor(t.name, t.shape, Format::F32, std::move(b));
    }
    const fs::path huge = dir.path.string() + "_huge.gguf";
    w.write(huge);
    e = error_of([&] { export_hf_gptq(huge, dir.path, options(4, 32)); });
    fs::remove(huge);
    EXPECT_NE(e.find("'output_norm.weight' holds 1000000"), std::string::npos) << e;
    EXPECT_FALSE(fs::exists(dir.path));
  }
  // The output is a file, not a folder.
  std::ofstream(dir.path) << "x";
  EXPECT_NE(error_of([&] { export_hf_gptq(m->path, dir.path, options(4, 32)); }).find("not a folder"),
            std::string::npos);
  fs::remove(dir.path);
}

TEST(HfGptqExport, TensorNames) {
  EXPECT_EQ(hf_llama_tensor_name("blk.12.attn_k.weight"), "model.layers.12.self_attn.k_proj.weight");
  EXPECT_EQ(hf_llama_tensor_name("blk.0.ffn_down.weight"), "model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(hf_llama_tensor_name("blk.3.ffn_norm.weight"), "model.layers.3.post_attention_layernorm.weight");
  EXPECT_EQ(hf_llama_tensor_name("output.weight"), "lm_head.weight");
  EXPECT_EQ(hf_llama_tensor_name("blk.x.attn_q.weight"), "");
  EXPECT_EQ(hf_llama_tensor_name("blk.0.attn_q.bias"), "");
  EXPECT_EQ(hf_llama_tensor_name("rope_freqs.weight"), "");
}

}  // namespace
}  // namespace lowbit
