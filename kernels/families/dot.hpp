#pragma once
// The dot-product family: one weight row times one activation row in the weight
// format's partner (lowbit/kernels/dot.hpp).
//   key         Format (the weights')
//   comparison  relative_to_magnitude: |got - want| <= kTolerance * M (+ Q8_1's s
//               rounding, below), with want the float64 sum of the decoded weights
//               times the decoded activations, and M = sum_i (|scale_i * level_i| +
//               |offset_i|) * |a_i|, the sizes of the terms a block's float formula
//               adds (a min term can exceed the weight itself). Every variant, the
//               scalar reference included, is held to it.
//   inputs      standard_patterns(): weights encoded by the format's scalar reference
//               quantizer, activations (another seed, other values) by the activation
//               family's scalar reference at the pattern's scale capped to 1 (the
//               huge patterns stress the weights' scales; activations that large
//               overflow Q8_1's fp16 s, in ggml as here); both buffers off alignment
//               in "unaligned". F16 rows of the huge patterns hold Inf (beyond fp16's
//               range) and are skipped: a dot with Inf has no finite answer to judge.
// Q8_1 stores s = d * sum(q) rounded to fp16, and Q4_1 / Q5_1 dot products use s
// for their min term, as ggml's do: the allowed error adds sum_blocks |m| * |s - d sum(q)|.
#include <algorithm>
#include <cmath>

#include "cpu/reference/block_codec.hpp"
#include "families/dequantize.hpp"
#include "lowbit/formats/blocks.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/dot.hpp"

namespace lowbit::kernel_families {

struct DotFamily {
  using Fn = DotFn;
  using Key = Format;
  using Variant = DotKernel;
  static constexpr const char* name = "dot";
  static constexpr Comparison comparison = Comparison::relative_to_magnitude;
  static const KernelTable<Fn, Key>& table() { return dot_kernels(); }

  // Float accumulation over at most a few dozen blocks, each term within a few
  // roundings: 1e-5 of the terms' magnitude is far above that and far below one
  // wrong code (about 1 / n of M).
  static constexpr double kTolerance = 1e-5;

  // Activation bytes for n elements (plain floats for the float formats).
  static std::vector<std::byte> activations(Format af, const std::vector<float>& x) {
    const auto n = static_cast<int64_t>(x.size());
    if (af == Format::F32) {
      std::vector<std::byte> out(x.size() * 4);
      std::memcpy(out.data(), x.data(), out.size());
      return out;
    }
    std::vector<std::byte> out(row_bytes(af, n));
    activation_kernels().reference(af).fn(x.data(), out.data(), n);
    return out;
  }

  // |scale * level| + |offset| of weight element i: the largest term it adds.
  static double term_size(Format f, const std::byte* row, int64_t i) {
    const kernels::BlockCodec* codec = kernels::block_codec(f);
    if (codec == nullptr) return std::fabs(double(DequantizeFamily::decode_element(f, row, i)));
    const std::byte* block = row + (i / codec->block_elems) * codec->block_bytes;
    const int e = static_cast<int>(i % codec->block_elems);
    const kernels::SubBlockMap m = codec->sub_map(block, e / codec->sub_elems);
    const int level = codec->get_level(block, e);
    const double l = codec->table != nullptr ? codec->table[level] : level;
    return std::fabs(double(m.scale) * l) + (codec->has_offset ? std::fabs(double(m.offset)) : 0.0);
  }

  // sum_blocks |m_w| * |s - d * sum(q)|: what Q8_1's fp16 s may move a Q4_1/Q5_1 dot.
  static double q8_1_sum_slack(Format wf, const std::byte* w, const std::byte* a, int64_t n) {
    if (wf != Format::Q4_1 && wf != Format::Q5_1) return 0.0;
    const size_t wb = static_cast<size_t>(traits(wf).block_bytes);
    double slack = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
      const auto* ab = reinterpret_cast<const block_q8_1*>(a + b * sizeof(block_q8_1));
      uint16_t m;
      std::memcpy(&m, w + b * wb + 2, 2);  // Q4_1 / Q5_1: d, then m
      int sum = 0;
      for (int8_t q : ab->qs) sum += q;
      slack += std::fabs(double(fp16_to_fp32(m))) *
               std::fabs(double(fp16_to_fp32(ab->s)) - double(fp16_to_fp32(ab->d)) * sum);
    }
    return slack;
  }

  // "" when `got` is within the tolerance of the float64 dot of n elements at w and a;
  // else a message starting with `what`. `skip` is set for rows with no finite answer
  // (F16 weights beyond fp16's range).
  static std::string judge(Format wf, const std::byte* w, const std::byte* a, int64_t n, float got,
                           const std::string& what, bool& skip) {
    const Format af = dot_activation_format(wf);
    double want = 0, magnitude = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double ai = DequantizeFamily::decode_element(af, a, i);
      want += double(DequantizeFamily::decode_element(wf, w, i)) * ai;
      magnitude += term_size(wf, w, i) * std::fabs(ai);
    }
    skip = false;
    if (!std::isfinite(want) || !std::isfinite(magnitude)) {
      skip = wf == Format::F16;
      return skip ? std::string() : what + ": the inputs decode to non-finite values";
    }
    const double allowed = kTolerance * magnitude + q8_1_sum_slack(wf, w, a, n);
    if (!(std::fabs(double(got) - want) <= allowed))
      return what + ", " + std::to_string(n) + " elements: float64 " + std::to_string(want) + ", variant " +
             std::to_string(got) + ", allowed error " + std::to_string(allowed);
    return {};
  }

  // A pattern's activation row (another seed, other values than the weights), scaled
  // to at most 1: the huge patterns stress the weights' scales.
  static std::vector<std::byte> pattern_activations(Format wf, const InputPattern& p, int64_t n) {
    InputPattern ap = p;
    ap.scale = std::min(p.scale, 1.0f);
    return activations(dot_activation_format(wf), pattern_values(ap, 1, n, 11));
  }

  static std::string check(const Variant& v) {
    const Format wf = v.key;
    for (const InputPattern& p : standard_patterns()) {
      const int64_t n = pattern_row_elems(wf, p);
      const std::vector<std::byte> wq = DequantizeFamily::encode(wf, p, n);
      const std::vector<std::byte> aq = pattern_activations(wf, p, n);
      const size_t shift = p.unaligned ? kUnalignedShift : 0;
      OffsetBuffer w(wq.size(), shift), a(aq.size(), shift);
      std::memcpy(w.data(), wq.data(), wq.size());
      std::memcpy(a.data(), aq.data(), aq.size());
      bool skip = false;
      const std::string bad = judge(wf, w.data(), a.data(), n, v.fn(w.data(), a.data(), n), "pattern " + p.name, skip);
      if (!bad.empty()) return bad;
    }
    return {};
  }
};

}  // namespace lowbit::kernel_families
