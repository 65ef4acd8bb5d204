// llama-quantize's per-tensor rules (lowbit/model/quant_rules.hpp). The expected
// types below are written from the rules as docs/cli.md states them, worked out by
// hand for each case (not taken from plan_tensor's output).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/model/quant_rules.hpp"

namespace lowbit {
namespace {

QuantScheme scheme(const char* name) {
  auto s = quant_scheme_from_name(name);
  EXPECT_TRUE(s.has_value()) << name;
  return s.value_or(QuantScheme{});
}

// A 32-layer llama with 32 query heads over 8 KV heads (GQA 4) and its own output.weight.
ModelInfo llama32() {
  ModelInfo m;
  m.architecture = "llama";
  m.n_layer = 32;
  m.n_head = 32;
  m.n_head_kv = 8;
  return m;
}

Format plan(const char* scheme_name, const ModelInfo& m, const std::string& name, std::vector<int64_t> shape,
            Format current = Format::F32) {
  return plan_tensor(scheme(scheme_name), m, name, shape, current).format;
}

struct Case {
  const char* scheme;
  std::string tensor;
  std::vector<int64_t> shape;  // GGUF order: ne0 first
  Format expected;
};

// With 32 layers, "more bits" layers are i < 4, i >= 28 and (i - 4) % 3 == 2:
// 0-3, 6, 9, 12, 15, 18, 21, 24, 27, 28-31.
TEST(QuantRules, Llama32Table) {
  const ModelInfo m = llama32();
  const std::vector<int64_t> sq{4096, 4096}, kv{4096, 1024}, down{14336, 4096}, out{4096, 32000};
  const std::vector<Case> cases = {
      // Q4_K_M: attn_v and ffn_down Q6_K in the more-bits layers, else Q4_K.
      {"Q4_K_M", "blk.0.attn_v.weight", kv, Format::Q6_K},
      {"Q4_K_M", "blk.5.attn_v.weight", kv, Format::Q4_K},
      {"Q4_K_M", "blk.6.attn_v.weight", kv, Format::Q6_K},
      {"Q4_K_M", "blk.27.attn_v.weight", kv, Format::Q6_K},
      {"Q4_K_M", "blk.26.attn_v.weight", kv, Format::Q4_K},
      {"Q4_K_M", "blk.9.ffn_down.weight", down, Format::Q6_K},
      {"Q4_K_M", "blk.10.ffn_down.weight", down, Format::Q4_K},
      {"Q4_K_M", "blk.31.ffn_down.weight", down, Format::Q6_K},
      {"Q4_K_M", "blk.5.attn_q.weight", sq, Format::Q4_K},
      {"Q4_K_M", "blk.5.attn_k.weight", kv, Format::Q4_K},
      {"Q4_K_M", "blk.5.attn_output.weight", sq, Format::Q4_K},
      {"Q4_K_M", "blk.5.ffn_up.weight", {4096, 14336}, Format::Q4_K},
      {"Q4_K_M", "blk.5.ffn_gate.weight", {4096, 14336}, Format::Q4_K},
      {"Q4_K_M", "output.weight", out, Format::Q6_K},
      {"Q4_K_M", "token_embd.weight", out, Format::Q4_K},  // untied: the mixture's base type
      {"Q4_K_M", "blk.0.attn_norm.weight", {4096}, Format::F32},
      // Q5_K_M: the same layers get Q6_K, the rest Q5_K.
      {"Q5_K_M", "blk.0.ffn_down.weight", down, Format::Q6_K},
      {"Q5_K_M", "blk.5.ffn_down.weight", down, Format::Q5_K},
      {"Q5_K_M", "blk.12.attn_v.weight", kv, Format::Q6_K},
      {"Q5_K_M", "blk.13.attn_v.weight", kv, Format::Q5_K},
      // Q3_K_M: attn_v Q5_K in layers 0-1 else Q4_K; attn_output Q4_K; ffn_down Q5_K
      // in the first sixteenth (layers 0-1) else Q4_K; the rest Q3_K.
      {"Q3_K_M", "blk.0.attn_v.weight", kv, Format::Q5_K},
      {"Q3_K_M", "blk.1.attn_v.weight", kv, Format::Q5_K},
      {"Q3_K_M", "blk.2.attn_v.weight", kv, Format::Q4_K},
      {"Q3_K_M", "blk.3.attn_output.weight", sq, Format::Q4_K},
      {"Q3_K_M", "blk.1.ffn_down.weight", down, Format::Q5_K},
      {"Q3_K_M", "blk.2.ffn_down.weight", down, Format::Q4_K},
      {"Q3_K_M", "blk.3.attn_q.weight", sq, Format::Q3_K},
      {"Q3_K_M", "output.weight", out, Format::Q6_K},
      // Q3_K_L: attn_v, ffn_down, attn_output Q5_K.
      {"Q3_K_L", "blk.7.attn_v.weight", kv, Format::Q5_K},
      {"Q3_K_L", "blk.7.ffn_down.weight", down, Format::Q5_K},
      {"Q3_K_L", "blk.7.attn_output.weight", sq, Format::Q5_K},
      {"Q3_K_L", "blk.7.attn_q.weight", sq, Format::Q3_K},
      // Q3_K_S: only the output tensor differs.
      {"Q3_K_S", "blk.0.attn_v.weight", kv, Format::Q3_K},
      {"Q3_K_S", "blk.0.ffn_down.weight", down, Format::Q3_K},
      {"Q3_K_S", "output.weight", out, Format::Q6_K},
      // Q4_K_S: attn_v Q5_K in layers 0-3, ffn_down Q5_K in the first eighth (0-3).
      {"Q4_K_S", "blk.3.attn_v.weight", kv, Format::Q5_K},
      {"Q4_K_S", "blk.4.attn_v.weight", kv, Format::Q4_K},
      {"Q4_K_S", "blk.3.ffn_down.weight", down, Format::Q5_K},
      {"Q4_K_S", "blk.4.ffn_down.weight", down, Format::Q4_K},
      // Q2_K: attn_v Q4_K with GQA >= 4 (this model), ffn_down and attn_output Q3_K.
      {"Q2_K", "blk.9.attn_v.weight", kv, Format::Q4_K},
      {"Q2_K", "blk.9.ffn_down.weight", down, Format::Q3_K},
      {"Q2_K", "blk.9.attn_output.weight", sq, Format::Q3_K},
      {"Q2_K", "blk.9.attn_q.weight", sq, Format::Q2_K},
      {"Q2_K", "output.weight", out, Format::Q6_K},
      // Q5_K_S / Q6_K: one type, output Q6_K.
      {"Q5_K_S", "blk.0.attn_v.weight", kv, Format::Q5_K},
      {"Q5_K_S", "output.weight", out, Format::Q6_K},
      {"Q6_K", "blk.0.attn_v.weight", kv, Format::Q6_K},
      {"Q6_K", "blk.0.ffn_down.weight", down, Format::Q6_K},
      // Single formats: the output tensor gets Q6_K except under Q8_0.
      {"Q4_0", "blk.0.ffn_down.weight", down, Format::Q4_0},
      {"Q4_0", "output.weight", out, Format::Q6_K},
      {"Q8_0", "output.weight", out, Format::Q8_0},
      {"Q8_0", "blk.0.attn_v.weight", kv, Format::Q8_0},
      {"Q5_1", "blk.0.attn_v.weight", kv, Format::Q5_1},
      {"IQ4_NL", "blk.0.attn_v.weight", kv, Format::Q5_K},  // GQA >= 4
      {"IQ4_XS", "blk.0.ffn_down.weight", down, Format::Q5_K},  // first eighth, no imatrix
      {"IQ4_XS", "blk.4.ffn_down.weight", down, Format::IQ4_XS},
      // Plain float targets: every quantizable tensor, output included; 1-D stays.
      {"F16", "blk.0.attn_q.weight", sq, Format::F16},
      {"F16", "output.weight", out, Format::F16},
      {"BF16", "blk.0.attn_q.weight", sq, Format::BF16},
      {"F16", "blk.0.ffn_norm.weight", {4096}, Format::F32},
      // Q3_K / Q4_K / Q5_K alone: pure, the output too.
      {"Q3_K", "output.weight", out, Format::Q3_K},
      {"Q4_K", "blk.0.attn_v.weight", kv, Format::Q4_K},
      {"Q5_K", "blk.0.ffn_down.weight", down, Format::Q5_K},
  };
  for (const Case& c : cases)
    EXPECT_EQ(plan(c.scheme, m, c.tensor, c.shape), c.expected) << c.scheme << " " << c.tensor;
}

// ne0 not a multiple of 256: Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1,
// Q6_K -> Q8_0, IQ4_XS -> IQ4_NL; not a multiple of 32 either -> F16. The output
// tensor whose row does not fit the base type's block gets Q8_0.
TEST(QuantRules, RowLengthFallback) {
  ModelInfo m = llama32();
  const std::vector<int64_t> w576{576, 576}, kv576{576, 192};
  EXPECT_EQ(plan("Q4_K_M", m, "blk.5.attn_q.weight", w576), Format::Q5_0);
  EXPECT_EQ(plan("Q4_K_M", m, "blk.0.attn_v.weight", kv576), Format::Q8_0);  // Q6_K -> Q8_0
  EXPECT_EQ(plan("Q4_K_M", m, "output.weight", {576, 49152}), Format::Q8_0);
  EXPECT_EQ(plan("Q2_K", m, "blk.5.attn_q.weight", w576), Format::Q4_0);
  EXPECT_EQ(plan("Q3_K_S", m, "blk.5.attn_q.weight", w576), Format::Q4_0);
  EXPECT_EQ(plan("Q5_K_S", m, "blk.5.attn_q.weight", w576), Format::Q5_1);
  EXPECT_EQ(plan("Q6_K", m, "blk.5.attn_q.weight", w576), Format::Q8_0);
  EXPECT_EQ(plan("IQ4_XS", m, "blk.5.attn_q.weight", w576), Format::IQ4_NL);
  EXPECT_EQ(plan("Q4_K_M", m, "blk.5.attn_q.weight", {100, 64}), Format::F16);
  EXPECT_EQ(plan("Q4_0", m, "blk.5.attn_q.weight", {100, 64}), Format::F16);
  EXPECT_EQ(plan("Q4_K", m, "output.weight", {576, 100}), Format::Q5_0);  // pure: fallback only

  const TensorPlan p = plan_tensor(scheme("Q4_K_M"), m, "blk.5.attn_q.weight", w576, Format::F32);
  ASSERT_TRUE(p.fallback_from.has_value());
  EXPECT_EQ(*p.fallback_from, Format::Q4_K);
  EXPECT_FALSE(plan_tensor(scheme("Q4_K_M"), m, "blk.5.attn_q.weight", std::vector<int64_t>{4096, 4096}, Format::F32)
                   .fallback_from);
}

TEST(QuantRules, TiedEmbeddingsGetTheOutputType) {
  ModelInfo m = llama32();
  m.has_output = false;
  EXPECT_EQ(plan("Q4_K_M", m, "token_embd.weight", {4096, 32000}), Format::Q6_K);
  EXPECT_EQ(plan("Q4_0", m, "token_embd.weight", {4096, 32000}), Format::Q6_K);
  EXPECT_EQ(plan("Q8_0", m, "token_embd.weight", {4096, 32000}), Format::Q8_0);
  EXPECT_EQ(plan("Q4_K_M", m, "token_embd.weight", {576, 49152}), Format::Q8_0);
}

TEST(QuantRules, GqaAndModelSpecialCases) {
  ModelInfo m = llama32();
  m.n_head_kv = 32;  // no GQA: Q2_K's attn_v is Q3_K
  EXPECT_EQ(m.n_gqa(), 1);
  EXPECT_EQ(plan("Q2_K", m, "blk.9.attn_v.weight", {4096, 4096}), Format::Q3_K);
  EXPECT_EQ(plan("IQ4_NL", m, "blk.9.attn_v.weight", {4096, 4096}), Format::IQ4_NL);

  // A 70B llama (80 layers, GQA): Q3_K/Q4_K attn_v become Q5_K. Layer 11 of 80 is
  // not a more-bits layer ((11 - 10) % 3 == 1).
  ModelInfo big = llama32();
  big.n_layer = 80, big.n_head = 64, big.n_head_kv = 8;
  EXPECT_EQ(plan("Q2_K", big, "blk.11.attn_v.weight", {8192, 1024}), Format::Q5_K);
  EXPECT_EQ(plan("Q4_K_M", big, "blk.11.attn_v.weight", {8192, 1024}), Format::Q5_K);
  EXPECT_EQ(plan("Q4_K_M", big, "blk.12.attn_v.weight", {8192, 1024}), Format::Q6_K);

  // 8 experts: attn_v and attn_k Q8_0, attn_output Q5_K under the small mixtures.
  ModelInfo moe = llama32();
  moe.n_expert = 8;
  EXPECT_EQ(plan("Q4_K_M", moe, "blk.5.attn_v.weight", {4096, 1024}), Format::Q8_0);
  EXPECT_EQ(plan("Q4_K_M", moe, "blk.5.attn_k.weight", {4096, 1024}), Format::Q8_0);
  EXPECT_EQ(plan("Q4_K_M", moe, "blk.5.attn_output.weight", {4096, 4096}), Format::Q5_K);
  EXPECT_EQ(plan("Q4_K_M", moe, "blk.9.ffn_down_exps.weight", {14336, 4096, 8}), Format::Q6_K);

  // With an importance matrix, Q4_0/Q5_0 guard the first eighth of ffn_down.
  ModelInfo im = llama32();
  EXPECT_EQ(plan("Q4_0", im, "blk.0.ffn_down.weight", {14336, 4096}), Format::Q4_0);
  im.has_imatrix = true;
  EXPECT_EQ(plan("Q4_0", im, "blk.0.ffn_down.weight", {14336, 4096}), Format::Q4_1);
  EXPECT_EQ(plan("Q5_0", im, "blk.3.ffn_down.weight", {14336, 4096}), Format::Q5_1);
  EXPECT_EQ(plan("Q5_0", im, "blk.4.ffn_down.weight", {14336, 4096}), Format::Q5_0);
  EXPECT_EQ(plan("IQ4_XS", im, "blk.0.ffn_down.weight", {14336, 4096}), Format::IQ4_XS);

  // Falcon: output Q8_0; Q4_K_M ffn_down Q6_K in the first sixteenth, Q5_K in the
  // more-bits layers, else Q4_K.
  ModelInfo falcon = llama32();
  falcon.architecture = "falcon";
  EXPECT_EQ(plan("Q4_K_M", falcon, "output.weight", {4096, 65024}), Format::Q8_0);
  EXPECT_EQ(plan("Q4_K_M", falcon, "blk.1.ffn_down.weight", {16384, 4096}), Format::Q6_K);
  EXPECT_EQ(plan("Q4_K_M", falcon, "blk.3.ffn_down.weight", {16384, 4096}), Format::Q5_K);
  EXPECT_EQ(plan("Q4_K_M", falcon, "blk.5.ffn_down.weight", {16384, 4096}), Format::Q4_K);
}

TEST(QuantRules, TensorsKeptAsStored) {
  const ModelInfo m = llama32();
  for (const char* s : {"Q4_K_M", "Q8_0", "F16"}) {
    EXPECT_EQ(plan(s, m, "blk.0.attn_norm.weight", {4096}), Format::F32) << s;
    EXPECT_EQ(plan(s, m, "blk.0.attn_norm.weight", {4096}, Format::F16), Format::F16) << s;  // keeps its type
    EXPECT_EQ(plan(s, m, "blk.0.attn_q_norm.weight", {128, 1}), Format::F32) << s;  // 1-D by ggml_n_dims
    EXPECT_EQ(plan(s, m, "blk.0.ffn_gate_inp.weight", {4096, 8}), Format::F32) << s;
    EXPECT_EQ(plan(s, m, "blk.0.attn_q.bias", {4096, 4}), Format::F32) << s;
    EXPECT_EQ(plan(s, m, "position_embd.weight", {768, 1024}), Format::F32) << s;
    EXPECT_EQ(plan(s, m, "blk.0.ssm_conv1d.weight", {4, 8192}), Format::F32) << s;
    EXPECT_EQ(plan(s, m, "rope_freqs.weight", {64}), Format::F32) << s;
  }
  EXPECT_FALSE(plan_tensor(scheme("Q4_K_M"), m, "blk.0.attn_norm.weight", std::vector<int64_t>{4096}, Format::F32)
                   .quantizable);
  // A quantized input tensor the rules choose to keep stays as stored.
  EXPECT_EQ(plan("Q4_K_M", m, "blk.0.attn_norm.weight", {4096}, Format::Q8_0), Format::Q8_0);
  EXPECT_TRUE(tensor_is_quantizable("blk.0.attn_q.weight", std::vector<int64_t>{4096, 4096}));
  EXPECT_FALSE(tensor_is_quantizable("blk.0.attn_q.weight", std::vector<int64_t>{4096, 1, 1}));
}

TEST(QuantRules, LayerIndexIsCheckedOnlyWhenARuleNeedsIt) {
  const ModelInfo m = llama32();
  EXPECT_THROW(plan("Q4_K_M", m, "attn_v.weight", {4096, 1024}), Error);
  EXPECT_THROW(plan("Q4_K_M", m, "blk.32.ffn_down.weight", {14336, 4096}), Error);
  EXPECT_THROW(plan("Q3_K_M", m, "blk.x.attn_v.weight", {4096, 1024}), Error);
  EXPECT_EQ(plan("Q8_0", m, "attn_v.weight", {4096, 1024}), Format::Q8_0);
  EXPECT_EQ(plan("Q2_K", m, "ffn_down.weight", {14336, 4096}), Format::Q3_K);
}

TEST(QuantRules, SchemeNamesAndFileTypes) {
  // llama.cpp's LLAMA_FTYPE ids (include/llama.h).
  const std::vector<std::pair<const char*, uint32_t>> ids = {
      {"F32", 0}, {"F16", 1}, {"Q4_0", 2}, {"Q4_1", 3}, {"Q8_0", 7}, {"Q5_0", 8}, {"Q5_1", 9},
      {"Q2_K", 10}, {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q3_K_L", 13}, {"Q4_K_S", 14}, {"Q4_K_M", 15},
      {"Q5_K_S", 16}, {"Q5_K_M", 17}, {"Q6_K", 18}, {"IQ4_NL", 25}, {"IQ4_XS", 30}, {"BF16", 32},
      {"Q3_K", 11}, {"Q4_K", 14}, {"Q5_K", 16}};
  for (const auto& [name, id] : ids) EXPECT_EQ(scheme(name).file_type, id) << name;
  EXPECT_EQ(quant_scheme_names().size(), ids.size());
  EXPECT_EQ(quant_scheme_from_name("q4_k_m")->name, "Q4_K_M");
  EXPECT_FALSE(quant_scheme_from_name("Q8_1").has_value());  // activation-only
  EXPECT_FALSE(quant_scheme_from_name("Q4_K_X").has_value());
  EXPECT_TRUE(scheme("Q4_K").pure);
  EXPECT_FALSE(scheme("Q4_K_M").pure);
}

TEST(QuantRules, ModelInfoFromGguf) {
  GgufWriter w;
  w.set("general.architecture", "qwen2");
  w.set("qwen2.block_count", uint32_t{24});
  w.set("qwen2.attention.head_count", uint32_t{14});
  w.set("qwen2.attention.head_count_kv", GgufValue::array<int32_t>({2, 2}));  // per layer
  std::vector<std::byte> bytes(32 * 32 * 4);
  w.add_tensor("token_embd.weight", {32, 32}, Format::F32, std::move(bytes));
  const auto path = std::filesystem::temp_directory_path() / ("lowbit_qr_" + std::to_string(::getpid()) + ".gguf");
  w.write(path);
  const ModelInfo m = ModelInfo::from_gguf(GgufFile::open(path));
  std::filesystem::remove(path);
  EXPECT_EQ(m.architecture, "qwen2");
  EXPECT_EQ(m.n_layer, 24);
  EXPECT_EQ(m.n_head, 14);
  EXPECT_EQ(m.n_head_kv, 2);
  EXPECT_EQ(m.n_gqa(), 7);
  EXPECT_EQ(m.n_expert, 0);
  EXPECT_FALSE(m.has_output);
}

// Head and layer counts are untrusted metadata: INT64_MIN heads over -1 KV heads
// (a SIGFPE in the GQA ratio) or 2^62 layers (overflow in the depth rules) must be
// Errors naming the file and key, in scalar and per-layer array form.
TEST(QuantRules, AbsurdCountsInMetadataAreErrorsNamingFileAndKey) {
  const auto path = std::filesystem::temp_directory_path() / ("lowbit_qr_bad_" + std::to_string(::getpid()) + ".gguf");
  auto info_error = [&](const std::string& key, GgufValue v) {
    GgufWriter w;
    w.set("general.architecture", "llama");
    w.set(key, std::move(v));
    w.add_tensor("token_embd.weight", {32, 32}, Format::F32, std::vector<std::byte>(32 * 32 * 4));
    w.write(path);
    std::string msg;
    try {
      ModelInfo::from_gguf(GgufFile::open(path));
    } catch (const Error& e) {
      msg = e.what();
    }
    std::filesystem::remove(path);
    return msg;
  };
  std::string msg = info_error("llama.attention.head_count", GgufValue(INT64_MIN));
  EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("llama.attention.head_count"), std::string::npos) << msg;
  EXPECT_NE(msg.find("outside"), std::string::npos) << msg;
  msg = info_error("llama.attention.head_count_kv", GgufValue::array<int64_t>({-1, -1}));
  EXPECT_NE(msg.find("llama.attention.head_count_kv"), std::string::npos) << msg;
  msg = info_error("llama.block_count", GgufValue(int64_t{1} << 62));
  EXPECT_NE(msg.find("llama.block_count"), std::string::npos) << msg;
  msg = info_error("llama.block_count", GgufValue("many"));
  EXPECT_NE(msg.find("llama.block_count' is not an integer count"), std::string::npos) << msg;
  msg = info_error("llama.expert_count", GgufValue(uint64_t{1} << 63));
  EXPECT_NE(msg.find("llama.expert_count"), std::string::npos) << msg;

  // A ModelInfo filled by hand is checked by plan_tensor too.
  ModelInfo m;
  m.architecture = "llama";
  m.n_layer = 32;
  m.n_head = INT64_MIN;
  m.n_head_kv = -1;
  const int64_t shape[] = {4096, 1024};
  const auto q2 = *quant_scheme_from_name("Q2_K");
  EXPECT_THROW(plan_tensor(q2, m, "blk.0.attn_v.weight", shape, Format::F16), Error);
  m.n_head = 32;
  m.n_head_kv = 8;
  m.n_layer = INT64_MAX;
  EXPECT_THROW(plan_tensor(*quant_scheme_from_name("Q4_K_M"), m, "blk.3.ffn_down.weight", shape, Format::F16),
               Error);
}

}  // namespace
}  // namespace lowbit
