// --target-bpw with a calibration text (QuantizeModelOptions::target_bpw_calibration):
// the sensitivity probe's KL divergence against an independent path — the ordinary
// decoder (LlamaContext) over a GGUF written here with the one weight replaced — and
// the allocation's budget, determinism and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/formats/quantize.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/model/quantize_model.hpp"
#include "model/kld_probe.hpp"
#include "test_util.hpp"
#include "tiny_llama.hpp"

namespace lowbit {
namespace {

using test::error_of, test::kCtx, test::make_model, test::temp_path, test::TempFile, test::text_of;

GptqCalibration calibration(int repeats) {
  GptqCalibration c;
  c.text = text_of(repeats);
  c.ctx = kCtx;
  return c;
}

// Mean over every position of every window of KL(base || model), in long double,
// from each model's own decoder.
double decoder_kld(const LlamaModel& base, const LlamaModel& model, const std::string& text) {
  const std::vector<int32_t> tokens = base.tokenizer().tokenize(text, true, false);
  const int64_t windows = static_cast<int64_t>(tokens.size()) / kCtx, V = base.hparams().n_vocab;
  long double total = 0;
  for (int64_t k = 0; k < windows; ++k) {
    std::vector<int32_t> w(tokens.begin() + k * kCtx, tokens.begin() + (k + 1) * kCtx);
    w[0] = base.tokenizer().bos();
    LlamaContext cb(base, kCtx, LinearPrecision::f32), cm(model, kCtx, LinearPrecision::f32);
    const std::vector<float> lb = cb.decode(w, true), lm = cm.decode(w, true);
    for (int64_t r = 0; r < kCtx; ++r) {
      long double mb = lb[r * V], mm = lm[r * V], sb = 0, sm = 0;
      for (int64_t v = 0; v < V; ++v) mb = std::max<long double>(mb, lb[r * V + v]), mm = std::max<long double>(mm, lm[r * V + v]);
      for (int64_t v = 0; v < V; ++v) sb += std::exp(lb[r * V + v] - mb), sm += std::exp(lm[r * V + v] - mm);
      for (int64_t v = 0; v < V; ++v) {
        const long double pb = lb[r * V + v] - mb - std::log(sb), pm = lm[r * V + v] - mm - std::log(sm);
        total += std::exp(pb) * (pb - pm);
      }
    }
  }
  return static_cast<double>(total / (windows * kCtx));
}

TEST(BpwSensitivity, ProbeMatchesTheDecoderOnTheModelWithTheWeightReplaced) {
  const auto m = make_model("probe");
  const GgufFile src = GgufFile::open(m->path);
  detail::KldProbe probe(m->path.string(), calibration(5));  // 3 windows of 16, every position scored
  EXPECT_EQ(probe.positions(), 3 * kCtx);
  for (const char* name : {"blk.0.attn_k.weight", "blk.1.ffn_down.weight"}) {
    const GgufTensorInfo& t = src.tensor(name);
    std::vector<float> w(static_cast<size_t>(t.elements()));
    std::memcpy(w.data(), src.data(t).data(), w.size() * sizeof(float));
    std::vector<std::byte> q(quantized_size(Format::Q4_0, t.rows(), t.row_length()));
    quantize(Format::Q4_0, {w.data(), t.rows(), t.row_length()}, q);
    const double got = probe.kld_with(name, Format::Q4_0, q);

    GgufWriter wr;
    wr.copy_metadata(src);
    for (const GgufTensorInfo& u : src.tensors())
      if (u.name == name) wr.add_tensor(u.name, u.shape, Format::Q4_0, q);
      else wr.add_tensor(u.name, u.shape, u.format, src.data(u));
    TempFile replaced{temp_path("probe_replaced")};
    wr.write(replaced.path);
    const double want = decoder_kld(LlamaModel::load(m->path), LlamaModel::load(replaced.path), text_of(5));
    EXPECT_GT(want, 0) << name;
    EXPECT_NEAR(got, want, 1e-3 * want + 1e-9) << name;

    // The weight is restored: its own bytes move nothing.
    std::vector<std::byte> same(w.size() * sizeof(float));
    std::memcpy(same.data(), w.data(), same.size());
    EXPECT_EQ(probe.kld_with(name, Format::F32, same), 0.0) << name;
  }
  EXPECT_FALSE(probe.can_probe("token_embd.weight"));
  EXPECT_FALSE(probe.can_probe("blk.0.attn_norm.weight"));
  EXPECT_NE(error_of([&] { probe.kld_with("output_norm.weight", Format::F32, {}); }).find("output_norm"),
            std::string::npos);
}

TEST(BpwSensitivity, TargetBpwWithCalibrationStaysWithinBudgetAtAnyThreadCount) {
  const auto m = make_model("alloc");
  const GgufFile in = GgufFile::open(m->path);
  int64_t elements = 0;
  for (const auto& t : in.tensors()) elements += t.elements();
  QuantizeModelOptions o{*quant_scheme_from_name("Q4_K_M")};
  o.target_bpw_calibration = calibration(5);
  for (double bpw : {5.0, 6.0, 8.0}) {
    o.target_bpw = bpw;
    o.threads = 1;
    const QuantizePlan one = plan_model_quantization(in, o);
    o.threads = 2;
    const QuantizePlan two = plan_model_quantization(in, o);
    EXPECT_LE(double(one.bytes_out) * 8 / double(elements), bpw) << bpw;
    ASSERT_EQ(one.tensors.size(), two.tensors.size());
    for (size_t i = 0; i < one.tensors.size(); ++i) EXPECT_EQ(one.tensors[i].to(), two.tensors[i].to()) << bpw;
  }
}

TEST(BpwSensitivity, Errors) {
  const auto m = make_model("errors");
  const GgufFile in = GgufFile::open(m->path);
  QuantizeModelOptions o{*quant_scheme_from_name("Q4_K_M")};
  o.target_bpw_calibration = calibration(5);
  EXPECT_NE(error_of([&] { plan_model_quantization(in, o); }).find("without target_bpw"), std::string::npos);
  o.target_bpw = 6.0;
  o.target_bpw_calibration = calibration(1);  // 11 tokens: no window of 16
  EXPECT_NE(error_of([&] { plan_model_quantization(in, o); }).find("fewer than one window"), std::string::npos);
  const auto arch = make_model("errors_arch", [](GgufWriter& w) {
    w.set("general.architecture", "gemma3");
    w.set("gemma3.block_count", uint32_t{2});  // what the type rules read
  });
  const GgufFile g = GgufFile::open(arch->path);
  o.target_bpw_calibration = calibration(5);
  const std::string e = error_of([&] { plan_model_quantization(g, o); });
  EXPECT_NE(e.find("gemma3"), std::string::npos) << e;
}

}  // namespace
}  // namespace lowbit
