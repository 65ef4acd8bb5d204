// True-sequential GPTQ (QuantizeModelOptions::calibration) on a tiny synthetic llama:
// every Hessian it uses must equal the one lowbit::calibrate measures on a model whose
// earlier weights were replaced by the quantized ones (an independent path: the
// ordinary decoder over a GGUF written here), so each block really is fed by the
// quantized blocks and layers before it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/model/calibrate.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/model/llama_blocks.hpp"
#include "lowbit/model/quantize_model.hpp"
#include "test_util.hpp"
#include "tiny_llama.hpp"

namespace lowbit {
namespace {

using test::error_of;
namespace fs = std::filesystem;

using test::kCtx, test::kEmbd, test::kFf, test::kHeadDim, test::kHeads, test::kLayers, test::kTokens, test::make_model,
    test::temp_path, test::TempFile,
    test::text_of;

const char* const kBlockWeights[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
std::string wname(int layer, const char* w) { return "blk." + std::to_string(layer) + "." + w + ".weight"; }

QuantizeModelOptions sequential_options(const std::string& text, std::map<std::string, std::shared_ptr<const HessianAccumulator>>* seen = nullptr) {
  QuantizeModelOptions o{*quant_scheme_from_name("Q4_0")};
  o.method = QuantMethod::gptq;
  GptqCalibration cal;
  cal.text = text;
  cal.ctx = kCtx;
  if (seen)
    cal.on_hessian = [seen](const std::string& w, const std::shared_ptr<const HessianAccumulator>& h) { (*seen)[w] = h; };
  o.calibration = std::move(cal);
  return o;
}

// The model at `base` with the tensors named in `from_quantized` taken from `quantized`.
std::unique_ptr<TempFile> mixed_model(const GgufFile& base, const GgufFile& quantized,
                                      const std::set<std::string>& from_quantized, const std::string& name) {
  GgufWriter w;
  w.copy_metadata(base);
  for (const GgufTensorInfo& t : base.tensors()) {
    if (from_quantized.contains(t.name)) {
      const GgufTensorInfo* q = quantized.find_tensor(t.name);
      w.add_tensor(t.name, q->shape, q->format, quantized.data(*q));
    } else {
      w.add_tensor(t.name, t.shape, t.format, base.data(t));
    }
  }
  auto f = std::make_unique<TempFile>();
  f->path = temp_path(name);
  w.write(f->path);
  return f;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::fabs(x)));
  return m;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

TEST(SequentialGptq, EachHessianComesFromTheQuantizedLayersBeforeIt) {
  const auto m = make_model("hess");
  const std::string text = text_of(5);  // 50 tokens + BOS: 3 windows of 16
  std::map<std::string, std::shared_ptr<const HessianAccumulator>> seen;
  const QuantizeModelOptions o = sequential_options(text, &seen);
  const GgufFile in = GgufFile::open(m->path);
  const QuantizePlan plan = plan_model_quantization(in, o);
  TempFile out{temp_path("hess_out")};
  quantize_model(in, plan, o).write(out.path);
  const GgufFile q = GgufFile::open(out.path);

  ASSERT_EQ(seen.size(), 7u * kLayers);
  for (int l = 0; l < kLayers; ++l) {
    EXPECT_EQ(seen.at(wname(l, "attn_q")), seen.at(wname(l, "attn_k")));
    EXPECT_EQ(seen.at(wname(l, "attn_q")), seen.at(wname(l, "attn_v")));
    EXPECT_EQ(seen.at(wname(l, "ffn_gate")), seen.at(wname(l, "ffn_up")));
    EXPECT_NE(seen.at(wname(l, "attn_q")), seen.at(wname(l, "ffn_gate")));
    EXPECT_EQ(seen.at(wname(l, "ffn_down"))->tokens(), 3 * kCtx);
  }

  // Each weight's Hessian against lowbit::calibrate on the model whose weights before
  // it (in true-sequential order) are the quantized ones.
  CalibrationOptions co;
  co.ctx = kCtx;
  co.hessians = true;
  const std::vector<std::string> order = [] {
    std::vector<std::string> v;
    for (int l = 0; l < kLayers; ++l)
      for (const char* w : {"attn_q", "attn_output", "ffn_gate", "ffn_down"}) v.push_back(wname(l, w));
    return v;
  }();
  std::set<std::string> before;
  const Calibration one_shot = calibrate(LlamaModel::load(m->path), text, co);
  for (const std::string& target : order) {
    const auto mix = mixed_model(in, q, before, "mix");
    const Calibration c = calibrate(LlamaModel::load(mix->path), text, co);
    const std::vector<float> want = c.hessians.at(target)->matrix(), got = seen.at(target)->matrix();
    ASSERT_EQ(want.size(), got.size()) << target;
    const double scale = max_abs(want);
    EXPECT_LE(max_diff(want, got), 1e-5 * scale) << target << " with " << before.size() << " weights quantized";
    // ... and it is not the unquantized model's (except blk.0's q/k/v, which read the
    // embedding either way).
    const double moved = max_diff(one_shot.hessians.at(target)->matrix(), got);
    if (target == wname(0, "attn_q"))
      EXPECT_EQ(moved, 0.0);
    else
      EXPECT_GT(moved, 1e-3 * scale) << target;
    // The weights of this step join the quantized ones.
    const std::string layer = target.substr(0, target.find('.', 4) + 1);
    for (const char* w : kBlockWeights) {
      const std::string n = layer + w + ".weight";
      const bool step = (target.ends_with("attn_q.weight") && (n.ends_with("attn_q.weight") || n.ends_with("attn_k.weight") || n.ends_with("attn_v.weight"))) ||
                        (target.ends_with("attn_output.weight") && n.ends_with("attn_output.weight")) ||
                        (target.ends_with("ffn_gate.weight") && (n.ends_with("ffn_gate.weight") || n.ends_with("ffn_up.weight"))) ||
                        (target.ends_with("ffn_down.weight") && n.ends_with("ffn_down.weight"));
      if (step) before.insert(n);
    }
  }
}

TEST(SequentialGptq, DiffersFromOneShotHessiansAndDecodes) {
  const auto m = make_model("diff");
  const std::string text = text_of(5);
  const GgufFile in = GgufFile::open(m->path);
  const QuantizeModelOptions seq = sequential_options(text);
  const GgufWriter a = quantize_model(in, plan_model_quantization(in, seq), seq);

  CalibrationOptions co;
  co.ctx = kCtx;
  co.hessians = true;
  const Calibration c = calibrate(LlamaModel::load(m->path), text, co);
  std::map<std::string, HessianAccumulator, std::less<>> hs;
  for (const auto& [name, h] : c.hessians) hs.emplace(name, *h);
  QuantizeModelOptions old{*quant_scheme_from_name("Q4_0")};
  old.method = QuantMethod::gptq;
  old.hessians = hessians_from_map(std::move(hs));
  const GgufWriter b = quantize_model(in, plan_model_quantization(in, old), old);

  TempFile pa{temp_path("diff_a")}, pb{temp_path("diff_b")};
  a.write(pa.path);
  b.write(pb.path);
  const GgufFile fa = GgufFile::open(pa.path), fb = GgufFile::open(pb.path);
  const auto same = [&](const std::string& n) {
    const auto da = fa.data(*fa.find_tensor(n)), db = fb.data(*fb.find_tensor(n));
    return da.size() == db.size() && std::memcmp(da.data(), db.data(), da.size()) == 0;
  };
  // blk.0's q/k/v read the embedding in both: the same Hessian, the same bytes. Every
  // later weight reads quantized outputs in the sequential run only.
  for (const char* w : {"attn_q", "attn_k", "attn_v"}) EXPECT_TRUE(same(wname(0, w))) << w;
  for (const char* w : {"attn_output", "ffn_gate", "ffn_up", "ffn_down"}) EXPECT_FALSE(same(wname(0, w))) << w;
  for (const char* w : kBlockWeights) EXPECT_FALSE(same(wname(1, w))) << w;
  EXPECT_EQ(fa.find_tensor(wname(1, "ffn_down"))->format, Format::Q4_0);

  // Written in block order (the file lists blk.0 .. blk.1 by name here too), the tied
  // output matrix last.
  EXPECT_EQ(fa.tensors().back().name, "token_embd.weight");
  EXPECT_EQ(fa.tensors().front().name, "blk.0.attn_norm.weight");

  // The output loads and decodes.
  const LlamaModel qm = LlamaModel::load(pa.path);
  LlamaContext ctx(qm, kCtx);
  const std::vector<int32_t> toks = qm.tokenizer().tokenize(text_of(1), true, false);
  const std::vector<float> logits = ctx.decode(toks, true);
  ASSERT_EQ(logits.size(), toks.size() * kTokens.size());
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

TEST(SequentialGptq, OutputMatrixGetsTheImportanceOfTheQuantizedModel) {
  const auto m = make_model("output");
  const std::string text = text_of(5);
  const GgufFile in = GgufFile::open(m->path);
  QuantizeModelOptions o = sequential_options(text);
  o.overrides.token_embedding_type = Format::Q4_0;  // a format whose quantizer weighs importance
  TempFile out{temp_path("output_out")};
  write_quantized_model(in, plan_model_quantization(in, o), o, out.path);
  const GgufFile q = GgufFile::open(out.path);
  const GgufTensorInfo* emb = q.find_tensor("token_embd.weight");
  ASSERT_EQ(emb->format, Format::Q4_0);

  // Independently: the decoder over the model with every block weight quantized (the
  // embedding as stored: the blocks were calibrated on it), every window's every
  // position, sees output_norm(x) at the (tied) output matrix.
  std::set<std::string> blocks;
  for (int l = 0; l < kLayers; ++l)
    for (const char* b : kBlockWeights) blocks.insert(wname(l, b));
  const auto mix = mixed_model(in, q, blocks, "output_mix");
  const LlamaModel qm = LlamaModel::load(mix->path);
  const std::vector<int32_t> toks = qm.tokenizer().tokenize(text, true, false);
  std::vector<double> sum(kEmbd, 0.0);
  int64_t n = 0;
  LlamaContext ctx(qm, kCtx, LinearPrecision::f32);
  ctx.set_observer([&](std::string_view w, ConstMatrixView<float> x) {
    if (w != "token_embd.weight") return;
    for (int64_t r = 0; r < x.rows; ++r)
      for (int64_t c = 0; c < x.cols; ++c) sum[static_cast<size_t>(c)] += double(x(r, c)) * x(r, c);
    n += x.rows;
  });
  for (size_t w = 0; w + kCtx <= toks.size(); w += kCtx) {
    std::vector<int32_t> win(toks.begin() + static_cast<std::ptrdiff_t>(w), toks.begin() + static_cast<std::ptrdiff_t>(w + kCtx));
    win[0] = 0;  // BOS
    ctx.clear();
    ctx.decode(win, true);
  }
  ASSERT_EQ(n, 3 * kCtx);
  std::vector<float> imp(kEmbd);
  for (int64_t c = 0; c < kEmbd; ++c) imp[static_cast<size_t>(c)] = static_cast<float>(sum[static_cast<size_t>(c)] / double(n));
  const GgufTensorInfo* src = in.find_tensor("token_embd.weight");
  std::vector<float> w(static_cast<size_t>(src->elements()));
  dequantize(src->format, in.data(*src), {w.data(), src->rows(), src->row_length()});
  std::vector<std::byte> want(quantized_size(Format::Q4_0, src->rows(), src->row_length()));
  std::vector<std::byte> plain(want.size());
  quantize(Format::Q4_0, {w.data(), src->rows(), src->row_length()}, want, imp);
  quantize(Format::Q4_0, {w.data(), src->rows(), src->row_length()}, plain);
  const auto got = q.data(*emb);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size()), 0);
  EXPECT_NE(std::memcmp(plain.data(), want.data(), want.size()), 0);  // the importance matters here
}

TEST(SequentialGptq, SameBytesAtAnyThreadCountStreamedAndResumed) {
  const auto m = make_model("threads");
  const std::string text = text_of(5);
  const GgufFile in = GgufFile::open(m->path);
  QuantizeModelOptions o = sequential_options(text);
  const QuantizePlan plan = plan_model_quantization(in, o);
  o.threads = 1;
  const std::vector<std::byte> one = quantize_model(in, plan, o).serialize();
  o.threads = 2;
  const std::vector<std::byte> two = quantize_model(in, plan, o).serialize();
  EXPECT_TRUE(one == two);

  // Streamed, interrupted after a few tensors of block 1, then resumed: the same file.
  TempFile out{temp_path("resume_out")};
  int tensors = 0;
  o.on_tensor = [&](const PlannedTensor&) { ++tensors; };
  o.cancelled = [&] { return tensors >= 17; };
  o.resume = true;
  EXPECT_THROW(write_quantized_model(in, plan, o, out.path), QuantizeCancelled);
  EXPECT_FALSE(fs::exists(out.path));
  o.cancelled = nullptr;
  // The resumed run recomputes the blocks before the first missing tensor without
  // counting their work twice.
  int64_t last = -1;
  o.progress = [&](int64_t done, int64_t total) {
    EXPECT_LE(done, total);
    EXPECT_GE(done, last);
    last = done;
  };
  write_quantized_model(in, plan, o, out.path);
  EXPECT_EQ(last, plan.work);
  std::vector<std::byte> streamed(fs::file_size(out.path));
  {
    FILE* f = std::fopen(out.path.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fread(streamed.data(), 1, streamed.size(), f), streamed.size());
    std::fclose(f);
  }
  EXPECT_TRUE(streamed == one);
}

TEST(SequentialGptq, RefusesWhatItCannotDo) {
  const auto m = make_model("bad");
  const GgufFile in = GgufFile::open(m->path);
  QuantizeModelOptions o = sequential_options("");
  EXPECT_NE(error_of([&] { plan_model_quantization(in, o); }).find("is empty"), std::string::npos);
  o = sequential_options(text_of(1));  // 11 tokens < 16
  EXPECT_NE(error_of([&] { plan_model_quantization(in, o); }).find("fewer than one window of 16"), std::string::npos);
  o = sequential_options(text_of(5));
  o.method = QuantMethod::rtn;
  EXPECT_NE(error_of([&] { plan_model_quantization(in, o); }).find("for method gptq"), std::string::npos);
  o = sequential_options(text_of(5));
  o.imatrix = ImportanceMap{};
  EXPECT_NE(error_of([&] { plan_model_quantization(in, o); }).find("imatrix"), std::string::npos);
  o = sequential_options(text_of(5));
  o.hessians = hessians_from_map({});
  EXPECT_NE(error_of([&] { plan_model_quantization(in, o); }).find("not both"), std::string::npos);
  const auto arch = make_model("arch", [](GgufWriter& w) { w.set("general.architecture", "gemma3"); });
  const GgufFile g = GgufFile::open(arch->path);
  o = sequential_options(text_of(5));
  EXPECT_NE(error_of([&] { plan_model_quantization(g, o); }).find("'gemma3'"), std::string::npos);
  QuantizeModelOptions none{*quant_scheme_from_name("Q4_0")};
  none.method = QuantMethod::gptq;
  EXPECT_NE(error_of([&] { plan_model_quantization(in, none); }).find("calibration text"), std::string::npos);
}

TEST(LlamaBlocks, StepsEqualTheDecoderAndRefuseBadShapes) {
  const auto m = make_model("steps");
  const LlamaModel model = LlamaModel::load(m->path);
  const std::vector<int32_t> toks = model.tokenizer().tokenize(text_of(2), true, false);
  const auto T = static_cast<int64_t>(toks.size());
  // What the decoder's linear layers read (f32 precision) ...
  std::map<std::string, std::vector<float>> inputs;
  LlamaContext ctx(model, T, LinearPrecision::f32);
  ctx.set_observer([&](std::string_view w, ConstMatrixView<float> x) {
    std::vector<float>& v = inputs[std::string(w)];
    for (int64_t r = 0; r < x.rows; ++r) v.insert(v.end(), x.row(r), x.row(r) + x.cols);
  });
  ctx.decode(toks, true);
  // ... equals, bit for bit, what the block steps compute.
  const LlamaBlocks b(model);
  std::vector<float> x(static_cast<size_t>(T * kEmbd)), h(x.size()), att(static_cast<size_t>(T * kHeads * kHeadDim)),
      a(static_cast<size_t>(T * kFf));
  const MatrixView<float> xv(x.data(), T, kEmbd), hv(h.data(), T, kEmbd), av(att.data(), T, kHeads * kHeadDim),
      fv(a.data(), T, kFf);
  b.embed(toks, xv);
  for (int l = 0; l < kLayers; ++l) {
    b.attn_input(l, xv, hv);
    EXPECT_EQ(h, inputs.at(wname(l, "attn_k")));
    b.attention(l, hv, av);
    EXPECT_EQ(att, inputs.at(wname(l, "attn_output")));
    b.attn_residual(l, av, xv);
    b.ffn_input(l, xv, hv);
    EXPECT_EQ(h, inputs.at(wname(l, "ffn_up")));
    b.ffn_act(l, hv, fv);
    EXPECT_EQ(a, inputs.at(wname(l, "ffn_down")));
    b.ffn_residual(l, fv, xv);
  }
  b.output_input(xv, hv);
  EXPECT_EQ(h, inputs.at("token_embd.weight"));

  EXPECT_NE(error_of([&] { b.attention(2, hv, av); }).find("layer 2"), std::string::npos);
  EXPECT_NE(error_of([&] { b.ffn_act(0, hv, MatrixView<float>(a.data(), T, kFf - 1)); }).find("ffn_act (layer 0): a"),
            std::string::npos);
  LlamaModel mm = LlamaModel::load(m->path);
  EXPECT_NE(error_of([&] { mm.replace_weight("output_norm.weight", Format::F32, {}); }).find("not a block weight"),
            std::string::npos);
  EXPECT_NE(error_of([&] { mm.replace_weight(wname(0, "attn_q"), Format::Q4_0, std::vector<std::byte>(10)); })
                .find("do not hold"),
            std::string::npos);
}

}  // namespace
}  // namespace lowbit
