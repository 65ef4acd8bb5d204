// GPTQ into GGML block formats (GgmlTarget): the bytes decode to exactly what the
// solver was told, every code is the nearest one under the block's scales, and GPTQ
// beats the format's own quantizer (with the Hessian diagonal as imatrix) on the
// layer's output error.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/gptq/ggml_target.hpp"
#include "lowbit/gptq/hessian.hpp"
#include "lowbit/gptq/solver.hpp"
#include "lowbit/lowbit.hpp"

namespace {

using namespace lowbit;

constexpr Format kBlockFormats[] = {Format::Q4_0, Format::Q4_1, Format::Q5_0, Format::Q5_1, Format::Q8_0,
                                    Format::Q8_1, Format::Q2_K, Format::Q3_K, Format::Q4_K, Format::Q5_K,
                                    Format::Q6_K, Format::Q8_K, Format::IQ4_NL, Format::IQ4_XS};

std::string error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct GgLayer {
  int64_t rows, cols;
  std::vector<float> w;
  HessianAccumulator h;
  GgLayer(int64_t r, int64_t c, int64_t tokens, uint64_t seed)
      : rows(r), cols(c), w(synthetic_weights(r, c, seed)), h(c) {
    auto x = synthetic_activations(tokens, c, seed + 100);
    h.add({x.data(), tokens, c});
  }
  ConstMatrixView<float> view() const { return {w.data(), rows, cols}; }
  std::vector<float> decode(Format f, const std::vector<std::byte>& bytes) const {
    std::vector<float> out(w.size());
    dequantize(f, bytes, {out.data(), rows, cols});
    return out;
  }
  double output_error(const std::vector<float>& q) const {
    return layer_output_error(view(), {q.data(), rows, cols}, h.upper());
  }
  // The format's own quantizer with the Hessian diagonal / 2 as imatrix.
  std::vector<std::byte> reference(Format f) const {
    std::vector<std::byte> bytes(quantized_size(f, rows, cols));
    quantize(f, view(), bytes, h.importance());
    return bytes;
  }
};

// Forwards to a GgmlTarget and records, per element, the weight it was asked to
// quantize and the value it reported.
class Recorder final : public GptqTarget {
 public:
  explicit Recorder(GgmlTarget& t) : t_(t) {}
  void begin(int64_t rows, int64_t cols, std::span<const int32_t> perm, bool static_groups) override {
    cols_ = cols;
    w_.assign(static_cast<size_t>(rows * cols), NAN);
    q_.assign(static_cast<size_t>(rows * cols), NAN);
    t_.begin(rows, cols, perm, static_groups);
  }
  int64_t group_columns() const override { return t_.group_columns(); }
  void fit_group(int64_t g, std::span<const int32_t> c, int64_t r0, int64_t r1, const float* v, int64_t ld) override {
    t_.fit_group(g, c, r0, r1, v, ld);
  }
  void quantize_column(int64_t column, int64_t group, int64_t r0, int64_t r1, const float* w, float* q) override {
    t_.quantize_column(column, group, r0, r1, w, q);
    for (int64_t r = r0; r < r1; ++r) {
      w_[r * cols_ + column] = w[r - r0];
      q_[r * cols_ + column] = q[r - r0];
    }
  }
  const std::vector<float>& weights() const { return w_; }
  const std::vector<float>& reported() const { return q_; }

 private:
  GgmlTarget& t_;
  int64_t cols_ = 0;
  std::vector<float> w_, q_;
};

// ---------------------------------------------------------------- test-side layout
// Writes stored code `code` (the raw bit pattern, bias included) of element e into a
// block, from ggml's documented layouts (ggml-common.h), independently of lowbit's codec.

void put_bits(uint8_t& byte, int shift, int width, int v) {
  const unsigned mask = ((1u << width) - 1u) << shift;
  byte = static_cast<uint8_t>((byte & ~mask) | ((static_cast<unsigned>(v) << shift) & mask));
}
// 32 elements two per byte: element j < 16 low nibble of qs[j], else high nibble of qs[j-16].
void put_nibble32(uint8_t* qs, int j, int v) { put_bits(qs[j % 16], j < 16 ? 0 : 4, 4, v); }
// Q2_K / Q3_K low two bits: bits 2*((e%128)/32) of qs[32*(e/128) + e%32].
void put_low2(uint8_t* qs, int e, int v) { put_bits(qs[32 * (e / 128) + e % 32], 2 * ((e % 128) / 32), 2, v); }
// Q4_K / Q5_K low nibble: qs[32*(e/64) + e%32], low nibble for even 32-element sub-blocks.
void put_nibble_k(uint8_t* qs, int e, int v) { put_bits(qs[32 * (e / 64) + e % 32], 4 * ((e / 32) % 2), 4, v); }

void put_code(Format f, std::byte* block, int e, int code) {
  switch (f) {
    case Format::Q4_0: put_nibble32(reinterpret_cast<block_q4_0*>(block)->qs, e, code); break;
    case Format::Q4_1: put_nibble32(reinterpret_cast<block_q4_1*>(block)->qs, e, code); break;
    case Format::IQ4_NL: put_nibble32(reinterpret_cast<block_iq4_nl*>(block)->qs, e, code); break;
    case Format::Q5_0: {
      auto* b = reinterpret_cast<block_q5_0*>(block);
      put_nibble32(b->qs, e, code);
      put_bits(b->qh[e / 8], e % 8, 1, code >> 4);
      break;
    }
    case Format::Q5_1: {
      auto* b = reinterpret_cast<block_q5_1*>(block);
      put_nibble32(b->qs, e, code);
      put_bits(b->qh[e / 8], e % 8, 1, code >> 4);
      break;
    }
    case Format::Q8_0: reinterpret_cast<block_q8_0*>(block)->qs[e] = static_cast<int8_t>(code); break;
    case Format::Q8_1: reinterpret_cast<block_q8_1*>(block)->qs[e] = static_cast<int8_t>(code); break;
    case Format::Q8_K: reinterpret_cast<block_q8_K*>(block)->qs[e] = static_cast<int8_t>(code); break;
    case Format::Q2_K: put_low2(reinterpret_cast<block_q2_K*>(block)->qs, e, code); break;
    case Format::Q3_K: {
      auto* b = reinterpret_cast<block_q3_K*>(block);
      put_low2(b->qs, e, code & 3);
      put_bits(b->hmask[e % 32], e / 32, 1, code >> 2);
      break;
    }
    case Format::Q4_K: put_nibble_k(reinterpret_cast<block_q4_K*>(block)->qs, e, code); break;
    case Format::Q5_K: {
      auto* b = reinterpret_cast<block_q5_K*>(block);
      put_nibble_k(b->qs, e, code);
      put_bits(b->qh[e % 32], e / 32, 1, code >> 4);
      break;
    }
    case Format::Q6_K: {
      // e = 128h + 32k + l: low nibble in ql[64h + l + 32(k%2)] (high nibble for k >= 2),
      // high two bits at bit 2k of qh[32h + l].
      auto* b = reinterpret_cast<block_q6_K*>(block);
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      put_bits(b->ql[64 * h + l + 32 * (k % 2)], k < 2 ? 0 : 4, 4, code);
      put_bits(b->qh[32 * h + l], 2 * k, 2, code >> 4);
      break;
    }
    case Format::IQ4_XS:
      put_nibble32(reinterpret_cast<block_iq4_xs*>(block)->qs + 16 * (e / 32), e % 32, code);
      break;
    default: FAIL() << "not a block format";
  }
}

// Stored codes the format's quantizers emit: every bit pattern, except -128 for the
// 8-bit formats (int8 dot-product kernels need |q| <= 127, ggml's quantizers too).
std::vector<int> all_codes(Format f) {
  std::vector<int> c;
  switch (f) {
    case Format::Q8_0:
    case Format::Q8_1:
    case Format::Q8_K:
      for (int v = -127; v <= 127; ++v) c.push_back(v);
      return c;
    case Format::Q2_K: c.resize(4); break;
    case Format::Q3_K: c.resize(8); break;
    case Format::Q5_0:
    case Format::Q5_1:
    case Format::Q5_K: c.resize(32); break;
    case Format::Q6_K: c.resize(64); break;
    default: c.resize(16); break;
  }
  for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<int>(i);
  return c;
}

// Smallest |w - v| over every value element e of `block` can take, trying every code
// through the format's dequantizer.
double brute_force_distance(Format f, std::vector<std::byte> block, int e, float w) {
  const int n = traits(f).block_elems;
  std::vector<float> dec(static_cast<size_t>(n));
  double best = INFINITY;
  for (int code : all_codes(f)) {
    put_code(f, block.data(), e, code);
    dequantize(f, block, {dec.data(), 1, n});
    best = std::min(best, std::fabs(static_cast<double>(w) - dec[e]));
  }
  return best;
}

uint32_t bits(float v) { return std::bit_cast<uint32_t>(v); }

// ---------------------------------------------------------------- exactness

TEST(GgmlTargetExact, BytesDecodeToTheReportedValuesAndEveryCodeIsNearest) {
  GgLayer l(24, 512, 1024, 31);
  for (Format f : kBlockFormats) {
    SCOPED_TRACE(std::string(traits(f).name));
    GgmlTarget t(f, l.h.importance());
    Recorder rec(t);
    gptq_solve(GptqConfig{}, l.view(), l.h, rec);
    const std::vector<std::byte> bytes = t.result();
    ASSERT_EQ(bytes.size(), quantized_size(f, l.rows, l.cols));
    const std::vector<float> dec = l.decode(f, bytes);
    for (size_t i = 0; i < dec.size(); ++i)
      ASSERT_EQ(bits(dec[i]), bits(rec.reported()[i])) << "element " << i;

    // Sample elements: the chosen code must be as near as the best of all codes.
    const int n = traits(f).block_elems;
    const size_t rb = row_bytes(f, l.cols);
    for (int64_t i = 0; i < l.rows * l.cols; i += 37) {
      const int64_t r = i / l.cols, c = i % l.cols;
      const std::byte* b = bytes.data() + r * rb + (c / n) * traits(f).block_bytes;
      std::vector<std::byte> block(b, b + traits(f).block_bytes);
      const float w = rec.weights()[i];
      ASSERT_EQ(std::fabs(static_cast<double>(w) - dec[i]), brute_force_distance(f, block, static_cast<int>(c % n), w))
          << "row " << r << " column " << c;
    }
  }
}

TEST(GgmlTargetExact, BlocksFittedOnZerosStayExactAfterErrorFeedback) {
  // Static groups fit every block on the original weights: a block that starts out
  // all zero gets zero scales, then receives nonzero weights from GPTQ's error
  // feedback. Every code decodes alike there; the bytes must still decode exactly.
  GgLayer l(8, 512, 512, 39);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 256; c < 512; ++c) l.w[r * l.cols + c] = 0.0f;
  GptqConfig cfg;
  cfg.static_groups = true;
  for (Format f : kBlockFormats) {
    SCOPED_TRACE(std::string(traits(f).name));
    GgmlTarget t(f);
    Recorder rec(t);
    gptq_solve(cfg, l.view(), l.h, rec);
    const auto dec = l.decode(f, t.result());
    int64_t moved = 0;
    for (size_t i = 0; i < dec.size(); ++i) {
      ASSERT_TRUE(std::isfinite(dec[i])) << i;
      ASSERT_EQ(bits(dec[i]), bits(rec.reported()[i])) << i;
      moved += (i / l.cols) < 4 && (i % l.cols) >= 256 && rec.weights()[i] != 0.0f;
    }
    EXPECT_GT(moved, 0);  // the zero blocks did receive error feedback
  }
}

TEST(GgmlTargetExact, DerivedFieldsMatchTheFinalCodes) {
  GgLayer l(8, 512, 512, 32);
  {
    GgmlTarget t(Format::Q8_1);
    gptq_solve(GptqConfig{}, l.view(), l.h, t);
    const auto bytes = t.result();
    const auto* b = reinterpret_cast<const block_q8_1*>(bytes.data());
    for (int64_t i = 0; i < l.rows * l.cols / 32; ++i) {
      int sum = 0;
      for (int8_t q : b[i].qs) sum += q;
      // s = fp16(d * sum) with d the stored scale (ggml's quantize_row_q8_1_ref).
      EXPECT_EQ(b[i].s, fp32_to_fp16(static_cast<float>(sum) * fp16_to_fp32(b[i].d))) << "block " << i;
    }
  }
  {
    GgmlTarget t(Format::Q8_K);
    gptq_solve(GptqConfig{}, l.view(), l.h, t);
    const auto bytes = t.result();
    const auto* b = reinterpret_cast<const block_q8_K*>(bytes.data());
    for (int64_t i = 0; i < l.rows * l.cols / 256; ++i)
      for (int k = 0; k < 16; ++k) {
        int sum = 0;
        for (int j = 0; j < 16; ++j) sum += b[i].qs[16 * k + j];
        EXPECT_EQ(b[i].bsums[k], sum) << "block " << i << " group " << k;
      }
  }
}

TEST(GgmlTargetExact, FloatFormatsRoundEachElementToTheType) {
  GgLayer l(8, 64, 256, 33);
  for (Format f : {Format::F32, Format::F16, Format::BF16}) {
    SCOPED_TRACE(std::string(traits(f).name));
    GgmlTarget t(f);
    Recorder rec(t);
    gptq_solve(GptqConfig{}, l.view(), l.h, rec);
    const auto dec = l.decode(f, t.result());
    for (size_t i = 0; i < dec.size(); ++i) {
      const float w = rec.weights()[i];
      const float want = f == Format::F32 ? w : f == Format::F16 ? fp16_to_fp32(fp32_to_fp16(w)) : bf16_to_fp32(fp32_to_bf16(w));
      ASSERT_EQ(bits(dec[i]), bits(want)) << i;
      ASSERT_EQ(bits(rec.reported()[i]), bits(want)) << i;
    }
  }
}

// ---------------------------------------------------------------- no cross-column error

TEST(GgmlTargetDiagonal, EqualsNearestCodeRoundingInTheReferenceBlocks) {
  // A diagonal Hessian makes H^-1's factor diagonal: no error reaches another column,
  // so GPTQ must reduce to nearest-code rounding in the blocks the reference fitted.
  const int64_t rows = 6, cols = 512;
  const auto w = synthetic_weights(rows, cols, 34);
  const auto imp = synthetic_importance(cols, 34);
  std::vector<float> hu(static_cast<size_t>(cols * cols), 0.0f);
  for (int64_t i = 0; i < cols; ++i) hu[i * cols + i] = 2.0f * imp[i];
  const ConstMatrixView<float> wv{w.data(), rows, cols};
  // At every effort: the blocks are the ones lowbit::quantize fits at that effort.
  // Except ggml's own imatrix search for Q4_0/Q4_1/Q5_0/Q5_1 (their `fast`), which
  // weights a block by the whole row's mean square, so one block fitted alone (as
  // GgmlTarget fits it) is not the row quantizer's block (docs/formats.md).
  for (QuantizeEffort effort : {QuantizeEffort::standard, QuantizeEffort::fast})
  for (Format f : kBlockFormats) {
    if (effort == QuantizeEffort::fast &&
        (f == Format::Q4_0 || f == Format::Q4_1 || f == Format::Q5_0 || f == Format::Q5_1))
      continue;
    SCOPED_TRACE(std::string(traits(f).name) + " effort " + std::string(to_string(effort)));
    GgmlTarget t(f, imp, effort);
    gptq_solve(GptqConfig{}, wv, hu, t);
    std::vector<float> gptq(w.size()), ref(w.size());
    dequantize(f, t.result(), {gptq.data(), rows, cols});
    std::vector<std::byte> ref_bytes(quantized_size(f, rows, cols));
    quantize(f, wv, ref_bytes, imp, effort);
    dequantize(f, ref_bytes, {ref.data(), rows, cols});

    const int n = traits(f).block_elems, bb = traits(f).block_bytes;
    const size_t rb = row_bytes(f, cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const std::byte* b = ref_bytes.data() + r * rb + (c / n) * bb;
        const float x = w[r * cols + c];
        const double nearest = brute_force_distance(f, {b, b + bb}, static_cast<int>(c % n), x);
        ASSERT_EQ(std::fabs(static_cast<double>(x) - gptq[r * cols + c]), nearest) << r << ", " << c;
      }
    const double e_gptq = layer_output_error(wv, {gptq.data(), rows, cols}, hu);
    const double e_ref = layer_output_error(wv, {ref.data(), rows, cols}, hu);
    EXPECT_LE(e_gptq, e_ref);
  }
}

// ---------------------------------------------------------------- quality

TEST(GgmlTargetQuality, BeatsTheFormatsQuantizerWithImatrixOnOutputError) {
  GgLayer l(256, 2048, 4096, 35);
  const auto imp = l.h.importance();
  for (Format f : {Format::Q4_K, Format::Q3_K, Format::Q2_K}) {
    GgmlTarget t(f, imp);
    gptq_solve(GptqConfig{}, l.view(), l.h, t);
    const double gptq = l.output_error(l.decode(f, t.result()));
    const double ref = l.output_error(l.decode(f, l.reference(f)));
    std::printf("%-6s output error: GPTQ %.6f, quantizer with imatrix %.6f, ratio %.3f\n",
                std::string(traits(f).name).c_str(), gptq, ref, gptq / ref);
    EXPECT_LT(gptq, ref) << traits(f).name;
  }
}

TEST(GgmlTargetActOrder, NeedsStaticGroupsAndThenWorks) {
  GgLayer l(128, 1024, 2048, 36);
  const auto imp = l.h.importance();
  GptqConfig act;
  act.act_order = true;
  GgmlTarget bad(Format::Q4_K, imp);
  const std::string msg = error_text([&] { gptq_solve(act, l.view(), l.h, bad); });
  EXPECT_NE(msg.find("static_groups"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Q4_K"), std::string::npos) << msg;

  act.static_groups = true;
  GgmlTarget ordered(Format::Q4_K, imp);
  Recorder rec(ordered);
  gptq_solve(act, l.view(), l.h, rec);
  const auto dec = l.decode(Format::Q4_K, ordered.result());
  for (size_t i = 0; i < dec.size(); ++i) ASSERT_EQ(bits(dec[i]), bits(rec.reported()[i])) << i;

  GgmlTarget plain(Format::Q4_K, imp);
  gptq_solve(GptqConfig{}, l.view(), l.h, plain);
  const double e_act = l.output_error(dec);
  const double e_plain = l.output_error(l.decode(Format::Q4_K, plain.result()));
  const double e_ref = l.output_error(l.decode(Format::Q4_K, l.reference(Format::Q4_K)));
  std::printf("Q4_K output error: act-order + static groups %.6f, plain GPTQ %.6f, quantizer %.6f\n", e_act,
              e_plain, e_ref);
  EXPECT_LT(e_act, e_ref);
}

// ---------------------------------------------------------------- contract

TEST(GgmlTargetContract, SameBytesAtAnyThreadCount) {
  GgLayer l(600, 512, 1024, 37);  // 600 rows: three row chunks, the last one short
  for (Format f : {Format::Q4_K, Format::Q5_0, Format::IQ4_XS}) {
    GgmlTarget a(f, l.h.importance()), b(f, l.h.importance());
    set_num_threads(1);
    gptq_solve(GptqConfig{}, l.view(), l.h, a);
    set_num_threads(2);
    gptq_solve(GptqConfig{}, l.view(), l.h, b);
    set_num_threads(0);
    EXPECT_EQ(a.result(), b.result()) << traits(f).name;
  }
}

TEST(GgmlTargetContract, ShapeAndImportanceErrorsNameTheProblem) {
  GgLayer l(8, 96, 64, 38);
  GgmlTarget k(Format::Q4_K);  // 96 columns: not a multiple of 256
  std::string msg = error_text([&] { gptq_solve(GptqConfig{}, l.view(), l.h, k); });
  EXPECT_NE(msg.find("8 x 96"), std::string::npos) << msg;
  EXPECT_NE(msg.find("256"), std::string::npos) << msg;

  std::vector<float> short_imp(95, 1.0f);
  GgmlTarget q(Format::Q4_0, short_imp);
  msg = error_text([&] { gptq_solve(GptqConfig{}, l.view(), l.h, q); });
  EXPECT_NE(msg.find("95 entries"), std::string::npos) << msg;

  std::vector<float> negative(96, 1.0f);
  negative[7] = -1.0f;
  msg = error_text([&] { GgmlTarget{Format::Q4_0, negative}; });
  EXPECT_NE(msg.find("importance[7]"), std::string::npos) << msg;
}

}  // namespace
