#pragma once
// The standard-effort searches of the 32-element formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
// and Q8_1, included by the scalar reference (legacy.cpp) and by the SIMD variants
// (kernels/cpu/lanes/legacy_search_lanes.hpp), which run the searches of Q4_0, Q4_1,
// Q5_0, Q5_1 and Q8_0 with one block per vector lane. Internal linkage: each including file compiles its own copy
// with its own flags (and -ffp-contract=off, like the whole library).
//
// Quantizers. ggml's reference rounds against a scale fixed by the block's extreme
// value(s). We instead try a set of candidate scales (ggml's own choice among them,
// so a block never comes out worse than ggml's), refit each by weighted least squares
// on the levels it produces, round the result to fp16 as it will be stored, and keep
// the candidate with the smallest true squared error, measured on the values the
// dequantizer will actually produce. For a fixed stored scale the nearest level is
// the optimal one per element, so "scale -> error" is exact.
//
#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "common/nibbles.hpp"
#include "cpu/reference/ggml_search.hpp"
#include "cpu/reference/scalar_math.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

constexpr int QK = QK_LEGACY;

// The level nearest to the exact product x * id within [lo, hi]: one fused
// multiply-add with round_even's constant rounds the product once, straight to an
// integer (ties to even). The searches are defined with fused operations (std::fma
// here, the ISA's FMA in the lanes: the same single rounding on every machine)
// because they are fewer: their cost is operations per element and trial.
inline int level_of_product(float x, float id, int lo, int hi) {
  const int l = int_above_rounding_constant(std::fma(x, id, kRoundingConstant));
  return std::min(std::max(l, lo), hi);
}

// 1/d, shrunk where needed so that |span * id| <= 2^21 and level_of_product() stays exact for
// every element within `span` of the origin. Only a degenerate (tiny) d is
// affected; evaluation and packing use the same inverse, so what is measured is
// what is stored.
inline float safe_inverse(float d, float span) {
  if (d == 0.0f) return 0.0f;
  const float id = 1.0f / d;
  constexpr float kLimit = 2097152.0f;  // 2^21
  return std::fabs(id) * span > kLimit ? std::copysign(kLimit / span, id) : id;
}

struct Range {
  float min, max;
};
inline Range block_range(const float* x) {
  Range r{x[0], x[0]};
  for (int j = 1; j < QK_LEGACY; ++j) {
    r.min = std::min(r.min, x[j]);
    r.max = std::max(r.max, x[j]);
  }
  return r;
}

// Sums run in kLanes independent partial sums (a fixed order, so results are
// deterministic) because a single float accumulator cannot be vectorised.
constexpr int kLanes = 8;
inline float lane_sum(const float* a) {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// The K candidates with the largest least-squares gain (how much their refit lowers
// the error with the levels held fixed). Ranking costs one pass per trial; only the
// survivors are then measured exactly after fp16 rounding and re-rounding.
template <class T, int K>
struct TopK {
  T item[K];
  float gain[K];
  int n = 0;
  void push(const T& t, float g) {
    int i = n < K ? n++ : K;
    while (i > 0 && gain[i - 1] < g) {
      if (i < K) {
        item[i] = item[i - 1];
        gain[i] = gain[i - 1];
      }
      --i;
    }
    if (i < K) {
      item[i] = t;
      gain[i] = g;
    }
  }
};

// The objective's per-element weights for one block: the importance when given and
// not all zero (scaled by a power of two, unit_scaled_weights), else ones (plain
// squared error).
inline void importance_or_ones(const float* importance, float* w) {
  if (importance != nullptr && unit_scaled_weights(importance, QK, w)) return;
  for (int j = 0; j < QK; ++j) w[j] = 1.0f;
}

// ---------------------------------------------------------------- symmetric: x = d * l

// Signed levels l in [lo, hi] (Q4_0: [-8, 7], Q5_0: [-16, 15], Q8: [-127, 127]).
struct SymSpec {
  int lo, hi;
};

// Weighted squared error of the block stored with scale d (already fp16-exact),
// every element at its nearest level.
inline float sym_error(const float* x, const float* w, Range r, float d, SymSpec s) {
  const float id = safe_inverse(d, std::max(-r.min, r.max));
  float acc[kLanes] = {};
  for (int j0 = 0; j0 < QK; j0 += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const int j = j0 + k;
      const float l = static_cast<float>(level_of_product(x[j], id, s.lo, s.hi));
      const float e = std::fma(-l, d, x[j]);
      acc[k] = std::fma(w[j] * e, e, acc[k]);
    }
  return lane_sum(acc);
}

// Least-squares scale for the levels that inverse scale `id` rounds the block to,
// and its gain sumlx^2 / suml2 (the error it removes with those levels).
// wx[j] = w[j] * x[j], made once per block.
struct ScaleFit {
  float d = 0.0f, gain = -1.0f;
};
inline ScaleFit sym_refit(const float* x, const float* w, const float* wx, float id, SymSpec s) {
  float lx[kLanes] = {}, l2[kLanes] = {};
  for (int j0 = 0; j0 < QK; j0 += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const int j = j0 + k;
      const float l = static_cast<float>(level_of_product(x[j], id, s.lo, s.hi));
      lx[k] = std::fma(wx[j], l, lx[k]);
      l2[k] = std::fma(w[j] * l, l, l2[k]);
    }
  const float sumlx = lane_sum(lx), suml2 = lane_sum(l2);
  if (!(suml2 > 0.0f)) return {};
  return {sumlx / suml2, sumlx * sumlx / suml2};
}

// The candidate scales of one effort. Trial inverse scales are in units of 1/max,
// where max is the block's signed extreme: `lo_offsets` put max on the low (longer)
// side of the grid as ggml does, `hi_offsets` on the high side; offsets of a fraction
// of a level trade clipping the extreme against resolution for the rest. Every trial
// is refitted by least squares on the levels it rounds to and ranked by how much
// error that refit removes; the `keep` best are then measured exactly after fp16
// rounding, each followed by `lloyd` refits on its own levels (a fixed-point
// iteration between rounding and fitting that only ever moves towards a lower error
// for those levels).
struct SymSearch {
  float lo_offsets[80];
  int n_lo;
  float hi_offsets[16];
  int n_hi;
  // The `refine_top` best low-side trials (by gain) also try their neighbours at
  // +-refine_step: a coarse grid of trials refined where it found the most.
  int refine_top;
  float refine_step;
  int keep;   // ranked candidates measured exactly, at most 4
  int lloyd;  // refits of each measured candidate on its own levels
  // Whether a scale may clip the block's extreme (round it to a level nearer zero
  // than its own). 4/5 bits gain from clipping; at 8 bits the RMSE gain is tiny and
  // shrinking the largest weight of a block measurably hurts LLM perplexity.
  bool allow_clip;
};
constexpr int kMaxRefineTop = 2;

// Chooses the fp16 scale of one symmetric block. `ggml_d` is the float scale
// ggml's reference quantizer would store (its candidate is always evaluated).
// `ggml_imatrix_d`, when not NaN, is the scale ggml's imatrix search (make_qx_quants)
// would store: a second candidate that keeps the block no worse than ggml's with importance.
inline uint16_t sym_search(const float* x, const float* w, SymSpec s, float ggml_d, const SymSearch& search,
                           float ggml_imatrix_d = NAN) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < QK; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  if (amax == 0.0f) return 0;
  const Range r = block_range(x);
  float wx[QK];
  for (int j = 0; j < QK; ++j) wx[j] = w[j] * x[j];

  uint16_t best_h = to_half(ggml_d);
  float best_err = sym_error(x, w, r, fp16_to_fp32(best_h), s);
  auto consider = [&](float d) {
    const uint16_t h = to_half(d);
    if (h == best_h) return;
    if (!search.allow_clip && !(amax <= (static_cast<float>(-s.lo) + 0.5f) * std::fabs(fp16_to_fp32(h)))) return;
    const float e = sym_error(x, w, r, fp16_to_fp32(h), s);
    if (e < best_err) {
      best_err = e;
      best_h = h;
    }
  };
  if (!std::isnan(ggml_imatrix_d)) {
    const uint16_t h = to_half(ggml_imatrix_d);
    const float e = sym_error(x, w, r, fp16_to_fp32(h), s);
    if (e < best_err) {
      best_err = e;
      best_h = h;
    }
  }
  TopK<float, 4> top;
  TopK<float, kMaxRefineTop> coarse;  // offsets of the best low-side trials
  auto trial = [&](float offset, int side) {
    const ScaleFit f = sym_refit(x, w, wx, (static_cast<float>(side) + offset) / max, s);
    top.push(f.d, f.gain);
    return f.gain;
  };
  for (int k = 0; k < search.n_lo; ++k) coarse.push(search.lo_offsets[k], trial(search.lo_offsets[k], s.lo));
  for (int k = 0; k < search.n_hi; ++k) trial(search.hi_offsets[k], s.hi);
  for (int t = 0; t < coarse.n && t < search.refine_top; ++t) {
    trial(coarse.item[t] - search.refine_step, s.lo);
    trial(coarse.item[t] + search.refine_step, s.lo);
  }
  for (int k = 0; k < top.n && k < search.keep; ++k) {
    if (!(top.gain[k] > 0.0f)) continue;
    float d = top.item[k];
    consider(d);
    for (int it = 0; it < search.lloyd; ++it) {
      const float dh = fp16_to_fp32(to_half(d));
      if (dh == 0.0f) break;
      d = sym_refit(x, w, wx, safe_inverse(dh, amax), s).d;
      consider(d);
    }
  }

  // Polish: refit on the winner's own levels, then its fp16 neighbours.
  const float bd = fp16_to_fp32(best_h);
  if (bd != 0.0f) consider(sym_refit(x, w, wx, safe_inverse(bd, amax), s).d);
  const uint16_t h0 = best_h;
  if ((h0 & 0x7fffu) != 0 && (h0 & 0x7fffu) < 0x7bffu) {
    consider(fp16_to_fp32(static_cast<uint16_t>(h0 + 1)));
    consider(fp16_to_fp32(static_cast<uint16_t>(h0 - 1)));
  }
  return best_h;
}

// The largest |x| of a block: the span safe_inverse needs for a symmetric grid. The
// same value as max(-min, max) of block_range (only a zero's sign can differ, which
// safe_inverse ignores), taken over eight independent partial maxima instead of one
// chain of 32 dependent comparisons.
inline float block_amax(const float* x) {
  float m[kLanes] = {};
  for (int j0 = 0; j0 < QK; j0 += kLanes)
    for (int k = 0; k < kLanes; ++k) m[k] = std::max(m[k], std::fabs(x[j0 + k]));
  return std::max(std::max(std::max(m[0], m[1]), std::max(m[2], m[3])),
                  std::max(std::max(m[4], m[5]), std::max(m[6], m[7])));
}

// Signed levels for the stored scale: the nearest for each element.
inline void sym_levels(const float* x, float d, SymSpec s, int* q) {
  const float id = safe_inverse(d, block_amax(x));
  for (int j = 0; j < QK; ++j) q[j] = level_of_product(x[j], id, s.lo, s.hi);
}

struct Steps {
  float from, to, step;
};
constexpr Steps kNoOffsets{0.0f, -1.0f, 1.0f};  // an empty range
constexpr SymSearch make_search(Steps lo, Steps hi, int refine_top, float refine_step, int keep, int lloyd,
                                bool allow_clip) {
  SymSearch s{};
  s.allow_clip = allow_clip;
  s.n_lo = 0;
  for (float o = lo.from; o <= lo.to + 1e-4f && s.n_lo < 80; o += lo.step) s.lo_offsets[s.n_lo++] = o;
  s.n_hi = 0;
  for (float o = hi.from; o <= hi.to + 1e-4f && s.n_hi < 16; o += hi.step) s.hi_offsets[s.n_hi++] = o;
  s.refine_top = refine_top < kMaxRefineTop ? refine_top : kMaxRefineTop;
  s.refine_step = refine_step;
  s.keep = keep < 4 ? keep : 4;
  s.lloyd = lloyd;
  return s;
}

// The same search with its flipped-side offsets replaced by `hi`.
constexpr SymSearch with_hi_offsets(SymSearch s, std::initializer_list<float> hi) {
  s.n_hi = 0;
  for (float o : hi) s.hi_offsets[s.n_hi++] = o;
  return s;
}

// 4 and 5 bits, `default` with importance: the extreme mapped anywhere from 2.9
// levels beyond the grid (clipped) to three levels inside it in steps of 0.3 levels,
// plus grids flipped so the extreme lands on the short (positive) side in steps of
// 0.5; the two best low-side trials refined by +-0.1 level; the three best measured,
// each refitted once on its own levels. 36 refits where an earlier schedule (steps of
// 0.1 from -2, the four best measured) took 65, for a 0.03-0.35% lower weighted error
// (clipping an extreme far pays where its column is unimportant; docs/formats.md).
constexpr SymSearch kSearch4And5Weighted =
    make_search({-2.9f, 3.0f, 0.3f}, {-2.0f, 1.0f, 0.5f}, 2, 0.1f, 3, 1, true);
// Without importance clipping beyond two levels, and most flipped grids, hardly ever
// win: clipping from -2, five flipped grids (the extreme on 13 to 14 levels of Q5_0's
// short side, or on its last level), 31 refits; squared error within 0.003% of the
// 65-refit schedule's.
constexpr SymSearch kSearch4And5 = with_hi_offsets(make_search({-2.0f, 3.0f, 0.3f}, kNoOffsets, 2, 0.1f, 3, 1, true),
                                                   {-2.0f, -1.5f, -1.0f, 0.5f, 1.0f});
// 4 and 5 bits, `best`: steps of 0.1 level from four levels of clipping (which pays
// where importance makes a block's extreme cheap to clip) to three inside, flipped
// grids in steps of 0.25, refinements by +-0.05, the four best measured and refitted
// twice: about 2.5x the default's work for a further 0.01-0.07% lower error with
// importance (and never more without).
constexpr SymSearch kSearch4And5Best = make_search({-4.0f, 3.0f, 0.1f}, {-2.0f, 1.0f, 0.25f}, 2, 0.05f, 4, 2, true);
// 8 bits: a few nearby scales that keep the extreme unclipped (the e2e perplexity
// test on SmolLM2 showed clipping it costs more than the RMSE it saves); the grid
// [-127, 127] is symmetric, so there is no flipped side (empty range).
constexpr SymSearch kSearchQ8 = make_search({0.0f, 3.0f, 0.5f}, kNoOffsets, 0, 0.0f, 4, 0, false);

// ggml's reference scale for a symmetric 4/5-bit block: signed max / -nmax.
inline float ggml_sym_d(const float* x, int nmax) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < QK; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max / static_cast<float>(-nmax);
}

inline float ggml_q8_d(const float* x) {
  float amax = 0.0f;
  for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax / 127.0f;
}

// ---------------------------------------------------------------- asymmetric: x = d * l + m

// Weighted squared error with stored (fp16-exact) d and m, levels in [0, nmax]. Fused
// operations as in the symmetric search: the error is (x - m) - l * d, rounded once.
inline float asym_error(const float* x, const float* w, Range r, float d, float m, int nmax) {
  const float id = safe_inverse(d, std::max(std::fabs(r.max - m), std::fabs(r.min - m)));
  float acc[kLanes] = {};
  for (int j0 = 0; j0 < QK; j0 += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const int j = j0 + k;
      const float u = x[j] - m;
      const float l = static_cast<float>(level_of_product(u, id, 0, nmax));
      const float e = std::fma(-l, d, u);
      acc[k] = std::fma(w[j] * e, e, acc[k]);
    }
  return lane_sum(acc);
}

struct Affine {
  float d, m;
  float gain;  // error removed by the fit with its levels held fixed: d*sxl + m*sx
};

// Weighted least-squares (d, m) for the levels that rounding (x - origin) * id
// gives. sw = sum(w) and sx = sum(w*x) do not depend on the levels; wx[j] = w[j] * x[j].
inline bool asym_refit(const float* x, const float* w, const float* wx, float sw, float sx, float origin, float id,
                       int nmax, Affine* out) {
  float a_l[kLanes] = {}, a_ll[kLanes] = {}, a_xl[kLanes] = {};
  for (int j0 = 0; j0 < QK; j0 += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const int j = j0 + k;
      const float l = static_cast<float>(level_of_product(x[j] - origin, id, 0, nmax));
      a_l[k] = std::fma(w[j], l, a_l[k]);
      a_ll[k] = std::fma(w[j] * l, l, a_ll[k]);
      a_xl[k] = std::fma(wx[j], l, a_xl[k]);
    }
  const float sl = lane_sum(a_l), sll = lane_sum(a_ll), sxl = lane_sum(a_xl);
  const float det = sw * sll - sl * sl;
  if (!(det > 0.0f)) return false;
  out->d = (sw * sxl - sx * sl) / det;
  out->m = (sll * sx - sl * sxl) / det;
  out->gain = out->d * sxl + out->m * sx;
  return out->d > 0.0f;
}

struct AffineHalf {
  uint16_t d, m;
};

// The trials of one asymmetric search: grids anchored at the block's minimum and at
// its maximum with nmax + 0.2 k levels over the range, k from -10 to `k_max`, and
// `lloyd` refits of each ranked candidate on its own levels (see SymSearch::lloyd).
struct AsymSearch {
  int k_max;
  int lloyd;
};
// One effort's searches for rows without and with an importance vector.
struct AsymEffort {
  AsymSearch plain, weighted;
  const AsymSearch& search_for(const float* importance) const { return importance ? weighted : plain; }
};
// `default`: without importance the grids stretched beyond nmax + 1 levels hardly
// ever win (a few blocks in ten thousand), so they are left out (32 grids instead of
// 42); with importance they win often and stay. A coarser grid measurably lost
// accuracy for these two-parameter fits, and so did fewer refits. `best`: every grid,
// and one refit of each ranked candidate on its own levels (0.05-0.15% lower error).
constexpr AsymEffort kAsymDefault{{5, 0}, {10, 0}};
constexpr AsymEffort kAsymBest{{10, 1}, {10, 1}};

// `ggml_imatrix`, when given, is what ggml's imatrix search (make_qkx3_quants) would
// store: a second candidate that keeps the block no worse than ggml's with importance.
inline AffineHalf asym_search(const float* x, const float* w, int nmax, const AffineHalf* ggml_imatrix,
                              const AsymSearch& search) {
  const Range r = block_range(x);
  const float min = r.min, max = r.max;
  // ggml's reference: d = (max - min) / nmax, m = min.
  AffineHalf best{to_half((max - min) / static_cast<float>(nmax)), to_half(min)};
  float best_err = asym_error(x, w, r, fp16_to_fp32(best.d), fp16_to_fp32(best.m), nmax);
  if (ggml_imatrix != nullptr && (ggml_imatrix->d != best.d || ggml_imatrix->m != best.m)) {
    const float e = asym_error(x, w, r, fp16_to_fp32(ggml_imatrix->d), fp16_to_fp32(ggml_imatrix->m), nmax);
    if (e < best_err) {
      best_err = e;
      best = *ggml_imatrix;
    }
  }
  if (max == min) return best;
  auto consider_half = [&](AffineHalf h) {
    if (h.d == best.d && h.m == best.m) return;
    const float e = asym_error(x, w, r, fp16_to_fp32(h.d), fp16_to_fp32(h.m), nmax);
    if (e < best_err) {
      best_err = e;
      best = h;
    }
  };
  auto consider = [&](Affine a) { consider_half({to_half(a.d), to_half(a.m)}); };

  // Grids anchored at the minimum, and at the maximum, with the range spread over
  // nmax + delta levels; the refit then moves d and m to where those levels fit best.
  const float range = max - min;
  float sw = 0.0f, sx = 0.0f, wx[QK];
  for (int j = 0; j < QK; ++j) {
    wx[j] = w[j] * x[j];
    sw += w[j];
    sx += wx[j];
  }
  Affine a;
  TopK<Affine, 4> top;
  // Several trials often refit to the same stored (d, m); one copy is enough, or the
  // copies of one candidate crowd out a better one whose gain differs only by rounding
  // (an exact grid fit behind copies of the same grid shifted by a level).
  auto push = [&](const Affine& c) {
    const uint16_t hd = to_half(c.d), hm = to_half(c.m);
    for (int k = 0; k < top.n; ++k)
      if (to_half(top.item[k].d) == hd && to_half(top.item[k].m) == hm) return;
    top.push(c, c.gain);
  };
  for (int k = -10; k <= search.k_max; ++k) {
    const float id = (static_cast<float>(nmax) + 0.2f * static_cast<float>(k)) / range;
    if (asym_refit(x, w, wx, sw, sx, min, id, nmax, &a)) push(a);
    if (asym_refit(x, w, wx, sw, sx, max - static_cast<float>(nmax) / id, id, nmax, &a)) push(a);
  }
  // Grids with fewer levels than the format's, spanning the block's range exactly: a
  // block that already lies on a coarser grid (a decoded Q4_1 block stored as Q5_1)
  // refits to that grid's d and m and comes back exact.
  for (int levels = (nmax + 1) / 2; levels < nmax - 2; ++levels)
    if (asym_refit(x, w, wx, sw, sx, min, static_cast<float>(levels) / range, nmax, &a)) push(a);
  // A refit on the levels of the stored (d, m): a step of the fixed-point iteration
  // between rounding and fitting.
  auto refit_own = [&](AffineHalf h, Affine* out) {
    const float d = fp16_to_fp32(h.d), m = fp16_to_fp32(h.m);
    return d > 0.0f && asym_refit(x, w, wx, sw, sx, m, safe_inverse(d, std::max(max - m, m - min)), nmax, out);
  };
  for (int k = 0; k < top.n; ++k) {
    consider(top.item[k]);
    AffineHalf c{to_half(top.item[k].d), to_half(top.item[k].m)};
    for (int it = 0; it < search.lloyd && refit_own(c, &a); ++it) {
      consider(a);
      c = {to_half(a.d), to_half(a.m)};
    }
  }
  // Polish: refit on the winner's own levels, then the fp16 neighbours of d and m.
  for (int iter = 0; iter < 2; ++iter)
    if (refit_own(best, &a)) consider(a);
  const AffineHalf c = best;
  for (int dd = -1; dd <= 1; ++dd)
    for (int dm = -1; dm <= 1; ++dm) {
      if ((dd == 0 && dm == 0) || (c.d & 0x7fffu) == 0 || (c.d & 0x7fffu) >= 0x7bffu) continue;
      if ((c.m & 0x7fffu) == 0 || (c.m & 0x7fffu) >= 0x7bffu) continue;
      consider_half({static_cast<uint16_t>(c.d + dd), static_cast<uint16_t>(c.m + dm)});
    }
  return best;
}

inline void asym_levels(const float* x, float d, float m, int nmax, int* q) {
  const Range r = block_range(x);
  const float id = safe_inverse(d, std::max(std::fabs(r.max - m), std::fabs(r.min - m)));
  for (int j = 0; j < QK; ++j) q[j] = level_of_product(x[j] - m, id, 0, nmax);
}

// ggml's imatrix choices (ggml_search.hpp), NaN / false where ggml would fall back to
// its plain rounding (no positive importance in the block), which is a candidate anyway.
// ggml's weights imp * sqrt(sigma^2 + x^2) take sigma^2 over the whole row; here it is
// the block's own, so that a block's bytes depend on that block alone (GPTQ's GgmlTarget
// quantizes one block at a time and must get the row quantizer's bytes). The candidate
// is then ggml's search on a block-local weighting, not ggml's exact choice: never
// worse than ggml is checked, not guaranteed, with importance (test_legacy_effort.cpp).
inline float ggml_imatrix_d(const float* x, const float* importance, int nmax) {
  float gw[QK];
  int8_t L[QK];
  if (!ggml_search::imatrix_weights(x, importance, ggml_search::row_sigma2(x, QK), QK, gw)) return NAN;
  return ggml_search::make_qx(x, gw, nmax, L);
}
inline bool ggml_imatrix_affine(const float* x, const float* importance, int nmax, AffineHalf* out) {
  float gw[QK], m;
  uint8_t L[QK];
  if (!ggml_search::imatrix_weights(x, importance, ggml_search::row_sigma2(x, QK), QK, gw)) return false;
  const float d = ggml_search::make_qkx3(x, gw, nmax, L, &m);
  *out = {to_half(d), to_half(m)};
  return true;
}

// ---------------------------------------------------------------- packing

// 5th bit of element j in bit j of the little-endian u32.
inline void pack_high_bits(const int* q, uint8_t* qh) {
  uint32_t h = 0;
  for (int j = 0; j < QK; ++j) h |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  for (int b = 0; b < 4; ++b) qh[b] = static_cast<uint8_t>(h >> (8 * b));
}

inline uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

template <class Block>
Block* blocks(void* y) {
  return static_cast<Block*>(y);
}
template <class Block>
const Block* blocks(const void* x) {
  return static_cast<const Block*>(x);
}

// ---------------------------------------------------------------- symmetric rows
// What one symmetric format's standard search needs, and the per-block steps around
// the search that the scalar rows and the SIMD rows share.
// Levels stay within [-127, 127], as ggml's do: -128 would break the sign tricks
// that int8 dot-product kernels use.
constexpr SymSpec kSpecQ8{-127, 127};

struct SymFormat {
  SymSpec spec;
  const SymSearch* search;           // rows quantized without an importance vector
  const SymSearch* weighted_search;  // rows quantized with one
  int ggml_nmax;       // ggml's reference scale: signed max / -nmax, or absmax / 127 for 0
  bool imatrix_guard;  // whether ggml's imatrix search is a candidate too (4/5 bits)
  const SymSearch& search_for(const float* importance) const { return importance ? *weighted_search : *search; }
};
constexpr SymFormat kQ4_0Search{{-8, 7}, &kSearch4And5, &kSearch4And5Weighted, 8, true};
constexpr SymFormat kQ5_0Search{{-16, 15}, &kSearch4And5, &kSearch4And5Weighted, 16, true};
constexpr SymFormat kQ4_0SearchBest{{-8, 7}, &kSearch4And5Best, &kSearch4And5Best, 8, true};
constexpr SymFormat kQ5_0SearchBest{{-16, 15}, &kSearch4And5Best, &kSearch4And5Best, 16, true};
constexpr SymFormat kQ8Search{kSpecQ8, &kSearchQ8, &kSearchQ8, 0, false};

// The block's objective weights, ggml's scale, and ggml's imatrix scale (NaN when
// there is none): the inputs of sym_search besides the block itself.
inline void sym_prepare(const float* xb, const float* importance, const SymFormat& f, float* w, float& ggml_d,
                        float& ggml_imatrix) {
  importance_or_ones(importance, w);
  ggml_d = f.ggml_nmax > 0 ? ggml_sym_d(xb, f.ggml_nmax) : ggml_q8_d(xb);
  ggml_imatrix = f.imatrix_guard && importance ? ggml_imatrix_d(xb, importance, f.ggml_nmax) : NAN;
}

// Writers of one block for its chosen fp16 scale h: every element at its nearest level.
inline void store_q4_0(const float* xb, uint16_t h, block_q4_0& out) {
  int q[QK];
  sym_levels(xb, fp16_to_fp32(h), kQ4_0Search.spec, q);
  for (int j = 0; j < QK; ++j) q[j] += 8;
  out.d = h;
  pack_nibbles32(q, out.qs);
}
inline void store_q5_0(const float* xb, uint16_t h, block_q5_0& out) {
  int q[QK];
  sym_levels(xb, fp16_to_fp32(h), kQ5_0Search.spec, q);
  for (int j = 0; j < QK; ++j) q[j] += 16;
  out.d = h;
  pack_high_bits(q, out.qh);
  pack_nibbles32(q, out.qs);
}
inline void store_q8_0(const float* xb, uint16_t h, block_q8_0& out) {
  int q[QK];
  sym_levels(xb, fp16_to_fp32(h), kSpecQ8, q);
  out.d = h;
  for (int j = 0; j < QK; ++j) out.qs[j] = static_cast<int8_t>(q[j]);
}
inline void store_q8_1(const float* xb, uint16_t h, block_q8_1& out) {
  int q[QK];
  const float d = fp16_to_fp32(h);
  sym_levels(xb, d, kSpecQ8, q);
  int sum = 0;
  for (int j = 0; j < QK; ++j) {
    out.qs[j] = static_cast<int8_t>(q[j]);
    sum += q[j];
  }
  out.d = h;
  // ggml's quantize_row_q8_1_ref stores fp16(sum(q) * d): the sum of the block's
  // dequantized values. Our d is the stored one, so s is exactly that sum (before
  // its own fp16 rounding).
  out.s = to_half(static_cast<float>(sum) * d);
}

// A row of a symmetric format, one block at a time (the scalar reference's way).
template <class Block>
inline void sym_row(const float* x, void* y, int64_t n, const float* importance, const SymFormat& f,
             void (*store)(const float*, uint16_t, Block&)) {
  auto* out = static_cast<Block*>(y);
  float w[QK];
  for (int64_t i = 0; i < n / QK; ++i) {
    const float* xb = x + i * QK;
    float ggml_d, ggml_imatrix;
    sym_prepare(xb, importance ? importance + i * QK : nullptr, f, w, ggml_d, ggml_imatrix);
    store(xb, sym_search(xb, w, f.spec, ggml_d, f.search_for(importance), ggml_imatrix), out[i]);
  }
}

// ---------------------------------------------------------------- asymmetric rows
// The per-block steps around asym_search that the scalar rows and the SIMD rows share.

// The block's objective weights and ggml's imatrix choice (have_g false where none).
inline void asym_prepare(const float* xb, const float* importance, int nmax, float* w, AffineHalf& g,
                         bool& have_g) {
  importance_or_ones(importance, w);
  have_g = importance && ggml_imatrix_affine(xb, importance, nmax, &g);
}

inline void store_q4_1(const float* xb, AffineHalf h, block_q4_1& out) {
  int q[QK];
  asym_levels(xb, fp16_to_fp32(h.d), fp16_to_fp32(h.m), 15, q);
  out.d = h.d;
  out.m = h.m;
  pack_nibbles32(q, out.qs);
}
inline void store_q5_1(const float* xb, AffineHalf h, block_q5_1& out) {
  int q[QK];
  asym_levels(xb, fp16_to_fp32(h.d), fp16_to_fp32(h.m), 31, q);
  out.d = h.d;
  out.m = h.m;
  pack_high_bits(q, out.qh);
  pack_nibbles32(q, out.qs);
}

// A row of an asymmetric format, one block at a time (the scalar reference's way).
template <class Block>
void asym_row(const float* x, void* y, int64_t n, const float* importance, int nmax,
              void (*store)(const float*, AffineHalf, Block&), const AsymEffort& effort) {
  auto* out = static_cast<Block*>(y);
  float w[QK];
  for (int64_t i = 0; i < n / QK; ++i) {
    const float* xb = x + i * QK;
    AffineHalf g;
    bool have_g;
    asym_prepare(xb, importance ? importance + i * QK : nullptr, nmax, w, g, have_g);
    store(xb, asym_search(xb, w, nmax, have_g ? &g : nullptr, effort.search_for(importance)), out[i]);
  }
}

}  // namespace
}  // namespace lowbit::kernels
