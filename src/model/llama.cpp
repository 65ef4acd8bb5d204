#include "lowbit/model/llama.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "gptq/blas.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/kernels/registry.hpp"
#include "lowbit/kernels/packed_matrix.hpp"
#include "lowbit/model/llama_blocks.hpp"
#include "model/linear.hpp"

namespace lowbit {

using detail::LinearWeight;

struct LlamaLayer {
  std::vector<float> attn_norm, ffn_norm;
  LinearWeight q, k, v, o, gate, up, down;
};

struct LlamaModel::Impl {
  GgufFile file;
  LlamaHparams hp;
  std::optional<Tokenizer> tokenizer;
  LinearWeight token_embd, output;
  std::vector<float> output_norm;
  std::vector<float> rope_factors;  // rope_freqs.weight (Llama 3), empty when absent
  std::vector<LlamaLayer> layers;
  std::map<std::string, std::vector<std::byte>> replaced;  // LlamaModel::replace_weight's bytes

  explicit Impl(GgufFile f) : file(std::move(f)) {}
};

namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t int_key(const GgufFile& f, const std::string& key, std::optional<int64_t> fallback) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) {
    if (!fallback) throw Error(f.path().string() + ": required key " + key + " is missing");
    return *fallback;
  }
  const int64_t x = v->as_int();
  if (x < 0 || x > (int64_t{1} << 31))
    throw Error(f.path().string() + ": " + key + " = " + std::to_string(x) + " is out of range");
  return x;
}

float float_key(const GgufFile& f, const std::string& key, float fallback) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return fallback;
  if (v->is<float>()) return v->get<float>();
  if (v->is<double>()) return static_cast<float>(v->get<double>());
  throw Error(f.path().string() + ": " + key + " is a " + gguf_type_name(v->type()) + ", expected float32");
}

LinearWeight linear_weight(const GgufFile& f, const std::string& name, int64_t in, int64_t out) {
  const GgufTensorInfo* t = f.find_tensor(name);
  if (t == nullptr) throw Error(f.path().string() + ": tensor " + name + " is missing");
  if (t->shape.size() != 2 || t->shape[0] != in || t->shape[1] != out)
    throw Error(f.path().string() + ": tensor " + name + " has shape " + shape_text(t->shape) + ", expected [" +
                std::to_string(in) + ", " + std::to_string(out) + "]");
  select_dequantize_kernel(t->format);  // throws for a format lowbit cannot decode
  LinearWeight w;
  w.name = name;
  w.format = t->format;
  w.data = f.data(*t);
  w.rows = out;
  w.cols = in;
  return w;
}

std::vector<float> vector_tensor(const GgufFile& f, const std::string& name, int64_t n) {
  const GgufTensorInfo* t = f.find_tensor(name);
  if (t == nullptr) throw Error(f.path().string() + ": tensor " + name + " is missing");
  if (t->elements() != n || t->shape.size() != 1)
    throw Error(f.path().string() + ": tensor " + name + " has shape " + shape_text(t->shape) + ", expected [" +
                std::to_string(n) + "]");
  std::vector<float> out(static_cast<size_t>(n));
  dequantize(t->format, f.data(*t), MatrixView<float>(out.data(), 1, n));
  return out;
}

}  // namespace

LlamaModel::LlamaModel(LlamaModel&&) noexcept = default;
LlamaModel& LlamaModel::operator=(LlamaModel&&) noexcept = default;
LlamaModel::~LlamaModel() = default;

LlamaModel LlamaModel::load(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>(GgufFile::open(path));
  const GgufFile& f = impl->file;
  const std::string where = path.string() + ": ";
  const GgufValue* arch = f.find("general.architecture");
  if (arch == nullptr || !arch->is<std::string>()) throw Error(where + "general.architecture is missing");
  LlamaHparams& hp = impl->hp;
  hp.architecture = arch->as_string();
  if (hp.architecture != "llama")
    throw Error(where + "architecture '" + hp.architecture + "' is not supported by lowbit's runtime (it runs llama)");
  const std::string a = hp.architecture + ".";
  if (int_key(f, a + "expert_count", 0) > 0) throw Error(where + "mixture-of-experts llama models are not supported");
  hp.n_layer = int_key(f, a + "block_count", std::nullopt);
  hp.n_embd = int_key(f, a + "embedding_length", std::nullopt);
  hp.n_ff = int_key(f, a + "feed_forward_length", std::nullopt);
  hp.n_head = int_key(f, a + "attention.head_count", std::nullopt);
  hp.n_head_kv = int_key(f, a + "attention.head_count_kv", hp.n_head);
  if (hp.n_layer < 1 || hp.n_embd < 1 || hp.n_ff < 1 || hp.n_head < 1 || hp.n_head_kv < 1 ||
      hp.n_head % hp.n_head_kv != 0)
    throw Error(where + "inconsistent hyperparameters: " + std::to_string(hp.n_layer) + " layers, embedding " +
                std::to_string(hp.n_embd) + ", " + std::to_string(hp.n_head) + " heads, " +
                std::to_string(hp.n_head_kv) + " KV heads");
  hp.head_dim = int_key(f, a + "attention.key_length", hp.n_embd / hp.n_head);
  if (int_key(f, a + "attention.value_length", hp.head_dim) != hp.head_dim || hp.head_dim < 2 || hp.head_dim % 2)
    throw Error(where + "attention key/value lengths differ or are odd (head size " + std::to_string(hp.head_dim) + ")");
  hp.n_ctx_train = int_key(f, a + "context_length", 0);
  hp.rope_dim = int_key(f, a + "rope.dimension_count", hp.head_dim);
  if (hp.rope_dim > hp.head_dim || hp.rope_dim % 2)
    throw Error(where + "rope.dimension_count " + std::to_string(hp.rope_dim) + " does not fit head size " +
                std::to_string(hp.head_dim));
  hp.rms_eps = float_key(f, a + "attention.layer_norm_rms_epsilon", 1e-5f);
  hp.rope_freq_base = float_key(f, a + "rope.freq_base", 10000.0f);
  std::string scaling = "none";
  if (const GgufValue* v = f.find(a + "rope.scaling.type")) scaling = v->as_string();
  float factor = float_key(f, a + "rope.scaling.factor", 0.0f);
  if (factor == 0.0f) factor = float_key(f, a + "rope.scale_linear", 0.0f);
  if (scaling == "linear" || (scaling == "none" && f.find(a + "rope.scaling.type") == nullptr && factor > 0)) {
    if (!(factor > 0)) throw Error(where + "linear rope scaling without a positive factor");
    hp.rope_freq_scale = 1.0f / factor;
  } else if (scaling != "none") {
    throw Error(where + "rope scaling '" + scaling + "' is not supported (lowbit's runtime does none and linear)");
  }

  impl->tokenizer.emplace(Tokenizer::from_gguf(f));
  const GgufTensorInfo* emb = f.find_tensor("token_embd.weight");
  if (emb == nullptr || emb->shape.size() != 2) throw Error(where + "tensor token_embd.weight is missing or not 2-D");
  hp.n_vocab = emb->shape[1];
  if (impl->tokenizer->vocab_size() != hp.n_vocab)
    throw Error(where + "the tokenizer has " + std::to_string(impl->tokenizer->vocab_size()) +
                " tokens, token_embd.weight " + std::to_string(hp.n_vocab) + " rows");
  impl->token_embd = linear_weight(f, "token_embd.weight", hp.n_embd, hp.n_vocab);
  hp.tied_output = f.find_tensor("output.weight") == nullptr;
  impl->output = hp.tied_output ? impl->token_embd : linear_weight(f, "output.weight", hp.n_embd, hp.n_vocab);
  impl->output_norm = vector_tensor(f, "output_norm.weight", hp.n_embd);
  if (f.find_tensor("rope_freqs.weight") != nullptr)
    impl->rope_factors = vector_tensor(f, "rope_freqs.weight", hp.rope_dim / 2);

  const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
  for (int64_t i = 0; i < hp.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    for (const char* bias : {"attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias", "ffn_down.bias"})
      if (f.find_tensor(b + bias) != nullptr)
        throw Error(where + "tensor " + b + bias + ": biases are not supported by lowbit's llama runtime");
    LlamaLayer L;
    L.attn_norm = vector_tensor(f, b + "attn_norm.weight", hp.n_embd);
    L.ffn_norm = vector_tensor(f, b + "ffn_norm.weight", hp.n_embd);
    L.q = linear_weight(f, b + "attn_q.weight", hp.n_embd, q_dim);
    L.k = linear_weight(f, b + "attn_k.weight", hp.n_embd, kv_dim);
    L.v = linear_weight(f, b + "attn_v.weight", hp.n_embd, kv_dim);
    L.o = linear_weight(f, b + "attn_output.weight", q_dim, hp.n_embd);
    L.gate = linear_weight(f, b + "ffn_gate.weight", hp.n_embd, hp.n_ff);
    L.up = linear_weight(f, b + "ffn_up.weight", hp.n_embd, hp.n_ff);
    L.down = linear_weight(f, b + "ffn_down.weight", hp.n_ff, hp.n_embd);
    impl->layers.push_back(std::move(L));
  }
  LlamaModel m;
  m.impl_ = std::move(impl);
  return m;
}

const LlamaHparams& LlamaModel::hparams() const { return impl_->hp; }
const Tokenizer& LlamaModel::tokenizer() const { return *impl_->tokenizer; }
const GgufFile& LlamaModel::file() const { return impl_->file; }

std::vector<std::string> LlamaModel::linear_weights() const {
  std::vector<std::string> out;
  for (const LlamaLayer& L : impl_->layers)
    for (const LinearWeight* w : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) out.push_back(w->name);
  out.push_back(impl_->output.name);
  return out;
}

void LlamaModel::replace_weight(const std::string& name, Format format, std::vector<std::byte> bytes) {
  LinearWeight* w = nullptr;
  for (LlamaLayer& L : impl_->layers)
    for (LinearWeight* c : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
      if (c->name == name) w = c;
  if (w == nullptr) throw Error("replace_weight: '" + name + "' is not a block weight of the model");
  select_dequantize_kernel(format);  // throws for a format lowbit cannot decode
  if (w->cols % traits(format).block_elems != 0 || bytes.size() != quantized_size(format, w->rows, w->cols))
    throw Error("replace_weight " + name + ": " + std::to_string(bytes.size()) + " bytes of " +
                std::string(traits(format).name) + " do not hold [" + std::to_string(w->rows) + " x " +
                std::to_string(w->cols) + "]");
  std::vector<std::byte>& held = impl_->replaced[name];
  held = std::move(bytes);
  w->format = format;
  w->data = held;
}

void LlamaModel::restore_weight(const std::string& name) {
  const auto it = impl_->replaced.find(name);
  if (it == impl_->replaced.end()) return;
  const GgufFile& f = impl_->file;
  for (LlamaLayer& L : impl_->layers)
    for (LinearWeight* c : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
      if (c->name == name) {
        const GgufTensorInfo* t = f.find_tensor(name);
        c->format = t->format;
        c->data = f.data(*t);
      }
  impl_->replaced.erase(it);
}

// ---------------------------------------------------------------- context

struct LlamaContext::State {
  const LlamaModel::Impl* m = nullptr;
  int64_t n_ctx = 0, n_past = 0;
  std::vector<float> k_cache, v_cache;  // [layer][pos][kv_dim]
  LinearObserver observer;
  MatmulPath path = MatmulPath::automatic;
  bool packed_prompts = false;  // LinearPrecision::fast
  mutable std::unordered_map<const LinearWeight*, std::unique_ptr<PackedMatrix>> packed;

  void observe(const LinearWeight& w, ConstMatrixView<float> x) const {
    if (observer) observer(w.name, x);
  }
  void lin(const LinearWeight& w, ConstMatrixView<float> x, MatrixView<float> y) const {
    observe(w, x);
    if (packed_prompts && x.rows > kMatmulDotMaxBatch && PackedMatrix::supports(w.format)) {
      std::unique_ptr<PackedMatrix>& p = packed[&w];
      if (!p) p = std::make_unique<PackedMatrix>(w.format, w.data, w.rows, w.cols);
      p->multiply(x, y);
      return;
    }
    // f32 precision: the dequant path for every batch, so no activation is rounded.
    detail::linear(w, x, y, path);
  }
};

namespace {

// y = x / sqrt(mean(x^2) + eps) * w, the sum in double as ggml's rms_norm.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

// llama's rope (ggml's "normal" mode): pairs (x[2i], x[2i+1]) of the first rope_dim
// values of each head rotate by pos * freq_scale * base^(-2i/rope_dim) / factor[i],
// the angle built by repeated float multiplication as ggml does.
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rope_dim, int64_t pos, const LlamaHparams& hp,
          const std::vector<float>& factors) {
  const float theta_scale = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(rope_dim));
  std::vector<float> cs(static_cast<size_t>(rope_dim));
  float theta = static_cast<float>(pos);
  for (int64_t i = 0; i < rope_dim / 2; ++i) {
    float t = hp.rope_freq_scale * theta;
    if (!factors.empty()) t /= factors[static_cast<size_t>(i)];
    cs[static_cast<size_t>(2 * i)] = std::cos(t);
    cs[static_cast<size_t>(2 * i + 1)] = std::sin(t);
    theta *= theta_scale;
  }
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < rope_dim / 2; ++i) {
      const float c = cs[static_cast<size_t>(2 * i)], s = cs[static_cast<size_t>(2 * i + 1)];
      const float a = v[2 * i], b = v[2 * i + 1];
      v[2 * i] = a * c - b * s;
      v[2 * i + 1] = a * s + b * c;
    }
  }
}

// Causal attention of T queries at positions p0..p0+T-1 over the keys/values of
// positions 0..p0+T-1 (rows of kvd floats in kc/vc), one head per task: scores = Q K^T
// (one SGEMM), causal mask, softmax (sum in double), out = P V (one SGEMM).
void attend(const LlamaHparams& hp, const float* q, int64_t T, const float* kc, const float* vc, int64_t p0,
            float* att) {
  const int64_t hd = hp.head_dim, qd = hp.n_head * hd, kvd = hp.n_head_kv * hd, L = p0 + T;
  const float kq_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t group = hp.n_head / hp.n_head_kv;
  blas::ThreadScope one(1);
  parallel_for(hp.n_head, 1, [&](int64_t h0, int64_t h1) {
    std::vector<float> s(static_cast<size_t>(T * L));
    for (int64_t head = h0; head < h1; ++head) {
      const int64_t kvh = head / group;
      cblas_sgemm(LowbitRowMajor, LowbitNoTrans, LowbitTrans, static_cast<int>(T), static_cast<int>(L),
                  static_cast<int>(hd), kq_scale, q + head * hd, static_cast<int>(qd), kc + kvh * hd,
                  static_cast<int>(kvd), 0.0f, s.data(), static_cast<int>(L));
      for (int64_t t = 0; t < T; ++t) {
        float* row = s.data() + t * L;
        const int64_t visible = p0 + t + 1;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < visible; ++j) mx = std::max(mx, row[j]);
        double sum = 0;
        for (int64_t j = 0; j < visible; ++j) {
          row[j] = std::exp(row[j] - mx);
          sum += row[j];
        }
        const auto inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j < visible; ++j) row[j] *= inv;
        for (int64_t j = visible; j < L; ++j) row[j] = 0.0f;
      }
      cblas_sgemm(LowbitRowMajor, LowbitNoTrans, LowbitNoTrans, static_cast<int>(T), static_cast<int>(hd),
                  static_cast<int>(L), 1.0f, s.data(), static_cast<int>(L), vc + kvh * hd, static_cast<int>(kvd),
                  0.0f, att + head * hd, static_cast<int>(qd));
    }
  });
}

// g = silu(g) * u, element by element.
void swiglu(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float a = g[i];
    g[i] = a / (1.0f + std::exp(-a)) * u[i];
  }
}

void add_to(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

LlamaContext::LlamaContext(const LlamaModel& model, int64_t n_ctx, LinearPrecision precision)
    : s_(std::make_unique<State>()) {
  if (n_ctx < 1) throw Error("LlamaContext: n_ctx must be at least 1, got " + std::to_string(n_ctx));
  s_->path = precision == LinearPrecision::f32 ? MatmulPath::dequant : MatmulPath::automatic;
  s_->packed_prompts = precision == LinearPrecision::fast;
  s_->m = &model.impl();
  s_->n_ctx = n_ctx;
  const LlamaHparams& hp = s_->m->hp;
  const size_t n = static_cast<size_t>(hp.n_layer * n_ctx * hp.n_head_kv * hp.head_dim);
  s_->k_cache.assign(n, 0.0f);
  s_->v_cache.assign(n, 0.0f);
}
LlamaContext::LlamaContext(LlamaContext&&) noexcept = default;
LlamaContext& LlamaContext::operator=(LlamaContext&&) noexcept = default;
LlamaContext::~LlamaContext() = default;

int64_t LlamaContext::n_ctx() const { return s_->n_ctx; }
int64_t LlamaContext::n_past() const { return s_->n_past; }
void LlamaContext::clear() { s_->n_past = 0; }
void LlamaContext::set_observer(LinearObserver observer) { s_->observer = std::move(observer); }

std::vector<float> LlamaContext::decode(std::span<const int32_t> tokens, bool all_logits) {
  const LlamaModel::Impl& m = *s_->m;
  const LlamaHparams& hp = m.hp;
  const auto T = static_cast<int64_t>(tokens.size());
  if (T == 0) throw Error("decode: the batch is empty");
  if (s_->n_past + T > s_->n_ctx)
    throw Error("decode: " + std::to_string(T) + " tokens after " + std::to_string(s_->n_past) +
                " do not fit in a context of " + std::to_string(s_->n_ctx));
  for (int32_t t : tokens)
    if (t < 0 || t >= hp.n_vocab)
      throw Error("decode: token id " + std::to_string(t) + " is outside the vocabulary of " +
                  std::to_string(hp.n_vocab));
  const int64_t E = hp.n_embd, hd = hp.head_dim, qd = hp.n_head * hd, kvd = hp.n_head_kv * hd, F = hp.n_ff;
  const int64_t p0 = s_->n_past, L = p0 + T;
  const auto buf = [](int64_t n) { return std::vector<float>(static_cast<size_t>(n)); };
  std::vector<float> x = buf(T * E), h = buf(T * E), q = buf(T * qd), k = buf(T * kvd), v = buf(T * kvd),
                     att = buf(T * qd), g = buf(T * F), u = buf(T * F);
  for (int64_t t = 0; t < T; ++t) detail::weight_row(m.token_embd, tokens[static_cast<size_t>(t)], x.data() + t * E);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const LlamaLayer& ly = m.layers[static_cast<size_t>(il)];
    for (int64_t t = 0; t < T; ++t) rms_norm(x.data() + t * E, ly.attn_norm.data(), h.data() + t * E, E, hp.rms_eps);
    const ConstMatrixView<float> hv(h.data(), T, E);
    s_->lin(ly.q, hv, MatrixView<float>(q.data(), T, qd));
    s_->lin(ly.k, hv, MatrixView<float>(k.data(), T, kvd));
    s_->lin(ly.v, hv, MatrixView<float>(v.data(), T, kvd));
    float* kc = s_->k_cache.data() + il * s_->n_ctx * kvd;
    float* vc = s_->v_cache.data() + il * s_->n_ctx * kvd;
    for (int64_t t = 0; t < T; ++t) {
      rope(q.data() + t * qd, hp.n_head, hd, hp.rope_dim, p0 + t, hp, m.rope_factors);
      rope(k.data() + t * kvd, hp.n_head_kv, hd, hp.rope_dim, p0 + t, hp, m.rope_factors);
      for (int64_t i = 0; i < kvd; ++i) {
        kc[(p0 + t) * kvd + i] = k[static_cast<size_t>(t * kvd + i)];
        vc[(p0 + t) * kvd + i] = v[static_cast<size_t>(t * kvd + i)];
      }
    }
    attend(hp, q.data(), T, kc, vc, p0, att.data());
    s_->lin(ly.o, ConstMatrixView<float>(att.data(), T, qd), MatrixView<float>(h.data(), T, E));
    add_to(x.data(), h.data(), T * E);

    for (int64_t t = 0; t < T; ++t) rms_norm(x.data() + t * E, ly.ffn_norm.data(), h.data() + t * E, E, hp.rms_eps);
    s_->lin(ly.gate, hv, MatrixView<float>(g.data(), T, F));
    s_->lin(ly.up, hv, MatrixView<float>(u.data(), T, F));
    swiglu(g.data(), u.data(), T * F);
    s_->lin(ly.down, ConstMatrixView<float>(g.data(), T, F), MatrixView<float>(h.data(), T, E));
    add_to(x.data(), h.data(), T * E);
  }
  s_->n_past = L;

  const int64_t first = all_logits ? 0 : T - 1, rows = T - first;
  for (int64_t t = first; t < T; ++t) rms_norm(x.data() + t * E, m.output_norm.data(), h.data() + t * E, E, hp.rms_eps);
  std::vector<float> logits = buf(rows * hp.n_vocab);
  s_->lin(m.output, ConstMatrixView<float>(h.data() + first * E, rows, E),
          MatrixView<float>(logits.data(), rows, hp.n_vocab));
  return logits;
}

// ---------------------------------------------------------------- blocks

namespace {

void check_view(const char* step, int64_t layer, const char* what, const ConstMatrixView<float>& v, int64_t rows,
                int64_t cols) {
  if (v.data == nullptr || v.rows != rows || v.cols != cols || v.stride != cols)
    throw Error(std::string("LlamaBlocks::") + step + (layer >= 0 ? " (layer " + std::to_string(layer) + ")" : "") +
                ": " + what + " is [" + std::to_string(v.rows) + " x " + std::to_string(v.cols) + ", stride " +
                std::to_string(v.stride) + "], expected a contiguous [" + std::to_string(rows) + " x " +
                std::to_string(cols) + "]");
}

void block_linear(const LinearWeight& w, ConstMatrixView<float> x, MatrixView<float> y) {
  detail::linear(w, x, y, MatmulPath::dequant);  // LinearPrecision::f32's path
}

}  // namespace

LlamaBlocks::LlamaBlocks(const LlamaModel& model) : model_(&model) {}

namespace {
const LlamaLayer& layer_of(const LlamaModel::Impl& m, const char* step, int64_t layer) {
  if (layer < 0 || layer >= m.hp.n_layer)
    throw Error(std::string("LlamaBlocks::") + step + ": layer " + std::to_string(layer) + " is outside [0, " +
                std::to_string(m.hp.n_layer) + ")");
  return m.layers[static_cast<size_t>(layer)];
}
}  // namespace

void LlamaBlocks::embed(std::span<const int32_t> tokens, MatrixView<float> x) const {
  const LlamaModel::Impl& m = model_->impl();
  const auto T = static_cast<int64_t>(tokens.size());
  check_view("embed", -1, "x", x, T, m.hp.n_embd);
  for (int64_t t = 0; t < T; ++t) {
    const int32_t id = tokens[static_cast<size_t>(t)];
    if (id < 0 || id >= m.hp.n_vocab)
      throw Error("LlamaBlocks::embed: token id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(m.hp.n_vocab));
    detail::weight_row(m.token_embd, id, x.row(t));
  }
}

void LlamaBlocks::attn_input(int64_t layer, ConstMatrixView<float> x, MatrixView<float> h) const {
  const LlamaModel::Impl& m = model_->impl();
  const LlamaLayer& ly = layer_of(m, "attn_input", layer);
  const int64_t E = m.hp.n_embd;
  check_view("attn_input", layer, "x", x, x.rows, E);
  check_view("attn_input", layer, "h", h, x.rows, E);
  for (int64_t t = 0; t < x.rows; ++t) rms_norm(x.row(t), ly.attn_norm.data(), h.row(t), E, m.hp.rms_eps);
}

void LlamaBlocks::attention(int64_t layer, ConstMatrixView<float> h, MatrixView<float> att) const {
  const LlamaModel::Impl& m = model_->impl();
  const LlamaHparams& hp = m.hp;
  const LlamaLayer& ly = layer_of(m, "attention", layer);
  const int64_t T = h.rows, hd = hp.head_dim, qd = hp.n_head * hd, kvd = hp.n_head_kv * hd;
  check_view("attention", layer, "h", h, T, hp.n_embd);
  check_view("attention", layer, "att", att, T, qd);
  if (T == 0) return;
  std::vector<float> q(static_cast<size_t>(T * qd)), k(static_cast<size_t>(T * kvd)), v(static_cast<size_t>(T * kvd));
  block_linear(ly.q, h, MatrixView<float>(q.data(), T, qd));
  block_linear(ly.k, h, MatrixView<float>(k.data(), T, kvd));
  block_linear(ly.v, h, MatrixView<float>(v.data(), T, kvd));
  for (int64_t t = 0; t < T; ++t) {
    rope(q.data() + t * qd, hp.n_head, hd, hp.rope_dim, t, hp, m.rope_factors);
    rope(k.data() + t * kvd, hp.n_head_kv, hd, hp.rope_dim, t, hp, m.rope_factors);
  }
  attend(hp, q.data(), T, k.data(), v.data(), 0, att.data);
}

void LlamaBlocks::attn_residual(int64_t layer, ConstMatrixView<float> att, MatrixView<float> x) const {
  const LlamaModel::Impl& m = model_->impl();
  const LlamaLayer& ly = layer_of(m, "attn_residual", layer);
  const int64_t T = x.rows, E = m.hp.n_embd;
  check_view("attn_residual", layer, "x", x, T, E);
  check_view("attn_residual", layer, "att", att, T, m.hp.n_head * m.hp.head_dim);
  std::vector<float> y(static_cast<size_t>(T * E));
  block_linear(ly.o, att, MatrixView<float>(y.data(), T, E));
  add_to(x.data, y.data(), T * E);
}

void LlamaBlocks::ffn_input(int64_t layer, ConstMatrixView<float> x, MatrixView<float> h) const {
  const LlamaModel::Impl& m = model_->impl();
  const LlamaLayer& ly = layer_of(m, "ffn_input", layer);
  const int64_t E = m.hp.n_embd;
  check_view("ffn_input", layer, "x", x, x.rows, E);
  check_view("ffn_input", layer, "h", h, x.rows, E);
  for (int64_t t = 0; t < x.rows; ++t) rms_norm(x.row(t), ly.ffn_norm.data(), h.row(t), E, m.hp.rms_eps);
}

void LlamaBlocks::ffn_act(int64_t layer, ConstMatrixView<float> h, MatrixView<float> a) const {
  const LlamaModel::Impl& m = model_->impl();
  const LlamaLayer& ly = layer_of(m, "ffn_act", layer);
  const int64_t T = h.rows, F = m.hp.n_ff;
  check_view("ffn_act", layer, "h", h, T, m.hp.n_embd);
  check_view("ffn_act", layer, "a", a, T, F);
  std::vector<float> u(static_cast<size_t>(T * F));
  block_linear(ly.gate, h, a);
  block_linear(ly.up, h, MatrixView<float>(u.data(), T, F));
  swiglu(a.data, u.data(), T * F);
}

void LlamaBlocks::ffn_residual(int64_t layer, ConstMatrixView<float> a, MatrixView<float> x) const {
  const LlamaModel::Impl& m = model_->impl();
  const LlamaLayer& ly = layer_of(m, "ffn_residual", layer);
  const int64_t T = x.rows, E = m.hp.n_embd;
  check_view("ffn_residual", layer, "x", x, T, E);
  check_view("ffn_residual", layer, "a", a, T, m.hp.n_ff);
  std::vector<float> y(static_cast<size_t>(T * E));
  block_linear(ly.down, a, MatrixView<float>(y.data(), T, E));
  add_to(x.data, y.data(), T * E);
}

void LlamaBlocks::output_input(ConstMatrixView<float> x, MatrixView<float> h) const {
  const LlamaModel::Impl& m = model_->impl();
  const int64_t E = m.hp.n_embd;
  check_view("output_input", -1, "x", x, x.rows, E);
  check_view("output_input", -1, "h", h, x.rows, E);
  for (int64_t t = 0; t < x.rows; ++t) rms_norm(x.row(t), m.output_norm.data(), h.row(t), E, m.hp.rms_eps);
}

}  // namespace lowbit
