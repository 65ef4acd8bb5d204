#pragma once
// The standard-effort searches of IQ4_NL and IQ4_XS, included by the scalar reference
// (iq4.cpp) and by the SIMD variants (kernels/cpu/lanes/iq4_search_lanes.hpp), which
// run IQ4_NL's search with one block per vector lane and IQ4_XS's per-sub-block steps
// with one sub-block per lane. Internal linkage: each including
// file compiles its own copy with its own flags (and -ffp-contract=off, like the whole
// library).
//
// Quantizers. For a fixed scale the best index of every element is simply the
// nearest code value, so a scale's true error is cheap to measure. We try scales that
// put the block's extreme near either end of the code book (28 trials; ggml's
// quantizer tries 16 with its heuristic weights), refit each by weighted least
// squares on the indices it produces, and keep the scale whose true error, measured
// after all rounding (fp16 d, integer sub-block scales), is smallest. IQ4_XS then
// chooses the super-block scale d among several candidates and, for each, the better
// of the two integer sub-block scales around the ideal one, by the sub-block's
// measured error.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "common/nibbles.hpp"
#include "cpu/reference/ggml_search.hpp"
#include "cpu/reference/scalar_math.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

constexpr int QB = 32;  // elements per IQ4_NL block / IQ4_XS sub-block
constexpr int kXsSubs = QK_K / QB;

constexpr std::array<float, 16> make_values() {
  std::array<float, 16> v{};
  for (int i = 0; i < 16; ++i) v[i] = static_cast<float>(kIq4nlValues[i]);
  return v;
}
constexpr std::array<float, 16> kValues = make_values();

// Nearest code index by table. Decision thresholds (midpoints between neighbouring
// codes) are integers or half-integers, so no threshold falls strictly inside a
// half-unit cell [c/2, c/2 + 1/2): the cell alone decides the index, one look-up
// instead of a binary search. Cell of v is floor(2v) + 256 for v in [-127, 113].
constexpr int kCells = 2 * 113 + 256 + 1;
constexpr std::array<uint8_t, kCells> make_cells() {
  std::array<uint8_t, kCells> t{};
  for (int c = 0; c < kCells; ++c) {
    const float lo = 0.5f * static_cast<float>(c - 256);  // the cell's lower end
    int i = 0;
    while (i < 15 && lo >= 0.5f * (kValues[i] + kValues[i + 1])) ++i;
    t[c] = static_cast<uint8_t>(i);
  }
  return t;
}
constexpr std::array<uint8_t, kCells> kCellIndex = make_cells();

// Index of the code value nearest to v (v in code-book units; exact ties go up).
// The clamp is written so that a NaN (0 * inf from a degenerate trial scale) lands
// on the table instead of outside it.
inline int nearest_index(float v) {
  v = v > kValues[0] ? v : kValues[0];
  v = v < kValues[15] ? v : kValues[15];
  return kCellIndex[static_cast<int>(2.0f * v + 256.0f)];  // >= 2: truncation is floor
}


// Weighted squared error of x ~ d * kValues[q] with every q at its nearest code.
inline float nl_error(const float* x, const float* w, float d) {
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  float err = 0.0f;
  for (int j = 0; j < QB; ++j) {
    const float e = x[j] - d * kValues[nearest_index(x[j] * id)];
    err += w[j] * e * e;
  }
  return err;
}

// Least-squares fit for the indices inverse scale `id` rounds the block to: the
// scale, and how much it lowers the error (sumqx^2 / sumq2) with those indices kept.
struct Fit {
  float d = 0.0f, gain = -1.0f;
};
inline Fit nl_refit(const float* x, const float* w, float id) {
  float sumqx = 0.0f, sumq2 = 0.0f;
  for (int j = 0; j < QB; ++j) {
    const float q = kValues[nearest_index(x[j] * id)];
    sumqx += w[j] * q * x[j];
    sumq2 += w[j] * q * q;
  }
  if (!(sumq2 > 0.0f)) return {};
  return {sumqx / sumq2, sumqx * sumqx / sumq2};
}

inline void nl_indices(const float* x, float d, uint8_t* L) {
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < QB; ++j) L[j] = static_cast<uint8_t>(nearest_index(x[j] * id));
}

// The objective's weights for n elements: the importance when given and not all
// zero (scaled by a power of two, unit_scaled_weights), else ones. Returns false when it fell back to ones.
inline bool objective_weights(const float* importance, int n, float* w) {
  if (importance != nullptr && unit_scaled_weights(importance, n, w)) return true;
  for (int j = 0; j < n; ++j) w[j] = 1.0f;
  return importance == nullptr;
}

// The trial inverse scales of nl_search: the block's extreme mapped to the code
// book's negative end kValues[0] = -127 plus t code units, or to its positive end
// kValues[15] = 113 plus t, t in steps of two. Steps of one ranked near-copies of the
// same fit into the four measured places; steps of two leave room for distinct
// candidates, and the clipping side reaches twice as far (t = -20: the extreme clipped
// by 20 code units, which often wins, most often with importance). 28 trials where
// the earlier schedule (steps of one, t from -10) took 44, with a 0.01-0.7% lower
// error (docs/formats.md).
struct TrialRange {
  int from, to;
};
constexpr TrialRange kLowTrials{-20, 12}, kHighTrials{-10, 10};
constexpr int kTrialStep = 2;

// Best scale for one 32-element block, as it would be stored by `round` (fp16 for
// IQ4_NL, identity for an IQ4_XS sub-block whose scale is quantized later).
// Candidate inverse scales map the extreme to code value kValues[0] + t (the
// negative end, ggml's choice) or kValues[15] + t (the positive end), t a few code
// units either way; each is refit and measured after `round`.
// `ggml_d`, when not 0, is the scale ggml's own search would store (ggml_search::iq4_scale),
// measured like every other candidate so that no block comes out worse than ggml's.
template <class Round>
inline float nl_search(const float* x, const float* w, float max, Round round, float ggml_d = 0.0f) {
  // Rank the trial scales by their least-squares gain with the indices held fixed
  // (one pass each); only the few best are then measured exactly, after rounding
  // and re-choosing the indices (a second pass).
  constexpr int kKeep = 4;
  Fit top[kKeep];
  auto rank = [&](Fit f) {
    for (int k = 0; k < kKeep; ++k)
      if (f.gain > top[k].gain) {
        for (int m = kKeep - 1; m > k; --m) top[m] = top[m - 1];
        top[k] = f;
        return;
      }
  };
  for (int t = kLowTrials.from; t <= kLowTrials.to; t += kTrialStep)
    rank(nl_refit(x, w, (kValues[0] + static_cast<float>(t)) / max));
  for (int t = kHighTrials.from; t <= kHighTrials.to; t += kTrialStep)
    rank(nl_refit(x, w, (kValues[15] + static_cast<float>(t)) / max));

  float best_d = round(max / kValues[0]);  // ggml's starting scale
  float best_err = nl_error(x, w, best_d);
  auto consider = [&](float d) {
    d = round(d);
    if (d == best_d) return;
    const float e = nl_error(x, w, d);
    if (e < best_err) {
      best_err = e;
      best_d = d;
    }
  };
  if (ggml_d != 0.0f) consider(ggml_d);
  for (const Fit& f : top)
    if (f.gain >= 0.0f) consider(f.d);
  // Polish: refit on the winner's own indices.
  if (best_d != 0.0f) consider(nl_refit(x, w, 1.0f / best_d).d);
  return best_d;
}

// ---------------------------------------------------------------- IQ4_XS super-block

struct XsChoice {
  float err;
  int ls[kXsSubs];  // signed sub-block scales, -32..31
};

// For a stored super-block scale d, picks every sub-block's integer scale (the two
// integers around scale/d, by measured error) and returns the total error.
// `extra`, when given, offers a third integer scale per sub-block (ggml's choice).
inline XsChoice xs_evaluate(const float* x, const float* w, const float* counts, const float* scales, float d,
                     const int* extra = nullptr) {
  XsChoice c{};
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int ib = 0; ib < kXsSubs; ++ib) {
    const float* xb = x + ib * QB;
    const float* wb = w + ib * QB;
    const float r = std::min(std::max(scales[ib] * id, -32.0f), 31.0f);
    const int lo = static_cast<int>(std::floor(r));
    const int hi = std::min(lo + 1, 31);
    int best_l = lo;
    float best_e = nl_error(xb, wb, d * static_cast<float>(lo));
    if (hi != lo) {
      const float e = nl_error(xb, wb, d * static_cast<float>(hi));
      if (e < best_e) {
        best_e = e;
        best_l = hi;
      }
    }
    if (extra != nullptr && extra[ib] != lo && extra[ib] != hi) {
      const float e = nl_error(xb, wb, d * static_cast<float>(extra[ib]));
      if (e < best_e) {
        best_e = e;
        best_l = extra[ib];
      }
    }
    c.ls[ib] = best_l;
    c.err += counts[ib] * best_e;
  }
  return c;
}

// ---------------------------------------------------------------- IQ4_NL rows
// The per-block steps around nl_search that the scalar rows and the SIMD rows share.

// fp16 rounding of an IQ4_NL block scale, as it will be stored.
inline float round_half(float v) { return fp16_to_fp32(to_half(v)); }

inline void store_iq4_nl(const float* xb, float d, block_iq4_nl& out) {
  uint8_t L[QB];
  out.d = to_half(d);
  nl_indices(xb, d, L);  // d == 0: every index is code 8 (value 1), nearest to 0
  pack_nibbles32(L, out.qs);
}

// ---------------------------------------------------------------- IQ4_XS rows
// The per-sub-block steps of the IQ4_XS search, the scalar way; the SIMD variants
// (iq4_search_lanes.hpp) supply the same three with the eight sub-blocks in lanes and
// the same values, so the super-block's control flow, and every byte, is shared.
struct ScalarXsOps {
  // Step 1: the ideal (unquantized) scale of every sub-block (0 for an all-zero one).
  void sub_scales(const float* xs, const float* w, float* scales) {
    for (int ib = 0; ib < kXsSubs; ++ib) {
      const float* xb = xs + ib * QB;
      const float max = ggml_search::signed_absmax(xb, QB);
      scales[ib] = max != 0.0f ? nl_search(xb, w + ib * QB, max, [](float v) { return v; }) : 0.0f;
    }
  }
  XsChoice evaluate(const float* x, const float* w, const float* counts, const float* scales, float d,
                    const int* extra) {
    return xs_evaluate(x, w, counts, scales, d, extra);
  }
  // ggml's sub-block scales, with ggml's weights gw.
  void ggml_scales(const float* xs, const float* gw, float* out) {
    for (int ib = 0; ib < kXsSubs; ++ib) out[ib] = ggml_search::iq4_scale(xs + ib * QB, gw + ib * QB);
  }
};

template <class Ops = ScalarXsOps>
void quantize_iq4_xs_row(const float* x, void* y, int64_t n, const float* importance) {
  Ops ops;
  auto* out = static_cast<block_iq4_xs*>(y);
  float w[QK_K];
  float counts[kXsSubs];  // 1 where a sub-block's error counts toward the objective
  float scales[kXsSubs];
  float gw[QK_K], ggml_scales[kXsSubs];  // ggml's weights and sub-block scales
  int ggml_ls[kXsSubs];
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
    const float* xs = x + ibl * QK_K;
    const float* imp = importance ? importance + ibl * QK_K : nullptr;
    const bool weighted = objective_weights(imp, QK_K, w) && imp != nullptr;
    // A sub-block with no importance inside a super-block that has some does not
    // count toward the objective; it still gets a sensible fit of its own (plain
    // squared error) so its values are not arbitrary.
    for (int ib = 0; ib < kXsSubs; ++ib) {
      counts[ib] = 1.0f;
      if (!weighted || std::any_of(imp + ib * QB, imp + (ib + 1) * QB, [](float v) { return v > 0.0f; })) continue;
      std::fill(w + ib * QB, w + (ib + 1) * QB, 1.0f);
      counts[ib] = 0.0f;
    }

    // 1. The ideal (unquantized) scale of every sub-block.
    float max_scale = 0.0f;
    ops.sub_scales(xs, w, scales);
    for (int ib = 0; ib < kXsSubs; ++ib)
      if (std::fabs(scales[ib]) > std::fabs(max_scale)) max_scale = scales[ib];

    block_iq4_xs& b = out[ibl];
    std::memset(&b, 0, sizeof b);
    XsChoice best{};
    float best_d = 0.0f;
    if (max_scale != 0.0f) {
      // 2. The super-block scale: the largest sub-block scale lands on -32 (ggml's
      //    choice), -31 (smaller scales then round differently) or +31; then a
      //    least-squares refit of d on the chosen integer scales and indices.
      bool have = false;
      auto consider = [&](float d) {
        d = fp16_to_fp32(to_half(d));
        const XsChoice c = ops.evaluate(xs, w, counts, scales, d, nullptr);
        if (!have || c.err < best.err) {
          best = c;
          best_d = d;
          have = true;
        }
      };
      for (float top : {-32.0f, -31.0f, 31.0f}) consider(max_scale / top);
      // ggml's own choice (its d with its integer scales among the options), so that no
      // super-block comes out worse than ggml's.
      ggml_search::iq4_weights(xs, imp, QK_K, gw);
      ops.ggml_scales(xs, gw, ggml_scales);
      const float gd = fp16_to_fp32(to_half(ggml_search::iq4_xs_super(ggml_scales, ggml_ls)));
      if (gd != 0.0f) {
        const XsChoice c = ops.evaluate(xs, w, counts, scales, gd, ggml_ls);
        if (c.err < best.err) {
          best = c;
          best_d = gd;
        }
      }
      for (int iter = 0; iter < 2; ++iter) {
        float sumqx = 0.0f, sumq2 = 0.0f;
        for (int ib = 0; ib < kXsSubs; ++ib) {
          uint8_t L[QB];
          const float dl = best_d * static_cast<float>(best.ls[ib]);
          nl_indices(xs + ib * QB, dl, L);
          for (int j = 0; j < QB; ++j) {
            const float q = static_cast<float>(best.ls[ib]) * kValues[L[j]];
            const float wj = counts[ib] * w[ib * QB + j];
            sumqx += wj * q * xs[ib * QB + j];
            sumq2 += wj * q * q;
          }
        }
        if (sumq2 > 0.0f) consider(sumqx / sumq2);
      }
    }

    // 3. Pack: d, scales stored with an offset of 32, indices per sub-block.
    b.d = to_half(best_d);
    uint16_t scales_h = 0;
    for (int ib = 0; ib < kXsSubs; ++ib) {
      const int ls = (max_scale != 0.0f ? best.ls[ib] : 0) + 32;
      b.scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0x0f) << (4 * (ib % 2)));
      scales_h |= static_cast<uint16_t>(((ls >> 4) & 3) << (2 * ib));
      uint8_t L[QB];
      nl_indices(xs + ib * QB, best_d * static_cast<float>(ls - 32), L);
      pack_nibbles32(L, b.qs + ib * (QB / 2));
    }
    b.scales_h = scales_h;
  }
}

}  // namespace
}  // namespace lowbit::kernels
