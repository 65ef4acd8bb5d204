// Issue 14's whole-model features through the library API: llama-quantize's
// per-tensor options against hand-derived plans, the --target-bpw allocation against
// hand-derived and brute-force optima, GPTQ per MoE expert, and the streaming / split
// writer against the in-memory writer's bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/synthetic.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/gptq/ggml_target.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/model/bpw_allocation.hpp"
#include "lowbit/model/quant_rules.hpp"
#include "lowbit/model/quantize_model.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace lowbit;

namespace {

ModelInfo llama8() {
  ModelInfo m;
  m.architecture = "llama";
  m.n_layer = 8;
  m.n_head = 8;
  m.n_head_kv = 2;
  return m;
}

TensorPlan plan_of(const TensorTypeOverrides& ov, std::string_view name, std::vector<int64_t> shape,
                   const char* scheme = "Q4_K_M", Format from = Format::F16) {
  return plan_tensor(*quant_scheme_from_name(scheme), llama8(), name, shape, from, ov);
}

TEST(TensorOverrides, HandDerivedPlans) {
  TensorTypeOverrides ov;
  // Without options: llama-quantize's Q4_K_M (blk.1.attn_q Q4_K, output Q6_K).
  EXPECT_EQ(plan_of(ov, "blk.1.attn_q.weight", {256, 256}).format, Format::Q4_K);
  ov.tensor_types = {{"attn_(q|k)", Format::Q5_K}, {"blk\\.0\\.", Format::Q6_K}};
  // blk.0.attn_q matches both: the last given wins.
  const TensorPlan q0 = plan_of(ov, "blk.0.attn_q.weight", {256, 256});
  EXPECT_EQ(q0.format, Format::Q6_K);
  EXPECT_TRUE(q0.overridden);
  EXPECT_EQ(plan_of(ov, "blk.1.attn_k.weight", {256, 64}).format, Format::Q5_K);
  // Not matched: the rule's type, not marked.
  const TensorPlan v1 = plan_of(ov, "blk.1.attn_v.weight", {256, 64});
  EXPECT_EQ(v1.format, Format::Q4_K);  // layer 1 of 8 is not a more-bits layer
  EXPECT_FALSE(v1.overridden);
  // A 320-element row cannot hold Q6_K: the fallback follows the override.
  const TensorPlan d0 = plan_of(ov, "blk.0.ffn_down.weight", {320, 256});
  EXPECT_EQ(d0.format, Format::Q8_0);
  EXPECT_EQ(d0.fallback_from, Format::Q6_K);
  // Norms stay as stored whatever matches them.
  ov.tensor_types.push_back({".*", Format::Q8_0});
  EXPECT_EQ(plan_of(ov, "blk.0.attn_norm.weight", {256}, "Q4_K_M", Format::F32).format, Format::F32);
  EXPECT_EQ(plan_of(ov, "blk.0.attn_q.weight", {256, 256}).format, Format::Q8_0);
  ov.tensor_types.clear();
  ov.output_tensor_type = Format::Q8_0;
  ov.token_embedding_type = Format::Q4_0;
  EXPECT_EQ(plan_of(ov, "output.weight", {256, 64}).format, Format::Q8_0);
  EXPECT_EQ(plan_of(ov, "token_embd.weight", {256, 64}).format, Format::Q4_0);
  // --pure: no mixture rules and no --tensor-type, but the output / embedding types apply.
  ov.tensor_types = {{"attn_q", Format::Q8_0}};
  EXPECT_EQ(plan_of(ov, "blk.0.attn_q.weight", {256, 256}, "Q4_K").format, Format::Q4_K);
  EXPECT_EQ(plan_of(ov, "output.weight", {256, 64}, "Q4_K").format, Format::Q8_0);
  EXPECT_EQ(plan_of(ov, "blk.0.attn_q.weight", {256, 256}, "F16", Format::F32).format, Format::F16);
  ov = {};
  ov.leave_output_tensor = true;
  const TensorPlan out = plan_of(ov, "output.weight", {256, 64});
  EXPECT_EQ(out.format, Format::F16);
  EXPECT_FALSE(out.quantizable);
  ov.tensor_types = {{"(", Format::Q8_0}};
  EXPECT_NE(test::error_of([&] { plan_of(ov, "blk.0.attn_q.weight", {256, 256}); }).find("'('"), std::string::npos);
}

TEST(TypeAllocation, HandDerived) {
  // A: 10 -> 4 -> 1 for 100 / 200 / 400 bytes (saves 0.06, then 0.015 per byte);
  // B: 20 -> 5 -> 3 (0.15, then 0.01 per byte).
  const std::vector<std::vector<TypeCandidate>> items = {
      {{Format::Q2_K, 100, 10}, {Format::Q4_K, 200, 4}, {Format::Q8_0, 400, 1}},
      {{Format::Q2_K, 100, 20}, {Format::Q4_K, 200, 5}, {Format::Q8_0, 400, 3}}};
  // 400 bytes: B's first upgrade, then A's; nothing else fits. Brute force agrees (9).
  TypeAllocation a = allocate_types(items, 400);
  EXPECT_EQ(a.choice, (std::vector<size_t>{1, 1}));
  EXPECT_EQ(a.bytes, 400u);
  EXPECT_DOUBLE_EQ(a.error, 9);
  EXPECT_DOUBLE_EQ(a.bound, 0);
  // 350 bytes: only B's upgrade; the LP takes half of A's (15 - 3 = 12): bound 3.
  a = allocate_types(items, 350);
  EXPECT_EQ(a.choice, (std::vector<size_t>{0, 1}));
  EXPECT_DOUBLE_EQ(a.error, 15);
  EXPECT_DOUBLE_EQ(a.bound, 3);
  // Everything fits: each item's least error.
  a = allocate_types(items, 800);
  EXPECT_EQ(a.choice, (std::vector<size_t>{2, 2}));
  EXPECT_NE(test::error_of([&] { allocate_types(items, 199); }).find("200 bytes"), std::string::npos);
  // A candidate above the hull (200 bytes, error 9) is still taken when it fits.
  const std::vector<std::vector<TypeCandidate>> c = {
      {{Format::Q2_K, 100, 10}, {Format::Q3_K, 200, 9}, {Format::Q4_K, 300, 2}}};
  a = allocate_types(c, 250);
  EXPECT_EQ(a.choice, std::vector<size_t>{1});
  EXPECT_GE(a.bound, 1.0);  // the LP optimum is 10 - 8 * 150 / 200 = 4
}

TEST(TypeAllocation, NeverOverBudgetAndWithinItsBoundOfTheBruteForceOptimum) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const size_t n = 5, k = 4;
    std::vector<std::vector<TypeCandidate>> items(n);
    uint64_t min_total = 0;
    for (auto& it : items) {
      uint64_t lo = UINT64_MAX;
      for (size_t j = 0; j < k; ++j) {
        it.push_back({Format::Q4_K, 50 + rng() % 200, double(rng() % 1000) / 10});
        lo = std::min(lo, it.back().bytes);
      }
      min_total += lo;
    }
    const uint64_t budget = min_total + rng() % 500;
    double best = 1e300;
    for (size_t code = 0; code < 1024; ++code) {  // 4^5 choices
      uint64_t b = 0;
      double e = 0;
      size_t c = code;
      for (size_t i = 0; i < n; ++i, c /= k) b += items[i][c % k].bytes, e += items[i][c % k].error;
      if (b <= budget) best = std::min(best, e);
    }
    const TypeAllocation a = allocate_types(items, budget);
    uint64_t bytes = 0;
    double err = 0;
    for (size_t i = 0; i < n; ++i) bytes += items[i][a.choice[i]].bytes, err += items[i][a.choice[i]].error;
    ASSERT_LE(bytes, budget) << trial;
    EXPECT_EQ(bytes, a.bytes);
    EXPECT_NEAR(err, a.error, 1e-9);
    EXPECT_GE(err, best - 1e-9) << trial;
    EXPECT_LE(err - best, a.bound + 1e-9) << trial;
  }
}

struct Dir {
  fs::path path = fs::temp_directory_path() / ("lowbit_test_model_streaming_" + std::to_string(::getpid()));
  Dir() { fs::create_directories(path); }
  ~Dir() { fs::remove_all(path); }
};

std::vector<std::byte> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

constexpr int64_t kEmbd = 256, kFf = 128, kExperts = 4;

// One MoE llama layer: attention, a router, 3-D expert tensors [ne0, ne1, experts].
fs::path write_moe(const fs::path& dir, std::map<std::string, std::vector<float>>& values) {
  GgufWriter w;
  w.set("general.architecture", "llama");
  w.set("llama.block_count", uint32_t{1});
  w.set("llama.attention.head_count", uint32_t{4});
  w.set("llama.expert_count", uint32_t{kExperts});
  w.set("llama.expert_used_count", uint32_t{2});
  uint64_t seed = 11;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v = synthetic_weights(n / shape[0], shape[0], seed++);
    std::vector<std::byte> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    w.add_tensor(name, shape, Format::F32, std::move(b));
    values[name] = std::move(v);
  };
  add("token_embd.weight", {kEmbd, 32});
  add("blk.0.attn_norm.weight", {kEmbd});
  add("blk.0.attn_q.weight", {kEmbd, kEmbd});
  add("blk.0.ffn_gate_inp.weight", {kEmbd, kExperts});
  add("blk.0.ffn_gate_exps.weight", {kEmbd, kFf, kExperts});
  add("blk.0.ffn_down_exps.weight", {kFf * 2, kEmbd, kExperts});
  add("output.weight", {kEmbd, 32});
  const fs::path p = dir / "moe.gguf";
  w.write(p);
  return p;
}

TEST(MoeModel, RouterKeptExpertsQuantizedGptqPerExpert) {
  Dir d;
  std::map<std::string, std::vector<float>> values;
  const GgufFile in = GgufFile::open(write_moe(d.path, values));
  QuantizeModelOptions o{*quant_scheme_from_name("Q4_K")};
  const QuantizePlan plan = plan_model_quantization(in, o);
  const auto& gate_inp = plan.tensors[3];
  EXPECT_EQ(gate_inp.to(), Format::F32);  // the router stays as stored, as in llama-quantize
  EXPECT_EQ(plan.tensors[4].to(), Format::Q4_K);
  EXPECT_EQ(plan.tensors[4].slices, kExperts);

  // Hessians for experts 0 and 2 of ffn_gate_exps; none for 1 and 3, none shared.
  std::map<std::string, HessianAccumulator, std::less<>> hs;
  for (int e : {0, 2}) {
    HessianAccumulator h(kEmbd);
    const std::vector<float> x = synthetic_activations(512, kEmbd, 100 + e);
    h.add({x.data(), 512, kEmbd});
    hs.emplace(expert_hessian_name("blk.0.ffn_gate_exps.weight", e), std::move(h));
  }
  std::map<std::string, HessianAccumulator, std::less<>> copy = hs;
  o.method = QuantMethod::gptq;
  o.hessians = hessians_from_map(std::move(copy));
  const GgufWriter out = quantize_model(in, plan_model_quantization(in, o), o);
  const fs::path p = d.path / "gptq.gguf";
  out.write(p);
  const GgufFile q = GgufFile::open(p);
  const auto bytes = q.data(q.tensor("blk.0.ffn_gate_exps.weight"));
  const size_t slice = quantized_size(Format::Q4_K, kFf, kEmbd);
  ASSERT_EQ(bytes.size(), slice * kExperts);
  const std::vector<float>& w = values["blk.0.ffn_gate_exps.weight"];
  for (int e = 0; e < kExperts; ++e) {
    const ConstMatrixView<float> m{w.data() + e * kFf * kEmbd, kFf, kEmbd};
    const std::vector<std::byte> rtn = test::encode(Format::Q4_K, std::vector<float>(m.data, m.data + kFf * kEmbd), kFf, kEmbd);
    const auto got = bytes.subspan(e * slice, slice);
    const bool same_as_rtn = std::equal(got.begin(), got.end(), rtn.begin(), rtn.end());
    if (e == 1 || e == 3) {
      EXPECT_TRUE(same_as_rtn) << "expert " << e << " has no Hessian: rtn";
      continue;
    }
    EXPECT_FALSE(same_as_rtn) << "expert " << e;
    // GPTQ with this expert's Hessian lowers its layer-output error x^T H x versus rtn.
    const HessianAccumulator& h = hs.at(expert_hessian_name("blk.0.ffn_gate_exps.weight", e));
    const std::vector<float> H = h.matrix();
    auto out_err = [&](std::span<const std::byte> qb) {
      std::vector<float> back(static_cast<size_t>(kFf * kEmbd));
      dequantize(Format::Q4_K, qb, {back.data(), kFf, kEmbd});
      double total = 0;
      for (int64_t r = 0; r < kFf; ++r) {
        std::vector<double> dlt(kEmbd);
        for (int64_t c = 0; c < kEmbd; ++c) dlt[c] = double(m.data[r * kEmbd + c]) - back[r * kEmbd + c];
        for (int64_t i = 0; i < kEmbd; ++i)
          for (int64_t j = 0; j < kEmbd; ++j) total += dlt[i] * H[i * kEmbd + j] * dlt[j];
      }
      return total;
    };
    EXPECT_LT(out_err(got), out_err(rtn)) << "expert " << e;
  }
}

TEST(MoeModel, ImatrixAppliedPerExpert) {
  // llama.cpp's imatrix stores an expert tensor's importance as n_expert x ne0 values:
  // expert e's bytes are lowbit::quantize of its matrix with its own vector.
  Dir d;
  std::map<std::string, std::vector<float>> values;
  const GgufFile in = GgufFile::open(write_moe(d.path, values));
  QuantizeModelOptions o{*quant_scheme_from_name("Q4_K")};
  ImportanceMap imatrix;
  std::vector<float> imp;
  for (int e = 0; e < kExperts; ++e) {
    const std::vector<float> v = synthetic_importance(kEmbd, 40 + e);
    imp.insert(imp.end(), v.begin(), v.end());
  }
  imatrix["blk.0.ffn_gate_exps.weight"] = imp;
  o.imatrix = imatrix;
  const fs::path p = d.path / "imatrix.gguf";
  quantize_model(in, plan_model_quantization(in, o), o).write(p);
  const GgufFile q = GgufFile::open(p);
  const auto bytes = q.data(q.tensor("blk.0.ffn_gate_exps.weight"));
  const size_t slice = quantized_size(Format::Q4_K, kFf, kEmbd);
  const std::vector<float>& w = values["blk.0.ffn_gate_exps.weight"];
  for (int e = 0; e < kExperts; ++e) {
    const std::vector<float> m(w.begin() + e * kFf * kEmbd, w.begin() + (e + 1) * kFf * kEmbd);
    const auto want = test::encode(Format::Q4_K, m, kFf, kEmbd, std::span<const float>(imp).subspan(e * kEmbd, kEmbd));
    const auto got = bytes.subspan(e * slice, slice);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin(), want.end())) << "expert " << e;
    // ... and not expert 0's vector (the test would pass with a shared vector otherwise).
    if (e > 0) {
      const auto other = test::encode(Format::Q4_K, m, kFf, kEmbd, std::span<const float>(imp).subspan(0, kEmbd));
      EXPECT_FALSE(std::equal(got.begin(), got.end(), other.begin(), other.end())) << "expert " << e;
    }
  }
}

TEST(StreamingModel, SameBytesAsInMemoryWholeAndSplit) {
  Dir d;
  std::map<std::string, std::vector<float>> values;
  const GgufFile in = GgufFile::open(write_moe(d.path, values));
  QuantizeModelOptions o{*quant_scheme_from_name("Q4_K_M")};
  const QuantizePlan plan = plan_model_quantization(in, o);
  const std::vector<std::byte> expected = quantize_model(in, plan, o).serialize();
  const auto written = write_quantized_model(in, plan, o, d.path / "s.gguf");
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(read_all(written[0]), expected);

  o.split.max_tensors = 3;
  const auto parts = write_quantized_model(in, plan, o, d.path / "split.gguf");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].filename(), "split-00001-of-00003.gguf");
  const GgufFile whole = GgufFile::open(d.path / "s.gguf"), split = GgufFile::open(parts[0]);
  ASSERT_EQ(split.tensors().size(), whole.tensors().size());
  for (size_t i = 0; i < whole.tensors().size(); ++i) {
    const auto a = whole.data(whole.tensors()[i]), b = split.data(split.tensors()[i]);
    EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << whole.tensors()[i].name;
  }
  for (const auto& kv : whole.metadata()) EXPECT_EQ(*split.find(kv.key), kv.value) << kv.key;
  // Quantizing the split model again reads it whole.
  QuantizeModelOptions again{*quant_scheme_from_name("Q8_0")};
  const QuantizePlan p2 = plan_model_quantization(split, again);
  EXPECT_EQ(p2.tensors.size(), whole.tensors().size());
}

TEST(StreamingModel, CancelledResumableRunContinuesToTheSameBytes) {
  Dir d;
  std::map<std::string, std::vector<float>> values;
  const GgufFile in = GgufFile::open(write_moe(d.path, values));
  QuantizeModelOptions o{*quant_scheme_from_name("Q4_K_M")};
  const QuantizePlan plan = plan_model_quantization(in, o);
  const std::vector<std::byte> expected = quantize_model(in, plan, o).serialize();
  const fs::path out = d.path / "r.gguf";
  // Not resumable: a cancellation leaves nothing.
  int tensors = 0;
  o.on_tensor = [&](const PlannedTensor&) { ++tensors; };
  o.cancelled = [&] { return tensors >= 4; };
  EXPECT_THROW(write_quantized_model(in, plan, o, out), QuantizeCancelled);
  EXPECT_FALSE(fs::exists(out.string() + ".partial"));
  // Resumable: the partial file stays, and the next run takes the 4 finished tensors.
  tensors = 0;
  o.resume = true;
  EXPECT_THROW(write_quantized_model(in, plan, o, out), QuantizeCancelled);
  EXPECT_TRUE(fs::exists(out.string() + ".partial"));
  EXPECT_FALSE(fs::exists(out));
  o.cancelled = nullptr;
  o.progress = nullptr;
  o.on_tensor = nullptr;
  write_quantized_model(in, plan, o, out);
  EXPECT_EQ(read_all(out), expected);
  EXPECT_FALSE(fs::exists(out.string() + ".partial"));
  EXPECT_FALSE(fs::exists(out.string() + ".partial-journal"));
}

TEST(StreamingModel, TargetBpwStaysWithinBudgetAndUsesIt) {
  Dir d;
  std::map<std::string, std::vector<float>> values;
  const GgufFile in = GgufFile::open(write_moe(d.path, values));
  QuantizeModelOptions o{*quant_scheme_from_name("Q4_K_M")};
  int64_t elements = 0;
  for (const auto& t : in.tensors()) elements += t.elements();
  for (double bpw : {3.0, 4.0, 5.0, 7.0}) {
    o.target_bpw = bpw;
    const QuantizePlan plan = plan_model_quantization(in, o);
    EXPECT_LE(double(plan.bytes_out) * 8 / double(elements), bpw) << bpw;
    // The 32-bit router and norm are fixed; a budget 0.3 bits above the result would have
    // allowed nothing better only if every tensor were at Q8_0 already.
    EXPECT_GT(double(plan.bytes_out) * 8 / double(elements), bpw - 1.2) << bpw;
  }
  // Enough for everything: every allocated tensor gets Q8_0, the least error.
  o.target_bpw = 32;
  for (const auto& t : plan_model_quantization(in, o).tensors)
    if (t.plan.quantizable) EXPECT_EQ(t.to(), Format::Q8_0) << t.name;
  o.target_bpw = 1.0;
  EXPECT_NE(test::error_of([&] { plan_model_quantization(in, o); }).find("budget"), std::string::npos);
}

}  // namespace
