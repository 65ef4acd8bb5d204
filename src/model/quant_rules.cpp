#include "lowbit/model/quant_rules.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <regex>
#include <string>
#include <utility>

#include "lowbit/core/error.hpp"
#include "lowbit/io/gguf.hpp"

namespace lowbit {
namespace {

// llama.cpp's LLAMA_FTYPE ids (include/llama.h).
enum FileType : uint32_t {
  kAllF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ8_0 = 7, kQ5_0 = 8, kQ5_1 = 9,
  kQ2_K = 10, kQ3_K_S = 11, kQ3_K_M = 12, kQ3_K_L = 13, kQ4_K_S = 14, kQ4_K_M = 15,
  kQ5_K_S = 16, kQ5_K_M = 17, kQ6_K = 18, kIQ4_NL = 25, kIQ4_XS = 30, kBF16 = 32,
};

struct SchemeRow {
  std::string_view name;
  uint32_t file_type;
  Format base;
  bool pure;
};

// Q3_K, Q4_K and Q5_K alone have no llama.cpp file type; they are written with the
// "mostly Q<n>_K" small-mixture id, which is what such a file is.
constexpr std::array<SchemeRow, 22> kSchemes{{
    {"Q2_K", kQ2_K, Format::Q2_K, false},
    {"Q3_K_S", kQ3_K_S, Format::Q3_K, false},
    {"Q3_K_M", kQ3_K_M, Format::Q3_K, false},
    {"Q3_K_L", kQ3_K_L, Format::Q3_K, false},
    {"Q4_K_S", kQ4_K_S, Format::Q4_K, false},
    {"Q4_K_M", kQ4_K_M, Format::Q4_K, false},
    {"Q5_K_S", kQ5_K_S, Format::Q5_K, false},
    {"Q5_K_M", kQ5_K_M, Format::Q5_K, false},
    {"Q6_K", kQ6_K, Format::Q6_K, false},
    {"Q4_0", kQ4_0, Format::Q4_0, false},
    {"Q4_1", kQ4_1, Format::Q4_1, false},
    {"Q5_0", kQ5_0, Format::Q5_0, false},
    {"Q5_1", kQ5_1, Format::Q5_1, false},
    {"Q8_0", kQ8_0, Format::Q8_0, false},
    {"Q3_K", kQ3_K_S, Format::Q3_K, true},
    {"Q4_K", kQ4_K_S, Format::Q4_K, true},
    {"Q5_K", kQ5_K_S, Format::Q5_K, true},
    {"IQ4_NL", kIQ4_NL, Format::IQ4_NL, false},
    {"IQ4_XS", kIQ4_XS, Format::IQ4_XS, false},
    {"F16", kF16, Format::F16, false},
    {"BF16", kBF16, Format::BF16, false},
    {"F32", kAllF32, Format::F32, false},
}};

constexpr std::array<std::string_view, kSchemes.size()> kSchemeNames = [] {
  std::array<std::string_view, kSchemes.size()> out{};
  for (size_t i = 0; i < kSchemes.size(); ++i) out[i] = kSchemes[i].name;
  return out;
}();

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
         });
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }
bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// The broad tensor roles the rules distinguish (the order of the tests matters:
// "attn_qkv.weight" must win over "attn_q", "ffn_gate_inp" is caught earlier by
// tensor_is_quantizable).
enum class Role { token_embd, output, attn_v, attn_k, attn_q, attn_output, ffn_down, other };

Role role_of(std::string_view name) {
  if (name == "output.weight") return Role::output;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Role::token_embd;
  // Fused QKV and MLA's kv_b carry the value projection: llama.cpp treats them as attn_v.
  if (contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight") || contains(name, "attn_v.weight"))
    return Role::attn_v;
  if (contains(name, "attn_k.weight")) return Role::attn_k;
  if (contains(name, "attn_q.weight")) return Role::attn_q;
  if (contains(name, "attn_output.weight")) return Role::attn_output;
  // ffn_up / ffn_gate only have rules for the IQ mixtures lowbit does not offer.
  if (contains(name, "ffn_up") || contains(name, "ffn_gate")) return Role::other;
  if (contains(name, "ffn_down")) return Role::ffn_down;
  return Role::other;
}

// "blk.N." -> N; the rules that depend on depth need it.
int64_t layer_of(std::string_view name, const ModelInfo& model) {
  int64_t layer = -1;
  if (name.starts_with("blk.")) {
    const char* first = name.data() + 4;
    const char* last = name.data() + name.size();
    auto [p, ec] = std::from_chars(first, last, layer);
    if (ec != std::errc() || p == first || p == last || *p != '.') layer = -1;
  }
  if (layer < 0 || layer >= model.n_layer)
    throw Error("tensor '" + std::string(name) + "': no layer index in [0, " + std::to_string(model.n_layer) +
                ") (expected a 'blk.N.' prefix and N below the block count)");
  return layer;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every
// third layer in between.
bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int64_t block_of(Format f) { return traits(f).block_elems; }

// llama-quantize's per-tensor choice before the row-length fallback.
Format mixture_rule(uint32_t ft, Format type, const ModelInfo& m, std::string_view name, Role role, int64_t ne0) {
  const bool falcon = m.architecture == "falcon";
  const int64_t gqa = m.n_gqa();
  // Only the depth-dependent rules need the layer index (and its validation).
  auto layer = [&] { return layer_of(name, m); };

  if (role == Role::output || (!m.has_output && role == Role::token_embd)) {
    if (falcon || ne0 % block_of(type) != 0) return Format::Q8_0;
    return type == Format::Q8_0 ? Format::Q8_0 : Format::Q6_K;
  }
  switch (role) {
    case Role::attn_v: {
      const int64_t n = m.n_layer;
      if (ft == kQ2_K) type = gqa >= 4 ? Format::Q4_K : Format::Q3_K;
      else if (ft == kQ3_K_M) type = layer() < 2 ? Format::Q5_K : Format::Q4_K;
      else if (ft == kQ3_K_L) type = Format::Q5_K;
      else if ((ft == kIQ4_NL || ft == kIQ4_XS) && gqa >= 4) type = Format::Q5_K;
      else if ((ft == kQ4_K_M || ft == kQ5_K_M) && use_more_bits(layer(), n)) type = Format::Q6_K;
      else if (ft == kQ4_K_S && layer() < 4) type = Format::Q5_K;
      // A 70B llama shares each attn_v among 8 heads, so it is 8x smaller than
      // attn_q: more bits there cost little.
      const bool llama_70b = m.architecture == "llama" && n == 80 && m.n_head != m.n_head_kv && m.n_head_kv != 0;
      if (llama_70b && (type == Format::Q3_K || type == Format::Q4_K)) type = Format::Q5_K;
      if (m.n_expert == 8) type = Format::Q8_0;
      return type;
    }
    case Role::attn_k:
      return m.n_expert == 8 ? Format::Q8_0 : type;
    case Role::ffn_down: {
      if (ft == kQ2_K) return Format::Q3_K;
      if (ft == kQ3_K_L) return falcon ? Format::Q4_K : Format::Q5_K;
      const bool depth_rule = ft == kQ3_K_M || ft == kQ4_K_M || ft == kIQ4_NL || ft == kIQ4_XS || ft == kQ5_K_M ||
                              ft == kQ4_K_S || ((ft == kQ4_0 || ft == kQ5_0) && m.has_imatrix);
      if (!depth_rule) return type;
      const int64_t i = layer(), n = m.n_layer;
      if (ft == kQ3_K_M)
        return i < n / 16 ? Format::Q5_K : (!falcon || use_more_bits(i, n)) ? Format::Q4_K : Format::Q3_K;
      if (ft == kQ4_K_M) {
        if (falcon) return i < n / 16 ? Format::Q6_K : use_more_bits(i, n) ? Format::Q5_K : Format::Q4_K;
        return use_more_bits(i, n) ? Format::Q6_K : type;
      }
      if (i < n / 8 && (ft == kIQ4_NL || ft == kIQ4_XS) && !m.has_imatrix) return Format::Q5_K;
      if (ft == kQ5_K_M) return use_more_bits(i, n) ? Format::Q6_K : type;
      if (ft == kQ4_K_S) return (!falcon && i < n / 8) ? Format::Q5_K : type;
      // Q4_0 / Q5_0 with an imatrix: llama.cpp guards the first ffn_down layers.
      if ((ft == kQ4_0 || ft == kQ5_0) && m.has_imatrix && i < n / 8)
        return ft == kQ4_0 ? Format::Q4_1 : Format::Q5_1;
      return type;
    }
    case Role::attn_output:
      if (falcon) return ft == kQ3_K_L ? Format::Q4_K : type;
      if (m.n_expert == 8) {
        const bool bump = ft == kQ2_K || ft == kQ3_K_S || ft == kQ3_K_M || ft == kIQ4_NL || ft == kQ4_K_S ||
                          ft == kQ4_K_M || ft == kIQ4_XS;
        return bump ? Format::Q5_K : type;
      }
      if (ft == kQ2_K) return Format::Q3_K;
      if (ft == kQ3_K_M) return Format::Q4_K;
      if (ft == kQ3_K_L) return Format::Q5_K;
      return type;
    default:
      return type;
  }
}

// llama.cpp's answer to a row length the chosen type cannot hold: a 32-element
// type of similar size, else F16.
Format row_length_fallback(Format type, int64_t ne0) {
  if (ne0 % block_of(type) == 0) return type;
  Format fb = type;
  switch (type) {
    case Format::Q2_K:
    case Format::Q3_K: fb = Format::Q4_0; break;
    case Format::Q4_K: fb = Format::Q5_0; break;
    case Format::Q5_K: fb = Format::Q5_1; break;
    case Format::Q6_K: fb = Format::Q8_0; break;
    case Format::IQ4_XS: fb = Format::IQ4_NL; break;
    default: break;  // already a 32-element type
  }
  return ne0 % block_of(fb) == 0 ? fb : Format::F16;
}

}  // namespace

std::optional<QuantScheme> quant_scheme_from_name(std::string_view name) {
  for (const SchemeRow& r : kSchemes)
    if (iequals(r.name, name)) return QuantScheme{std::string(r.name), r.file_type, r.base, r.pure};
  return std::nullopt;
}

std::span<const std::string_view> quant_scheme_names() { return kSchemeNames; }

// Layer, head and expert counts above this are refused: the largest real models have
// a few hundred layers and heads, and the depth rules multiply the layer count.
constexpr int64_t kMaxModelCount = int64_t{1} << 24;

int64_t ModelInfo::n_gqa() const {
  const int64_t kv = n_head_kv == 0 ? n_head : n_head_kv;
  return kv == 0 ? 0 : n_head / kv;
}

ModelInfo ModelInfo::from_gguf(const GgufFile& file) {
  ModelInfo m;
  const std::string where = file.path().string() + ": metadata key '";
  // Metadata values are untrusted: a wrong type or an absurd count is an Error naming
  // the file and key, never a division by zero or an overflow in the rules below.
  auto fail = [&](const std::string& key, const std::string& why) -> Error { return Error(where + key + "' " + why); };
  if (const GgufValue* v = file.find("general.architecture")) {
    if (!v->is<std::string>()) throw fail("general.architecture", "is a " + gguf_type_name(v->type()) + ", not a string");
    m.architecture = v->as_string();
  }
  const std::string& a = m.architecture;
  // A count may be stored per layer as an array: llama.cpp's n_gqa() reads layer 0.
  auto count = [&](const std::string& key) -> int64_t {
    const GgufValue* v = file.find(key);
    if (!v) return 0;
    const GgufValue* item = v;
    if (v->is<GgufArray>()) {
      const GgufArray& arr = v->as_array();
      if (arr.items.empty()) return 0;
      item = &arr.items.front();
    }
    int64_t n = 0;
    try {
      n = item->as_int();
    } catch (const Error& e) {
      throw fail(key, std::string("is not an integer count: ") + e.what());
    }
    if (n < 0 || n > kMaxModelCount)
      throw fail(key, "= " + std::to_string(n) + " is outside [0, " + std::to_string(kMaxModelCount) + "]");
    return n;
  };
  if (!a.empty()) {
    m.n_layer = count(a + ".block_count");
    m.n_head = count(a + ".attention.head_count");
    m.n_head_kv = count(a + ".attention.head_count_kv");
    m.n_expert = count(a + ".expert_count");
  }
  if (m.n_head_kv == 0) m.n_head_kv = m.n_head;
  m.has_output = file.find_tensor("output.weight") != nullptr;
  return m;
}

bool tensor_is_quantizable(std::string_view name, std::span<const int64_t> shape) {
  // ggml_n_dims: trailing dimensions of 1 do not count.
  size_t dims = shape.size();
  while (dims > 1 && shape[dims - 1] == 1) --dims;
  if (dims < 2) return false;
  if (!ends_with(name, "weight")) return false;
  static constexpr std::string_view kKeep[] = {
      "_norm.weight",          // norms
      "ffn_gate_inp.weight",   // MoE router
      "ffn_gate_tid2eid.weight",
      "altup", "laurel", "per_layer_model_proj",  // small Gemma-3n tensors
      "ssm_conv1d", "shortconv.conv.weight",
      "indexer.k_proj.weight", "indexer.q_proj.weight",
      "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
      "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
      "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
      "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
      "attn_rel_b.weight",     // T5 relative position bias
      ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger",
      "a.rvq.codebook", "mm.a.code_embd",
  };
  for (std::string_view k : kKeep)
    if (contains(name, k)) return false;
  return name != "position_embd.weight" && name != "token_types.weight";
}

TensorPlan plan_tensor(const QuantScheme& scheme, const ModelInfo& model, std::string_view name,
                       std::span<const int64_t> shape, Format current) {
  // ModelInfo is a plain struct callers may fill themselves: the same bounds as
  // from_gguf, so the depth and head arithmetic below can neither trap nor overflow.
  for (const auto& [what, n] : {std::pair<const char*, int64_t>{"n_layer", model.n_layer}, {"n_head", model.n_head},
                                {"n_head_kv", model.n_head_kv}, {"n_expert", model.n_expert}})
    if (n < 0 || n > kMaxModelCount)
      throw Error("tensor '" + std::string(name) + "': model " + what + " = " + std::to_string(n) +
                  " is outside [0, " + std::to_string(kMaxModelCount) + "]");
  TensorPlan plan;
  if (!tensor_is_quantizable(name, shape)) {
    plan.format = current;
    return plan;
  }
  plan.quantizable = true;
  // Plain float targets: no rules and no fallback (every row length fits).
  if (!traits(scheme.base).quantized) {
    plan.format = scheme.base;
    return plan;
  }
  const int64_t ne0 = shape.empty() ? 1 : shape[0];
  const Format wanted =
      scheme.pure ? scheme.base : mixture_rule(scheme.file_type, scheme.base, model, name, role_of(name), ne0);
  plan.format = row_length_fallback(wanted, ne0);
  if (plan.format != wanted) plan.fallback_from = wanted;
  return plan;
}

}  // namespace lowbit

namespace lowbit {

TensorPlan plan_tensor(const QuantScheme& scheme, const ModelInfo& model, std::string_view name,
                       std::span<const int64_t> shape, Format current, const TensorTypeOverrides& ov) {
  TensorPlan plan = plan_tensor(scheme, model, name, shape, current);
  if (!plan.quantizable || ov.empty()) return plan;
  if (ov.leave_output_tensor && name == "output.weight") {
    plan.format = current;
    plan.fallback_from.reset();
    plan.quantizable = false;
    plan.overridden = true;
    return plan;
  }
  std::optional<Format> wanted;
  if (!scheme.pure && traits(scheme.base).quantized) {  // llama-quantize's condition for --tensor-type
    const std::string n(name);
    for (const auto& [pattern, type] : ov.tensor_types) {
      std::regex re;
      try {
        re = std::regex(pattern);
      } catch (const std::regex_error& e) {
        throw Error("--tensor-type: '" + pattern + "' is not a valid regular expression: " + e.what());
      }
      if (std::regex_search(n, re)) wanted = type;  // the last match wins, as in llama-quantize
    }
  }
  if (ov.token_embedding_type && name == "token_embd.weight") wanted = ov.token_embedding_type;
  if (ov.output_tensor_type && name == "output.weight") wanted = ov.output_tensor_type;
  if (!wanted) return plan;
  plan.overridden = true;
  plan.fallback_from.reset();
  if (!traits(*wanted).quantized) {
    plan.format = *wanted;
    return plan;
  }
  const int64_t ne0 = shape.empty() ? 1 : shape[0];
  plan.format = row_length_fallback(*wanted, ne0);
  if (plan.format != *wanted) plan.fallback_from = *wanted;
  return plan;
}

}  // namespace lowbit
