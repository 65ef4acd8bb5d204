// The llama runtime, tokenizer, evaluation and calibration on a tiny synthetic GGUF
// (F32 and Q8_0 weights), against a double-precision forward pass written plainly
// here and hand-derived token ids. The real-model checks against llama.cpp are in
// tests/interop/test_llama_runtime.py.
#include <gtest/gtest.h>

#include <cstdio>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "lowbit/core/parallel.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/imatrix.hpp"
#include "lowbit/model/calibrate.hpp"
#include "lowbit/model/eval.hpp"
#include "lowbit/model/llama.hpp"
#include "lowbit/model/tokenizer.hpp"
#include "test_util.hpp"
#include "tiny_llama.hpp"

namespace lowbit {
namespace {

using test::error_of;

constexpr int64_t kLayers = 2, kEmbd = 32, kHeads = 4, kKvHeads = 2, kHeadDim = 8, kFf = 64;
constexpr float kEps = 1e-5f, kBase = 10000.0f;

// Vocabulary in GPT-2 byte-level form ("Ġ" is a space, "Ċ" a newline).
const std::vector<std::string> kTokens = {"<|endoftext|>", "a", "b", "Ġ", "ab", "Ġab", "1", "2", "Ċ", "ĠĠ", "!"};
const std::vector<std::string> kMerges = {"a b", "Ġ ab", "Ġ Ġ"};
const int64_t kVocab = static_cast<int64_t>(kTokens.size());

struct Tensor {
  std::vector<int64_t> shape;  // GGUF order
  std::vector<float> values;
};

// A deterministic pseudo-random weight in [-scale, scale].
using test::values;

struct TinyModel {
  std::map<std::string, Tensor> tensors;
  std::string path;
  ~TinyModel() { std::filesystem::remove(path); }
};

// Writes the tiny model; `edit` may change the writer before it is saved. The token
// embedding is Q8_0 (rows of 32) and tied to the output; the rest is F32.
std::unique_ptr<TinyModel> make_model(const std::string& name,
                                      const std::function<void(GgufWriter&)>& edit = nullptr) {
  auto m = std::make_unique<TinyModel>();
  uint32_t seed = 1;
  const auto add = [&](const std::string& n, std::vector<int64_t> shape, float scale) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    m->tensors[n] = {shape, values(count, seed++, scale)};
  };
  add("token_embd.weight", {kEmbd, kVocab}, 1.0f);
  add("output_norm.weight", {kEmbd}, 1.0f);
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    add(b + "attn_norm.weight", {kEmbd}, 1.0f);
    add(b + "ffn_norm.weight", {kEmbd}, 1.0f);
    add(b + "attn_q.weight", {kEmbd, kHeads * kHeadDim}, 0.4f);
    add(b + "attn_k.weight", {kEmbd, kKvHeads * kHeadDim}, 0.4f);
    add(b + "attn_v.weight", {kEmbd, kKvHeads * kHeadDim}, 0.4f);
    add(b + "attn_output.weight", {kHeads * kHeadDim, kEmbd}, 0.3f);
    add(b + "ffn_gate.weight", {kEmbd, kFf}, 0.3f);
    add(b + "ffn_up.weight", {kEmbd, kFf}, 0.3f);
    add(b + "ffn_down.weight", {kFf, kEmbd}, 0.3f);
  }
  // The stored embedding is Q8_0; the reference uses its decoded values.
  Tensor& emb = m->tensors["token_embd.weight"];
  std::vector<std::byte> q8(quantized_size(Format::Q8_0, kVocab, kEmbd));
  quantize(Format::Q8_0, ConstMatrixView<float>(emb.values.data(), kVocab, kEmbd), q8);
  dequantize(Format::Q8_0, q8, MatrixView<float>(emb.values.data(), kVocab, kEmbd));

  GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("llama.block_count", uint32_t{kLayers});
  w.set("llama.embedding_length", uint32_t{kEmbd});
  w.set("llama.feed_forward_length", uint32_t{kFf});
  w.set("llama.attention.head_count", uint32_t{kHeads});
  w.set("llama.attention.head_count_kv", uint32_t{kKvHeads});
  w.set("llama.attention.layer_norm_rms_epsilon", kEps);
  w.set("llama.rope.freq_base", kBase);
  w.set("tokenizer.ggml.model", "gpt2");
  w.set("tokenizer.ggml.pre", "smollm");
  w.set("tokenizer.ggml.tokens", GgufValue::array_of_strings(kTokens));
  std::vector<int32_t> types(kTokens.size(), 1);
  types[0] = 3;  // control
  w.set("tokenizer.ggml.token_type", GgufValue::array<int32_t>(std::span<const int32_t>(types)));
  w.set("tokenizer.ggml.merges", GgufValue::array_of_strings(kMerges));
  w.set("tokenizer.ggml.bos_token_id", uint32_t{0});
  w.set("tokenizer.ggml.eos_token_id", uint32_t{0});
  w.set("tokenizer.ggml.add_bos_token", false);
  for (const auto& [n, t] : m->tensors) {
    if (n == "token_embd.weight") {
      w.add_tensor(n, t.shape, Format::Q8_0, q8);
      continue;
    }
    std::vector<std::byte> bytes(t.values.size() * sizeof(float));
    std::memcpy(bytes.data(), t.values.data(), bytes.size());
    w.add_tensor(n, t.shape, Format::F32, std::move(bytes));
  }
  if (edit) edit(w);
  m->path = (std::filesystem::temp_directory_path() / ("lowbit_llama_" + name + "_" + std::to_string(getpid()) + ".gguf")).string();
  w.write(m->path);
  return m;
}

// y = W x for W stored [out x in] (GGUF shape {in, out}), in double.
std::vector<double> matvec(const Tensor& w, const std::vector<double>& x) {
  const int64_t in = w.shape[0], out = w.shape[1];
  std::vector<double> y(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) y[static_cast<size_t>(o)] += w.values[static_cast<size_t>(o * in + i)] * x[static_cast<size_t>(i)];
  return y;
}

std::vector<double> rms(const std::vector<double>& x, const Tensor& g) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double s = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + kEps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * g.values[i];
  return y;
}

// The straightforward forward pass: all tokens at once, no cache, double precision.
std::vector<std::vector<double>> reference_logits(const TinyModel& m, const std::vector<int32_t>& toks) {
  const auto& T = m.tensors;
  const size_t n = toks.size();
  std::vector<std::vector<double>> x(n);
  for (size_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < kEmbd; ++i) x[t].push_back(T.at("token_embd.weight").values[static_cast<size_t>(toks[t] * kEmbd + i)]);
  const auto rope = [](std::vector<double>& v, size_t pos) {
    for (size_t h = 0; h < v.size() / kHeadDim; ++h)
      for (int64_t i = 0; i < kHeadDim / 2; ++i) {
        const double theta = static_cast<double>(pos) * std::pow(kBase, -2.0 * static_cast<double>(i) / kHeadDim);
        double& a = v[h * kHeadDim + 2 * i];
        double& b = v[h * kHeadDim + 2 * i + 1];
        const double a0 = a, b0 = b;
        a = a0 * std::cos(theta) - b0 * std::sin(theta);
        b = a0 * std::sin(theta) + b0 * std::cos(theta);
      }
  };
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (size_t t = 0; t < n; ++t) {
      const auto h = rms(x[t], T.at(b + "attn_norm.weight"));
      q[t] = matvec(T.at(b + "attn_q.weight"), h);
      k[t] = matvec(T.at(b + "attn_k.weight"), h);
      v[t] = matvec(T.at(b + "attn_v.weight"), h);
      rope(q[t], t);
      rope(k[t], t);
    }
    for (size_t t = 0; t < n; ++t) {
      std::vector<double> att(static_cast<size_t>(kHeads * kHeadDim));
      for (int64_t h = 0; h < kHeads; ++h) {
        const int64_t kv = h / (kHeads / kKvHeads);
        std::vector<double> s(t + 1);
        double mx = -1e300, sum = 0;
        for (size_t j = 0; j <= t; ++j) {
          for (int64_t d = 0; d < kHeadDim; ++d) s[j] += q[t][static_cast<size_t>(h * kHeadDim + d)] * k[j][static_cast<size_t>(kv * kHeadDim + d)];
          s[j] /= std::sqrt(static_cast<double>(kHeadDim));
          mx = std::max(mx, s[j]);
        }
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (size_t j = 0; j <= t; ++j)
          for (int64_t d = 0; d < kHeadDim; ++d)
            att[static_cast<size_t>(h * kHeadDim + d)] += s[j] / sum * v[j][static_cast<size_t>(kv * kHeadDim + d)];
      }
      const auto o = matvec(T.at(b + "attn_output.weight"), att);
      for (int64_t i = 0; i < kEmbd; ++i) x[t][static_cast<size_t>(i)] += o[static_cast<size_t>(i)];
      const auto h = rms(x[t], T.at(b + "ffn_norm.weight"));
      auto g = matvec(T.at(b + "ffn_gate.weight"), h);
      const auto u = matvec(T.at(b + "ffn_up.weight"), h);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const auto d = matvec(T.at(b + "ffn_down.weight"), g);
      for (int64_t i = 0; i < kEmbd; ++i) x[t][static_cast<size_t>(i)] += d[static_cast<size_t>(i)];
    }
  }
  std::vector<std::vector<double>> out;
  for (size_t t = 0; t < n; ++t) out.push_back(matvec(T.at("token_embd.weight"), rms(x[t], T.at("output_norm.weight"))));
  return out;
}

TEST(Tokenizer, HandDerivedIds) {
  const auto m = make_model("tok");
  const auto f = GgufFile::open(m->path);
  const auto tok = Tokenizer::from_gguf(f);
  // "ab" merges (rank 0); " ab" is Ġ a b -> Ġ ab -> Ġab.
  EXPECT_EQ(tok.tokenize("ab ab"), (std::vector<int32_t>{4, 5}));
  // smollm splits every digit off before GPT-2's split.
  EXPECT_EQ(tok.tokenize("12"), (std::vector<int32_t>{6, 7}));
  // Two spaces before a letter: \s+(?!\S) keeps one, the other leads " b".
  EXPECT_EQ(tok.tokenize("a  b"), (std::vector<int32_t>{1, 3, 3, 2}));
  // Trailing spaces stay one piece; "Ġ Ġ" merges.
  EXPECT_EQ(tok.tokenize("a  "), (std::vector<int32_t>{1, 9}));
  EXPECT_EQ(tok.tokenize("a\n!"), (std::vector<int32_t>{1, 8, 10}));
  // Control tokens only with parse_special.
  EXPECT_EQ(tok.tokenize("<|endoftext|>ab", true, true), (std::vector<int32_t>{0, 4}));
  EXPECT_EQ(tok.tokenize("ab", true, false), (std::vector<int32_t>{4}));
  EXPECT_EQ(tok.token_to_piece(5), " ab");
  EXPECT_EQ(tok.token_to_piece(8), "\n");
  EXPECT_NE(error_of([&] { tok.token_to_piece(11); }).find("outside the vocabulary"), std::string::npos);
}

TEST(Tokenizer, UnsupportedTokenizersNameThemselves) {
  const auto pre = make_model("pre", [](GgufWriter& w) { w.set("tokenizer.ggml.pre", "llama-bpe"); });
  EXPECT_NE(error_of([&] { Tokenizer::from_gguf(GgufFile::open(pre->path)); }).find("'llama-bpe'"), std::string::npos);
  const auto spm = make_model("spm", [](GgufWriter& w) { w.set("tokenizer.ggml.model", "llama"); });
  EXPECT_NE(error_of([&] { Tokenizer::from_gguf(GgufFile::open(spm->path)); }).find("'llama'"), std::string::npos);
}

TEST(LlamaRuntime, MatchesDoubleReference) {
  const auto m = make_model("ref");
  const auto model = LlamaModel::load(m->path);
  EXPECT_TRUE(model.hparams().tied_output);
  const std::vector<int32_t> toks = {1, 4, 5, 6, 7, 8, 10, 3, 2, 9, 1, 5};
  const auto ref = reference_logits(*m, toks);
  LlamaContext ctx(model, 16, LinearPrecision::f32);
  const auto all = ctx.decode(toks, true);
  double worst = 0;
  for (size_t t = 0; t < toks.size(); ++t)
    for (int64_t v = 0; v < kVocab; ++v)
      worst = std::max(worst, std::abs(all[t * kVocab + static_cast<size_t>(v)] - ref[t][static_cast<size_t>(v)]));
  EXPECT_LT(worst, 1e-4);

  // Token by token through the cache: the same logits.
  LlamaContext step(model, 16, LinearPrecision::f32);
  for (size_t t = 0; t < toks.size(); ++t) {
    const auto last = step.decode(std::span<const int32_t>(&toks[t], 1), false);
    for (int64_t v = 0; v < kVocab; ++v)
      ASSERT_NEAR(last[static_cast<size_t>(v)], ref[t][static_cast<size_t>(v)], 1e-4) << "position " << t;
  }
  EXPECT_EQ(step.n_past(), 12);

  // Automatic precision token by token: the Q8_0 weights' products take 8-bit
  // activations (ggml's bytes), so the logits move by that rounding, not more:
  // within 2% of the largest logit at every position.
  LlamaContext fast(model, 16);
  double worst_fast = 0, largest = 0;
  for (size_t t = 0; t < toks.size(); ++t) {
    const auto last = fast.decode(std::span<const int32_t>(&toks[t], 1), false);
    for (int64_t v = 0; v < kVocab; ++v) {
      worst_fast = std::max(worst_fast, std::abs(last[static_cast<size_t>(v)] - ref[t][static_cast<size_t>(v)]));
      largest = std::max(largest, std::abs(ref[t][static_cast<size_t>(v)]));
    }
  }
  std::printf("automatic precision, token by token: worst logit error %.3g (largest logit %.3g)\n", worst_fast,
              largest);
  EXPECT_GT(worst_fast, 0.0) << "the 8-bit activation path did not run";
  EXPECT_LT(worst_fast, 0.02 * largest);

  // Fast precision on the whole batch (12 > 8 rows: the repacked int8 GEMM for the
  // Q8_0 weights): the same bound, and not the f32 path's result.
  LlamaContext packed(model, 16, LinearPrecision::fast);
  const auto packed_all = packed.decode(toks, true);
  double worst_packed = 0;
  for (size_t t = 0; t < toks.size(); ++t)
    for (int64_t v = 0; v < kVocab; ++v)
      worst_packed = std::max(worst_packed, std::abs(packed_all[t * kVocab + static_cast<size_t>(v)] -
                                                     ref[t][static_cast<size_t>(v)]));
  EXPECT_NE(std::memcmp(packed_all.data(), all.data(), all.size() * sizeof(float)), 0)
      << "fast precision gave the f32 path's bytes: the packed int8 path did not run";
  EXPECT_LT(worst_packed, 0.02 * largest);
  EXPECT_NE(error_of([&] { step.decode(std::vector<int32_t>(5, 1), false); }).find("do not fit"), std::string::npos);
  EXPECT_NE(error_of([&] { ctx.clear(); ctx.decode(std::vector<int32_t>{11}, false); }).find("outside the vocabulary"),
            std::string::npos);
}

TEST(LlamaRuntime, SameBytesAtAnyThreadCount) {
  const auto m = make_model("threads");
  const auto model = LlamaModel::load(m->path);
  const std::vector<int32_t> toks = {1, 4, 5, 6, 7, 8, 10, 3};
  set_num_threads(1);
  LlamaContext a(model, 8);
  const auto one = a.decode(toks, true);
  set_num_threads(0);
  LlamaContext b(model, 8);
  const auto all = b.decode(toks, true);
  EXPECT_EQ(std::memcmp(one.data(), all.data(), one.size() * sizeof(float)), 0);
}

TEST(LlamaRuntime, RefusesWhatItCannotRun) {
  const auto arch = make_model("arch", [](GgufWriter& w) { w.set("general.architecture", "gemma3"); });
  EXPECT_NE(error_of([&] { LlamaModel::load(arch->path); }).find("'gemma3'"), std::string::npos);
  const auto shape = make_model("shape", [](GgufWriter& w) { w.set("llama.feed_forward_length", uint32_t{32}); });
  EXPECT_NE(error_of([&] { LlamaModel::load(shape->path); }).find("blk.0.ffn_gate.weight"), std::string::npos);
  const auto yarn = make_model("yarn", [](GgufWriter& w) { w.set("llama.rope.scaling.type", "yarn"); });
  EXPECT_NE(error_of([&] { LlamaModel::load(yarn->path); }).find("'yarn'"), std::string::npos);
}

// Text whose tokens cycle through the vocabulary: "ab ab12\n!a  b" -> 4 5 6 7 8 10 1 3 3 2.
std::string text_of(int repeats) {
  std::string s;
  for (int i = 0; i < repeats; ++i) s += "ab ab12\n!a  b";
  return s;
}

TEST(Evaluate, LlamaPerplexityWindows) {
  const auto m = make_model("eval");
  const auto model = LlamaModel::load(m->path);
  const std::string text = text_of(4);  // 40 tokens
  const auto toks = model.tokenizer().tokenize(text);
  ASSERT_EQ(toks.size(), 40u);
  EvalOptions o;
  o.ctx = 16;
  o.tg_tokens = 2;
  const EvalResult r = evaluate(model, text, &model, o);
  // Two whole windows of 16; positions 8..14 of each are scored (7 per window).
  EXPECT_EQ(r.chunks, 2);
  EXPECT_EQ(r.scored, 14);
  double nll = 0;
  for (int w = 0; w < 2; ++w) {
    const std::vector<int32_t> win(toks.begin() + w * 16, toks.begin() + (w + 1) * 16);
    const auto ref = reference_logits(*m, win);
    for (int p = 8; p <= 14; ++p) {
      double mx = -1e300, sum = 0;
      for (double v : ref[static_cast<size_t>(p)]) mx = std::max(mx, v);
      for (double v : ref[static_cast<size_t>(p)]) sum += std::exp(v - mx);
      nll -= ref[static_cast<size_t>(p)][static_cast<size_t>(win[static_cast<size_t>(p + 1)])] - mx - std::log(sum);
    }
  }
  EXPECT_NEAR(r.ppl, std::exp(nll / 14), 1e-4 * r.ppl);
  EXPECT_EQ(r.kld_mean, 0.0);
  EXPECT_EQ(r.top1, 1.0);
  EXPECT_GT(r.tg_tokens_per_s, 0.0);
  o.ctx = 21;  // 40 tokens < 2 * 21
  EXPECT_NE(error_of([&] { evaluate(model, text, nullptr, o); }).find("at least 42"), std::string::npos);
}

// The base runs at the model's precision (as llama-perplexity computes both with one
// arithmetic): with fast precision the windows of 16 rows take 8-bit activations,
// which an automatic-precision base (float32 at that batch) would not, so a model
// against itself must still give KLD 0 and the fast path's own perplexity.
TEST(Evaluate, BaseAtTheModelsPrecision) {
  const auto m = make_model("evalfast");
  const auto model = LlamaModel::load(m->path);
  const std::string text = text_of(4);
  EvalOptions o;
  o.ctx = 16;
  o.tg_tokens = 0;
  o.precision = LinearPrecision::fast;
  const EvalResult fast = evaluate(model, text, &model, o);
  EXPECT_EQ(fast.kld_mean, 0.0);
  EXPECT_EQ(fast.kld_p99, 0.0);
  EXPECT_EQ(fast.top1, 1.0);
  EXPECT_EQ(fast.base_ppl, fast.ppl);
  o.precision = LinearPrecision::f32;
  const EvalResult f32 = evaluate(model, text, nullptr, o);
  EXPECT_NE(fast.ppl, f32.ppl) << "fast precision gave the f32 path's perplexity: the 8-bit path did not run";
}

TEST(Calibrate, ImatrixAndHessiansOfTheFirstLayer) {
  const auto m = make_model("cal");
  const auto model = LlamaModel::load(m->path);
  const std::string text = text_of(2);  // 20 tokens
  const auto toks = model.tokenizer().tokenize(text);
  CalibrationOptions o;
  o.ctx = 10;
  o.hessians = true;
  o.dataset = "tiny";
  const Calibration c = calibrate(model, text, o);
  EXPECT_EQ(c.chunks, 2);
  EXPECT_EQ(c.weights.size(), static_cast<size_t>(7 * kLayers));  // the tied output is not collected
  // blk.0's q/k/v input is RMSNorm(embedding) * attn_norm, token by token.
  std::vector<double> want(kEmbd);
  std::vector<double> h00(1);
  for (int32_t t : toks) {
    std::vector<double> e;
    for (int64_t i = 0; i < kEmbd; ++i) e.push_back(m->tensors.at("token_embd.weight").values[static_cast<size_t>(t * kEmbd + i)]);
    const auto h = rms(e, m->tensors.at("blk.0.attn_norm.weight"));
    for (int64_t i = 0; i < kEmbd; ++i) want[static_cast<size_t>(i)] += h[static_cast<size_t>(i)] * h[static_cast<size_t>(i)];
    h00[0] += h[0] * h[1];
  }
  for (const char* w : {"blk.0.attn_q.weight", "blk.0.attn_v.weight"}) {
    EXPECT_EQ(c.counts.at(w), 20);
    for (int64_t i = 0; i < kEmbd; ++i) EXPECT_NEAR(c.in_sum2.at(w)[static_cast<size_t>(i)], want[static_cast<size_t>(i)], 1e-4);
  }
  const auto H = c.hessians.at("blk.0.attn_k.weight")->matrix();
  EXPECT_NEAR(H[1], 2.0 / 20 * h00[0], 1e-4);
  EXPECT_EQ(c.hessians.at("blk.0.attn_k.weight"), c.hessians.at("blk.0.attn_q.weight"));

  const auto path = std::filesystem::temp_directory_path() / ("lowbit_cal_" + std::to_string(getpid()) + ".gguf");
  write_imatrix(c, path);
  const Imatrix im = load_imatrix(path);
  std::filesystem::remove(path);
  EXPECT_EQ(im.chunk_count, 2);
  EXPECT_EQ(im.chunk_size, 10);
  ASSERT_NE(im.find("blk.1.ffn_down.weight"), nullptr);
  const ImatrixEntry* q = im.find("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  for (int64_t i = 0; i < kEmbd; ++i) EXPECT_NEAR(q->importance[static_cast<size_t>(i)], want[static_cast<size_t>(i)] / 20, 1e-5);
}

}  // namespace
}  // namespace lowbit
