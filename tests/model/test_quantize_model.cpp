// lowbit::plan_model_quantization / quantize_model with in-memory inputs (an imatrix
// as a map, Hessians as objects) on a tiny llama-shaped GGUF, checked against
// expectations worked out independently: llama-quantize's types for the model (as in
// tests/cli/run_cli_smoke.cmake), sizes from quantized_size, the bytes of
// lowbit::quantize / gsq_quantize called directly, and measured errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/core/metrics.hpp"
#include "lowbit/io/model_file.hpp"
#include "lowbit/core/synthetic.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/gsq/ggml_mapping.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/model/quantize_model.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace lowbit;

namespace {

// 8 layers, width 256, 8 query heads over 2 KV heads (GQA 4), FFN width 320 (so
// ffn_down's rows fall back from 256-element formats), F16 token_embd, untied output.
constexpr int64_t kLayers = 8, kEmbd = 256, kKv = 64, kFfn = 320, kVocab = 64;

struct Source {
  std::vector<int64_t> shape;  // GGUF order
  std::vector<float> values;   // as stored (F16 values exactly representable)
  int64_t rows() const { return shape.size() < 2 ? 1 : shape[1]; }
  int64_t cols() const { return shape[0]; }
};

class QuantizeModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("lowbit_test_quantize_model_" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    sources_ = new std::map<std::string, Source>;
    GgufWriter w;
    w.set("general.architecture", "llama");
    w.set("llama.block_count", uint32_t{kLayers});
    w.set("llama.embedding_length", uint32_t{kEmbd});
    w.set("llama.attention.head_count", uint32_t{8});
    w.set("llama.attention.head_count_kv", uint32_t{2});
    w.set("general.file_type", uint32_t{0});
    w.set("split.count", uint16_t{1});  // shard bookkeeping: dropped from the output
    uint64_t seed = 1;
    auto add_f32 = [&](const std::string& name, int64_t cols, int64_t rows) {
      Source s{{cols, rows}, synthetic_weights(rows, cols, seed++)};
      std::vector<std::byte> bytes(s.values.size() * 4);
      std::memcpy(bytes.data(), s.values.data(), bytes.size());
      w.add_tensor(name, s.shape, Format::F32, std::move(bytes));
      (*sources_)[name] = std::move(s);
    };
    {
      Source s{{kEmbd, kVocab}, synthetic_weights(kVocab, kEmbd, seed++)};
      std::vector<std::byte> bytes(s.values.size() * 2);
      for (size_t i = 0; i < s.values.size(); ++i) {
        const uint16_t h = fp32_to_fp16(s.values[i]);
        s.values[i] = fp16_to_fp32(h);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
      }
      w.add_tensor("token_embd.weight", s.shape, Format::F16, std::move(bytes));
      (*sources_)["token_embd.weight"] = std::move(s);
    }
    for (int64_t l = 0; l < kLayers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      std::vector<std::byte> norm(kEmbd * 4);
      const float one = 1.0f;
      for (int64_t i = 0; i < kEmbd; ++i) std::memcpy(norm.data() + 4 * i, &one, 4);
      w.add_tensor(p + "attn_norm.weight", {kEmbd}, Format::F32, std::move(norm));
      add_f32(p + "attn_q.weight", kEmbd, kEmbd);
      add_f32(p + "attn_k.weight", kEmbd, kKv);
      add_f32(p + "attn_v.weight", kEmbd, kKv);
      add_f32(p + "attn_output.weight", kEmbd, kEmbd);
      add_f32(p + "ffn_gate.weight", kEmbd, kFfn);
      add_f32(p + "ffn_up.weight", kEmbd, kFfn);
      add_f32(p + "ffn_down.weight", kFfn, kEmbd);
    }
    add_f32("output.weight", kEmbd, kVocab);
    w.write(*dir_ / "tiny.gguf");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete sources_;
  }

  static GgufFile open_model() { return GgufFile::open(*dir_ / "tiny.gguf"); }
  static const Source& source(const std::string& name) { return sources_->at(name); }

  // An importance vector for every linear weight (strongly non-uniform, so it matters).
  static ImportanceMap imatrix() {
    ImportanceMap m;
    uint64_t seed = 100;
    for (const auto& [name, s] : *sources_) m[name] = synthetic_importance(s.cols(), seed++);
    return m;
  }

  static QuantizeModelOptions options(const char* scheme) {
    return QuantizeModelOptions{*quant_scheme_from_name(scheme)};
  }

  // Runs the pipeline and reads the result back as a GGUF file.
  static GgufFile run(const GgufFile& in, const QuantizeModelOptions& o, const std::string& out_name) {
    const QuantizePlan plan = plan_model_quantization(in, o);
    const fs::path out = *dir_ / out_name;
    quantize_model(in, plan, o).write(out);
    return GgufFile::open(out);
  }

  static std::vector<float> decode(const GgufFile& f, const std::string& name) {
    const GgufTensorInfo& t = f.tensor(name);
    std::vector<float> out(static_cast<size_t>(t.elements()));
    dequantize(t.format, f.data(t), {out.data(), t.rows(), t.row_length()});
    return out;
  }
  static std::vector<std::byte> bytes(const GgufFile& f, const std::string& name) {
    const auto d = f.data(f.tensor(name));
    return {d.begin(), d.end()};
  }

  static inline fs::path* dir_ = nullptr;
  static inline std::map<std::string, Source>* sources_ = nullptr;
};

PlannedTensor planned(const QuantizePlan& plan, const std::string& name) {
  for (const PlannedTensor& t : plan.tensors)
    if (t.name == name) return t;
  ADD_FAILURE() << name << " is not in the plan";
  return {};
}

// llama-quantize's Q4_K_M for this model (docs/cli.md): attn_v and ffn_down get more
// bits in layers 0, 3, 6, 7 (n = 8); ffn_down's 320-element rows do not fit 256-element
// formats, so Q6_K falls back to Q8_0 and Q4_K to Q5_0; output.weight gets Q6_K.
Format expected_q4_k_m(const std::string& name) {
  if (name.ends_with("_norm.weight")) return Format::F32;
  if (name == "output.weight") return Format::Q6_K;
  const bool more = name.starts_with("blk.0.") || name.starts_with("blk.3.") || name.starts_with("blk.6.") ||
                    name.starts_with("blk.7.");
  if (name.ends_with("attn_v.weight")) return more ? Format::Q6_K : Format::Q4_K;
  if (name.ends_with("ffn_down.weight")) return more ? Format::Q8_0 : Format::Q5_0;
  return Format::Q4_K;
}

TEST_F(QuantizeModel, PlanHasLlamaQuantizeTypesAndSizes) {
  const GgufFile in = open_model();
  const QuantizePlan plan = plan_model_quantization(in, options("Q4_K_M"));
  ASSERT_EQ(plan.tensors.size(), in.tensors().size());
  EXPECT_EQ(plan.tensors.size(), 2u + 8u * kLayers);
  EXPECT_EQ(plan.model.n_layer, kLayers);
  EXPECT_EQ(plan.model.n_gqa(), 4);
  EXPECT_FALSE(plan.model.has_imatrix);
  EXPECT_EQ(plan.fallbacks, kLayers);  // every ffn_down
  int64_t work = 0, elements = 0;
  uint64_t out_total = 0;
  for (const PlannedTensor& t : plan.tensors) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.to(), expected_q4_k_m(t.name));
    EXPECT_EQ(t.plan.fallback_from.has_value(), t.name.ends_with("ffn_down.weight"));
    const int64_t rows = t.shape.size() < 2 ? 1 : t.shape[1];
    EXPECT_EQ(t.bytes_out, t.converts() ? quantized_size(t.to(), rows, t.shape[0]) : t.bytes_in);
    EXPECT_TRUE(t.importance.empty());
    if (t.converts()) work += t.elements();
    elements += t.elements();
    out_total += t.bytes_out;
  }
  EXPECT_EQ(plan.work, elements - kLayers * kEmbd);  // everything but the norms
  EXPECT_EQ(plan.elements, elements);
  EXPECT_EQ(plan.bytes_out, out_total);
}

TEST_F(QuantizeModel, InMemoryImatrixGivesTheBytesOfLowbitQuantize) {
  const GgufFile in = open_model();
  QuantizeModelOptions o = options("Q4_K_M");
  o.imatrix = imatrix();
  std::vector<std::string> seen;
  int64_t last_done = 0, total = -1;
  o.on_tensor = [&](const PlannedTensor& t) { seen.push_back(t.name); };
  o.progress = [&](int64_t done, int64_t of) {
    EXPECT_GE(done, last_done);
    last_done = done, total = of;
  };
  const QuantizePlan plan = plan_model_quantization(in, o);
  EXPECT_TRUE(plan.model.has_imatrix);
  const fs::path out_path = *dir_ / "q4_k_m.gguf";
  quantize_model(in, plan, o).write(out_path);
  const GgufFile out = GgufFile::open(out_path);
  EXPECT_EQ(last_done, plan.work);
  EXPECT_EQ(total, plan.work);
  ASSERT_EQ(seen.size(), in.tensors().size());
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], in.tensors()[i].name);

  EXPECT_EQ(out.at("general.file_type").get<uint32_t>(), 15u);
  EXPECT_EQ(out.at("general.quantization_version").get<uint32_t>(), 2u);
  EXPECT_EQ(out.at("general.architecture").as_string(), "llama");
  EXPECT_EQ(out.find("split.count"), nullptr);

  const ImportanceMap imp = imatrix();
  ASSERT_EQ(out.tensors().size(), in.tensors().size());
  for (const GgufTensorInfo& t : out.tensors()) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.format, expected_q4_k_m(t.name));
    EXPECT_EQ(t.shape, in.tensor(t.name).shape);
    if (t.format == Format::F32) continue;  // norms, copied
    const Source& s = source(t.name);
    EXPECT_EQ(t.nbytes, quantized_size(t.format, s.rows(), s.cols()));
    // The pipeline's rtn path is lowbit::quantize with the tensor's importance.
    EXPECT_EQ(bytes(out, t.name), test::encode(t.format, s.values, s.rows(), s.cols(), imp.at(t.name)));
    // Decoded values are close to the source (Q4_K's few percent at worst).
    EXPECT_LT(relative_rmse({s.values.data(), s.rows(), s.cols()}, {decode(out, t.name).data(), s.rows(), s.cols()}),
              0.12);
  }
}

// ImportanceObjective::ggml_blend: each row is lowbit::quantize with the weights
// importance[col] x sqrt(sigma2 + w^2), sigma2 = 2 x mean(w^2) over the element's
// super-block (256-element formats) or row (32-element formats), computed here in
// double; at effort fast (ggml's own search, which blends by itself) nothing changes.
TEST_F(QuantizeModel, BlendedImatrixObjectiveIsGgmlsWeighting) {
  const GgufFile in = open_model();
  QuantizeModelOptions o = options("Q4_K_M");
  o.imatrix = imatrix();
  o.importance_objective = ImportanceObjective::ggml_blend;
  const GgufFile out = run(in, o, "blend.gguf");
  const ImportanceMap imp = imatrix();
  int checked = 0;
  for (const GgufTensorInfo& t : out.tensors()) {
    if (t.format == Format::F32) continue;
    SCOPED_TRACE(t.name);
    const Source& s = source(t.name);
    const int64_t span = traits(t.format).block_elems >= 256 ? traits(t.format).block_elems : s.cols();
    std::vector<std::byte> want;
    for (int64_t r = 0; r < s.rows(); ++r) {
      const float* x = s.values.data() + r * s.cols();
      std::vector<float> w(static_cast<size_t>(s.cols()));
      for (int64_t b = 0; b < s.cols(); b += span) {
        double sum = 0;
        for (int64_t j = b; j < b + span; ++j) sum += double(x[j]) * x[j];
        for (int64_t j = b; j < b + span; ++j)
          w[static_cast<size_t>(j)] = static_cast<float>(double(imp.at(t.name)[static_cast<size_t>(j)]) *
                                                         std::sqrt(2.0 * sum / double(span) + double(x[j]) * x[j]));
      }
      const std::vector<float> row(x, x + s.cols());
      const std::vector<std::byte> b = test::encode(t.format, row, 1, s.cols(), w);
      want.insert(want.end(), b.begin(), b.end());
    }
    EXPECT_EQ(bytes(out, t.name), want);
    EXPECT_NE(bytes(out, t.name), test::encode(t.format, s.values, s.rows(), s.cols(), imp.at(t.name)));
    ++checked;
  }
  EXPECT_GT(checked, 3);
  o.effort = QuantizeEffort::fast;
  QuantizeModelOptions pure = o;
  pure.importance_objective = ImportanceObjective::pure;
  const GgufFile fb = run(in, o, "blend_fast.gguf"), fp = run(in, pure, "pure_fast.gguf");
  for (const GgufTensorInfo& t : fb.tensors()) EXPECT_EQ(bytes(fb, t.name), bytes(fp, t.name)) << t.name;
}

TEST_F(QuantizeModel, ImatrixChangesTheOutputAndLowersWeightedError) {
  const GgufFile in = open_model();
  QuantizeModelOptions with = options("Q4_K_M"), without = options("Q4_K_M");
  with.imatrix = imatrix();
  const GgufFile a = run(in, with, "with.gguf"), b = run(in, without, "without.gguf");
  const ImportanceMap imp = imatrix();
  double err_with = 0, err_without = 0;
  int differ = 0;
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string name = "blk." + std::to_string(l) + ".attn_q.weight";
    const Source& s = source(name);
    differ += bytes(a, name) != bytes(b, name);
    const std::vector<float> qa = decode(a, name), qb = decode(b, name);
    err_with += relative_rmse({s.values.data(), s.rows(), s.cols()}, {qa.data(), s.rows(), s.cols()}, imp.at(name));
    err_without += relative_rmse({s.values.data(), s.rows(), s.cols()}, {qb.data(), s.rows(), s.cols()}, imp.at(name));
  }
  EXPECT_EQ(differ, kLayers);
  EXPECT_LT(err_with, 0.95 * err_without);
  // The imatrix-dependent rules switch on: Q4_0's first eighth of ffn_down gets Q4_1.
  QuantizeModelOptions q40 = options("Q4_0");
  q40.imatrix = ImportanceMap{};  // given, even empty
  EXPECT_EQ(planned(plan_model_quantization(in, q40), "blk.0.ffn_down.weight").to(), Format::Q4_1);
  EXPECT_EQ(planned(plan_model_quantization(in, options("Q4_0")), "blk.0.ffn_down.weight").to(), Format::Q4_0);
}

TEST_F(QuantizeModel, BytesDoNotDependOnThreads) {
  const GgufFile in = open_model();
  QuantizeModelOptions one = options("Q4_K_M"), all = options("Q4_K_M");
  one.imatrix = all.imatrix = imatrix();
  one.threads = 1;
  const QuantizePlan plan = plan_model_quantization(in, one);
  EXPECT_EQ(quantize_model(in, plan, one).serialize(), quantize_model(in, plan, all).serialize());
}

TEST_F(QuantizeModel, GsqWritesTheBlocksOfItsEquivalentConfiguration) {
  const GgufFile in = open_model();
  QuantizeModelOptions o = options("Q8_0");
  o.method = QuantMethod::gsq;
  const GgufFile out = run(in, o, "gsq.gguf");
  const std::string name = "blk.2.attn_output.weight";
  const Source& s = source(name);
  ASSERT_EQ(out.tensor(name).format, Format::Q8_0);
  const GsqResult q = gsq_quantize(*gsq_config_for(Format::Q8_0), {s.values.data(), s.rows(), s.cols()});
  EXPECT_EQ(bytes(out, name), to_ggml_blocks(q));
  // Q4_K_M needs K-quants that GSQ cannot write: an error before any work.
  o.scheme = *quant_scheme_from_name("Q4_K_M");
  const std::string msg = test::error_of([&] { plan_model_quantization(in, o); });
  EXPECT_NE(msg.find("token_embd.weight' needs type Q4_K"), std::string::npos) << msg;
}

TEST_F(QuantizeModel, GptqWithInMemoryHessiansBeatsRtnOnLayerOutput) {
  const GgufFile in = open_model();
  const std::string name = "blk.1.attn_q.weight";
  const Source& s = source(name);
  HessianAccumulator h(s.cols());
  const std::vector<float> x = synthetic_activations(512, s.cols(), 9);
  h.add({x.data(), 512, s.cols()});
  std::map<std::string, HessianAccumulator, std::less<>> hessians;
  hessians.emplace(name, h);

  QuantizeModelOptions gptq = options("Q4_K_M");
  gptq.method = QuantMethod::gptq;
  gptq.hessians = hessians_from_map(std::move(hessians));
  const GgufFile g = run(in, gptq, "gptq.gguf");
  const GgufFile r = run(in, options("Q4_K_M"), "rtn.gguf");
  const std::vector<float> qg = decode(g, name), qr = decode(r, name);
  const ConstMatrixView<float> w(s.values.data(), s.rows(), s.cols());
  const double eg = layer_output_error(w, {qg.data(), s.rows(), s.cols()}, h.upper());
  const double er = layer_output_error(w, {qr.data(), s.rows(), s.cols()}, h.upper());
  EXPECT_LT(eg, er);
  // Tensors without a Hessian are quantized with rtn: the same bytes as the rtn run.
  EXPECT_EQ(bytes(g, "blk.2.attn_q.weight"), bytes(r, "blk.2.attn_q.weight"));

  // A Hessian of the wrong size is an error naming the tensor.
  std::map<std::string, HessianAccumulator, std::less<>> wrong;
  wrong.emplace(name, HessianAccumulator(32));
  gptq.hessians = hessians_from_map(std::move(wrong));
  const std::string msg = test::error_of([&] { run(in, gptq, "never.gguf"); });
  EXPECT_NE(msg.find("tensor '" + name + "' (F32 -> Q4_K): Hessian for 32 columns"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(*dir_ / "never.gguf"));
}

TEST_F(QuantizeModel, ImatrixOfTheWrongLengthIsAnError) {
  const GgufFile in = open_model();
  QuantizeModelOptions o = options("Q4_K_M");
  o.imatrix = ImportanceMap{{"blk.0.attn_k.weight", std::vector<float>(100, 1.0f)}};
  const std::string msg = test::error_of([&] { plan_model_quantization(in, o); });
  EXPECT_NE(msg.find("imatrix entry 'blk.0.attn_k.weight' has 100 values"), std::string::npos) << msg;
  // ... except on token_embd, where llama-quantize ignores it too.
  o.imatrix = ImportanceMap{{"token_embd.weight", std::vector<float>(100, 1.0f)}};
  const QuantizePlan plan = plan_model_quantization(in, o);
  EXPECT_TRUE(planned(plan, "token_embd.weight").importance.empty());
}

// A tensor with no elements but a huge other dimension (0 x 2^62) is legal GGUF; it
// must pass through as an empty tensor at once, not loop over 2^62 empty rows.
TEST_F(QuantizeModel, EmptyTensorWithHugeDimensionPassesThroughAtOnce) {
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("llama.block_count", uint32_t{1});
  w.add_tensor("blk.0.attn_q.weight", {0, int64_t{1} << 62}, Format::F32, std::vector<std::byte>{});
  w.add_tensor("blk.0.attn_k.weight", {256, 4}, Format::F32, std::vector<std::byte>(256 * 4 * 4));
  w.write(*dir_ / "empty.gguf");
  QuantizeModelOptions o = options("Q4_K_M");
  quantize_model(*dir_ / "empty.gguf", *dir_ / "empty-q.gguf", o);
  const GgufFile out = GgufFile::open(*dir_ / "empty-q.gguf");
  EXPECT_EQ(out.tensor("blk.0.attn_q.weight").nbytes, 0u);
  EXPECT_EQ(out.tensor("blk.0.attn_q.weight").shape[1], int64_t{1} << 62);
  const ModelFile view = ModelFile::open(*dir_ / "empty-q.gguf");
  EXPECT_TRUE(view.read_f32(*view.find("blk.0.attn_q.weight")).empty());
}

// An imatrix that names none of the tensors it would weight is another model's.
TEST_F(QuantizeModel, ImatrixMatchingNoTensorIsAnError) {
  const GgufFile in = open_model();
  QuantizeModelOptions o = options("Q4_K_M");
  o.imatrix = ImportanceMap{{"model.layers.0.self_attn.q_proj.weight", std::vector<float>(64, 1.0f)}};
  const std::string msg = test::error_of([&] { plan_model_quantization(in, o); });
  EXPECT_NE(msg.find("no entry for any of the"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.layers.0.self_attn.q_proj.weight"), std::string::npos) << msg;
}

TEST_F(QuantizeModel, OneCallFromPathToPath) {
  QuantizeModelOptions o = options("Q8_0");
  const QuantizePlan plan = quantize_model(*dir_ / "tiny.gguf", *dir_ / "q8.gguf", o);
  const GgufFile out = GgufFile::open(*dir_ / "q8.gguf");
  EXPECT_EQ(out.at("general.file_type").get<uint32_t>(), 7u);
  uint64_t total = 0;
  for (const GgufTensorInfo& t : out.tensors()) total += t.nbytes;
  EXPECT_EQ(total, plan.bytes_out);
  EXPECT_EQ(out.tensor("blk.0.attn_q.weight").format, Format::Q8_0);
}

TEST(QuantMethod, Names) {
  for (QuantMethod m : {QuantMethod::rtn, QuantMethod::gsq, QuantMethod::gptq})
    EXPECT_EQ(quant_method_from_name(to_string(m)), m);
  EXPECT_FALSE(quant_method_from_name("awq"));
}

}  // namespace
