#pragma once
// The standard-effort searches of Q2_K and Q3_K, included by the scalar reference
// (kquants_low.cpp) and by the SIMD variants (kernels/cpu/lanes/kquants_low_lanes.hpp),
// which replace the per-sub-block stages with lane versions and reuse the rest.
// Internal linkage: each including file compiles its own copy with its own flags
// (and -ffp-contract=off, like the whole library), so every copy rounds as the
// reference does.
//
// Both formats hold 256 elements as sixteen 16-element sub-blocks:
//   Q2_K  x = (d*sc)*q - (dmin*m)   q in 0..3, sc and m 4-bit, d and dmin fp16
//   Q3_K  x = (d*(sc-32))*q         q in -4..3, sc 6-bit, d fp16
// The quantizers search for the parameters that minimise the (importance-weighted)
// squared error of what will actually be decoded:
//   1. per sub-block, the best unconstrained (float) scale (and offset): trial
//      grids, each refitted by least squares, then a few code/refit alternations,
//   2. per block, several candidate super-scales d (and dmin); for each, every
//      sub-block tries its neighbouring integer scales with codes re-picked against
//      the decoded scale, and the candidate with the lowest real error wins (Q3_K
//      first ranks many super-scales by a bound computed from the fits alone and
//      measures only the best few),
//   3. a least-squares refit of d (and dmin) for the chosen integers, kept only
//      when it lowers the real error after fp16 rounding.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/reference/scalar_math.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

constexpr int kBlock = 256;
constexpr int kSub = 16;              // elements per sub-block
constexpr int kNumSub = kBlock / kSub;

// Four float lanes (GCC/Clang vector extension). The hot loops run over a 16-element
// sub-block four lanes at a time: the same code vectorises on every target, and sums
// in the same order everywhere, so results do not depend on the machine.
typedef float F4 __attribute__((vector_size(16)));
inline F4 load4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline F4 splat(float v) { return F4{v, v, v, v}; }
inline F4 clamp4(F4 v, float lo, float hi) {
  v = v < splat(lo) ? splat(lo) : v;
  return v > splat(hi) ? splat(hi) : v;
}
inline float hsum(F4 v) { return (v[0] + v[1]) + (v[2] + v[3]); }

// fp16 value nearest to a (non-negative) super-scale, saturating instead of
// overflowing to Inf.
inline uint16_t half_scale(float d) { return fp32_to_fp16(std::min(d, kHalfMax)); }

// One block prepared for the search. The weights of its squared error are the
// importance vector, or 1 where there is none (or where the block's importance is
// all zero, so it still gets quantized sensibly rather than arbitrarily). Values and
// weights are scaled by powers of two so that the largest |x| and the largest
// weight lie in [0.5, 1): that scaling is exact, so every comparison comes out as on
// the raw block, but neither tiny nor huge inputs under- or overflow the float error
// sums. Only the fp16 super-scales meet the true magnitude, through half()/unhalf().
struct Block {
  float x[kBlock], w[kBlock];
  int exp = 0;              // x[i] = raw[i] * 2^-exp
  PowerOfTwo to_raw, to_x;  // times 2^exp, times 2^-exp
  bool weighted = false;    // the weights are not all equal

  Block(const float* raw, const float* importance) {
    const float amax = max_of(raw, kBlock, true);
    if (amax > 0.0f) std::frexp(amax, &exp);
    scale_by_power_of_two(raw, kBlock, exp, x);
    to_raw = PowerOfTwo(exp);
    to_x = PowerOfTwo(-exp);
    const float wmax = importance ? max_of(importance, kBlock, false) : 0.0f;
    weighted = wmax > 0.0f;
    if (weighted) {
      int wexp = 0;
      std::frexp(wmax, &wexp);
      scale_by_power_of_two(importance, kBlock, wexp, w);
    } else {
      std::fill(w, w + kBlock, 1.0f);
    }
  }
  uint16_t half(float d) const { return half_scale(to_raw(d)); }
  float unhalf(uint16_t h) const { return to_x(fp16_to_fp32(h)); }
};

// Both formats keep the low two bits of element 128*h + 32*s + l in bits 2*s of
// qs[32*h + l].
void pack_low2(const uint8_t* codes, uint8_t* qs) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* c = codes + 128 * h + l;
      qs[32 * h + l] = static_cast<uint8_t>((c[0] & 3) | (c[32] & 3) << 2 | (c[64] & 3) << 4 | (c[96] & 3) << 6);
    }
}

// Calls measure(keys[m]) for the `count` entries of keys[0..n) with the lowest
// scores, lowest first (the earlier entry on ties); reorders both arrays.
template <class Key, class Measure>
void measure_lowest(Key* keys, float* scores, int n, int count, Measure measure) {
  for (int m = 0; m < count && m < n; ++m) {
    int at = m;
    for (int k = m + 1; k < n; ++k)
      if (scores[k] < scores[at]) at = k;
    std::rotate(keys + m, keys + at, keys + at + 1);
    std::rotate(scores + m, scores + at, scores + at + 1);
    measure(keys[m]);
  }
}

// ----------------------------------------------------------------------------- Q3_K

// Weighted squared error of x ~= S*q, q = clamp(round(x/S), -4, 3); codes+4 into L.
float q3_error(const float* x, const float* w, float S, uint8_t* L) {
  float err = 0.0f;
  if (S == 0.0f) {
    for (int i = 0; i < kSub; ++i) {
      err += w[i] * x[i] * x[i];
      if (L) L[i] = 4;
    }
    return err;
  }
  const float inv = 1.0f / S;
  F4 acc = splat(0.0f);
  for (int i = 0; i < kSub; i += 4) {
    const F4 xv = load4(x + i);
    const F4 q = round_even(clamp4(xv * inv, -4.0f, 3.0f));
    const F4 diff = xv - S * q;
    acc += load4(w + i) * diff * diff;
    if (L)
      for (int l = 0; l < 4; ++l) L[i + l] = static_cast<uint8_t>(static_cast<int>(q[l]) + 4);
  }
  return hsum(acc);
}

struct Q3SubFit {
  float scale[2];  // best positive and best negative float scale
  float gain[2];   // their error reductions
  float curv[2];   // sum w q^2 of their codes
};

// The fits' trials: the ratio of the largest |x| to the scale in grid trial k (the
// first kQ3Fine trials, then with an importance vector kQ3Wide more), then kQ3Refits
// refits.
constexpr int kQ3Fine = 8, kQ3Wide = 5, kQ3Refits = 3;
inline float q3_trial_ratio(int k) { return k < kQ3Fine ? 2.0f + 0.4f * k : 4.8f + 0.5f * (k - kQ3Fine + 1); }

// The scale S of sign `sign` that best fits x ~= S*q, q = clamp(round(x/S), -4, 3):
// trial grids putting the largest |x| at 2.0 .. 4.8 (clipping it beyond 4), and with
// an importance vector on out to 7.3 (a large but unimportant element may be worth
// clipping hard), each with the least-squares scale sum(w x q)/sum(w q^2) for its
// codes; then a few alternations of re-picking codes and refitting. Returns the
// error reduction sum(w x q)^2/sum(w q^2); sets *scale and *curv, that fit's
// sum(w q^2). Near-ties go to the smallest scale (a lone large element fits equally
// well at q = 1..4), which leaves the block's super-scale the finest resolution.
float q3_fit_sign(const float* x, const float* w, float amax, float sign, bool weighted, float* scale, float* curv) {
  constexpr int kFine = kQ3Fine, kWide = kQ3Wide, kRefits = kQ3Refits;
  const int ngrid = weighted ? kFine + kWide : kFine;
  float best = 0.0f;
  *scale = *curv = 0.0f;
  for (int k = 0; k < ngrid + kRefits; ++k) {
    if (k >= ngrid && *scale == 0.0f) break;
    const float r = q3_trial_ratio(k);
    const float t = k < ngrid ? sign * r / amax : 1.0f / *scale;
    F4 sxq = splat(0.0f), sq2 = splat(0.0f);
    for (int i = 0; i < kSub; i += 4) {
      const F4 xv = load4(x + i), wv = load4(w + i);
      const F4 q = round_even(clamp4(xv * t, -4.0f, 3.0f));
      sxq += wv * xv * q;
      sq2 += wv * q * q;
    }
    const float a = hsum(sxq), b = hsum(sq2);
    if (!(b > 0.0f) || sign * a <= 0.0f) continue;
    const float gain = a * a / b;
    if (gain >= best * (1.0f - 1e-4f)) {
      best = std::max(best, gain);
      *scale = a / b;
      *curv = b;
    }
  }
  return best;
}

Q3SubFit q3_fit_sub(const float* x, const float* w, bool weighted) {
  const float amax = max_of(x, kSub, true);
  Q3SubFit f{{0.0f, 0.0f}, {0.0f, 0.0f}, {0.0f, 0.0f}};
  if (amax == 0.0f) return f;
  f.gain[0] = q3_fit_sign(x, w, amax, 1.0f, weighted, &f.scale[0], &f.curv[0]);
  f.gain[1] = q3_fit_sign(x, w, amax, -1.0f, weighted, &f.scale[1], &f.curv[1]);
  return f;
}

// Each sub-block's integer-scale candidates for super-scale d come from its two fits:
// the n integers nearest scale/d (n = 1: the nearest; n even: floor(scale/d) - n/2 + 1
// .. floor(scale/d) + n/2), clamped to the format's -32..31 before rounding; the
// window's k-th entry, which may lie outside -32..31 (then it is skipped).
inline int q3_window(float t, int n, int k) {
  const float c = clampf(t, -32.0f, 31.0f);
  if (n == 1) return static_cast<int>(round_even(c));
  return static_cast<int>(std::floor(c)) - n / 2 + 1 + k;
}

// How many integers the windows of a sub-block's two fits hold: the fit with the
// larger gain (the positive one on ties) first, then the other.
struct Q3Reach {
  int better, other;
};

// The error of sub-block scale S less the all-zero error, with one fit's codes held:
// sum w (x - S q)^2 - sum w x^2 = curv * S * (S - 2 scale), curv = sum w q^2 (the
// least-squares scale being scale = sum w x q / curv). Re-picking the codes for S can
// only lower the error, so this bounds it from above without touching the elements.
inline float q3_fit_bound(float scale, float curv, float S) { return curv * S * (S - 2.0f * scale); }

// The fits' bound on a block's error at super-scale d, each sub-block at the lower of
// its fits' bounds at their nearest integer scales and the all-zero error: ranks
// super-scales for a fraction of one measurement's cost.
inline float q3_block_bound(const Q3SubFit* fits, float d) {
  float total = 0.0f;
  for (int j = 0; j < kNumSub; ++j) {
    float best = 0.0f;
    for (int s = 0; s < 2; ++s) {
      const float S = d * static_cast<float>(q3_window(fits[j].scale[s] / d, 1, 0));
      best = std::min(best, q3_fit_bound(fits[j].scale[s], fits[j].curv[s], S));
    }
    total += best;
  }
  return total;
}

// For super-scale d (as decoded), each sub-block's best integer scale among its
// candidates (the first wins ties); returns the block's total error.
float q3_eval(const float* x, const float* w, const Q3SubFit* fits, float d, Q3Reach reach, int8_t* sc_out) {
  float total = 0.0f;
  for (int j = 0; j < kNumSub; ++j) {
    const int first = fits[j].gain[0] >= fits[j].gain[1] ? 0 : 1;
    float best = 0.0f;
    bool any = false;
    for (int s = 0; s < 2; ++s) {
      const int n = s == 0 ? reach.better : reach.other;
      const float t = fits[j].scale[s == 0 ? first : 1 - first] / d;
      for (int k = 0; k < n; ++k) {
        const int c = q3_window(t, n, k);
        if (c < -32 || c > 31) continue;
        const float e = q3_error(x + kSub * j, w + kSub * j, d * static_cast<float>(c), nullptr);
        if (!any || e < best) {
          best = e;
          sc_out[j] = static_cast<int8_t>(c);
          any = true;
        }
      }
    }
    total += best;
  }
  return total;
}

// The normal equations of the least-squares super-scale d for the integer scales sc
// (x ~= d * sc[j] * q), each sub-block's codes q re-picked for its scale d * sc[j]
// as q3_error picks them: sum w x a and sum w a^2, a = sc[j] * q, each summed per
// sub-block in q3_error's order and then over the sub-blocks in order.
void q3_refit_sums(const float* x, const float* w, float d, const int8_t* sc, float& num, float& den) {
  num = den = 0.0f;
  for (int j = 0; j < kNumSub; ++j) {
    const float S = d * static_cast<float>(sc[j]);
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;  // S == 0: every code 0
    F4 n4 = splat(0.0f), d4 = splat(0.0f);
    for (int i = kSub * j; i < kSub * (j + 1); i += 4) {
      const F4 xv = load4(x + i), wv = load4(w + i);
      const F4 a = static_cast<float>(sc[j]) * round_even(clamp4(xv * inv, -4.0f, 3.0f));
      n4 += wv * xv * a;
      d4 += wv * a * a;
    }
    num += hsum(n4);
    den += hsum(d4);
  }
}

// The super-scale search, in three steps:
//   - a sweep of 9 super-scales from the largest useful one down to 76% of it, each
//     sub-block at the integer scale nearest its better fit (kQ3Nearest);
//   - kQ3Trials super-scales down to 70% in steps of 1.25%, ranked by
//     q3_block_bound, the kQ3Measured best measured with kQ3Near candidates;
//   - the winner and its least-squares refits with the wider kQ3Around.
// The bound alone misranks some blocks of data that already lies on a grid, which
// the sweep catches. (The search this replaced measured all 9 swept super-scales
// with floor and ceil of both fits, then 6 + 6 candidates around the winner: less
// accurate on every test set and about 1.3x slower.)
constexpr int kQ3Sweep = 9, kQ3Trials = 25, kQ3Measured = 3;
constexpr float kQ3SweepStep = 0.03f, kQ3TrialStep = 0.0125f;
constexpr Q3Reach kQ3Nearest{1, 0}, kQ3Near{2, 1}, kQ3Around{4, 2};

template <class Ops>
void quantize_block_q3_K(const float* raw, const float* importance, block_q3_K* y, Ops& ops) {
  const Block blk(raw, importance);
  const float* x = blk.x;
  const float* w = blk.w;
  std::memset(y, 0, sizeof *y);

  Q3SubFit fits[kNumSub];
  // The super-scale that lets the largest sub-block scale reach the grid's end:
  // -32 for negative scales, +31 for positive ones.
  float dmax = 0.0f;
  ops.fit_q3(x, w, blk.weighted, fits);
  for (int j = 0; j < kNumSub; ++j) {
    const Q3SubFit& f = fits[j];
    dmax = std::max(dmax, f.gain[0] >= f.gain[1] ? f.scale[0] / 31.0f : -f.scale[1] / 32.0f);
  }
  if (dmax == 0.0f) return;  // nothing to fit: all-zero bytes decode to zeros

  int8_t sc[kNumSub], sc_try[kNumSub];
  float best = INFINITY;
  uint16_t best_d = 0;
  auto measure = [&](uint16_t h, Q3Reach reach) {
    const float d = blk.unhalf(h);
    if (!(d > 0.0f)) return;
    const float e = ops.eval_q3(x, w, fits, d, reach, sc_try);
    if (e < best) {
      best = e;
      best_d = h;
      std::copy(sc_try, sc_try + kNumSub, sc);
    }
  };
  auto consider = [&](float dcand, Q3Reach reach) { measure(blk.half(dcand), reach); };
  for (int k = 0; k < kQ3Sweep; ++k) consider(dmax * (1.0f - kQ3SweepStep * k), kQ3Nearest);
  {
    uint16_t hs[kQ3Trials];
    float bound[kQ3Trials];
    int n = 0;
    for (int k = 0; k < kQ3Trials; ++k) {
      const uint16_t h = blk.half(dmax * (1.0f - kQ3TrialStep * k));
      if (n > 0 && hs[n - 1] == h) continue;  // the trials decrease: duplicates are adjacent
      const float d = blk.unhalf(h);
      if (!(d > 0.0f)) continue;
      hs[n] = h;
      bound[n] = ops.bound_q3(fits, d);
      ++n;
    }
    measure_lowest(hs, bound, n, kQ3Measured, [&](uint16_t h) { measure(h, kQ3Near); });
  }
  if (best == INFINITY) return;  // every candidate underflows fp16: decode as zeros

  // From here on each sub-block looks wider around its float optima: first at the
  // best d found, then at least-squares refits of d for the chosen scales and codes.
  measure(best_d, kQ3Around);
  for (int iter = 0; iter < 2 && best > 0.0f; ++iter) {
    float num, den;
    ops.refit_q3(x, w, blk.unhalf(best_d), sc, num, den);
    if (!(den > 0.0f) || !(num > 0.0f)) break;
    const uint16_t before = best_d;
    consider(num / den, kQ3Around);
    if (best_d == before) break;
  }

  const float d = blk.unhalf(best_d);
  // Write: 6-bit scales (offset 32) and the codes for the decoded scales.
  y->d = best_d;
  uint8_t L[kBlock];
  for (int j = 0; j < kNumSub; ++j) {
    q3_error(x + kSub * j, w + kSub * j, d * sc[j], L + kSub * j);
    const int l = sc[j] + 32;
    // Low nibbles: scales[0..7] hold sub-blocks 0..7 (low) and 8..15 (high);
    // high 2 bits: scales[8 + j%4] at bit 2*(j/4).
    y->scales[j % 8] |= static_cast<uint8_t>((l & 0xF) << (j < 8 ? 0 : 4));
    y->scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
  }
  // hmask bit (e / 32) of byte e % 32 is set when code e is >= 0 (no -4 offset).
  // (Codes 4..7 have bit 2 set; branch-free, as the codes are random.)
  for (int h = 0; h < kBlock / 32; ++h)
    for (int l = 0; l < 32; ++l) y->hmask[l] |= static_cast<uint8_t>((L[32 * h + l] >> 2) << h);
  pack_low2(L, y->qs);
}

// ----------------------------------------------------------------------------- Q2_K

// Weighted squared error of x ~= S*q - M, q = clamp(round((x+M)/S), 0, 3); codes into L.
float q2_error(const float* x, const float* w, float S, float M, uint8_t* L) {
  float err = 0.0f;
  if (S == 0.0f) {
    for (int i = 0; i < kSub; ++i) {
      const float diff = x[i] + M;
      err += w[i] * diff * diff;
      if (L) L[i] = 0;
    }
    return err;
  }
  const float inv = 1.0f / S;
  F4 acc = splat(0.0f);
  for (int i = 0; i < kSub; i += 4) {
    const F4 xv = load4(x + i);
    const F4 q = round_even(clamp4((xv + M) * inv, 0.0f, 3.0f));
    const F4 diff = xv - (S * q - M);
    acc += load4(w + i) * diff * diff;
    if (L)
      for (int l = 0; l < 4; ++l) L[i + l] = static_cast<uint8_t>(q[l]);
  }
  return hsum(acc);
}

struct Q2SubFit {
  float scale;  // S >= 0
  float min;    // M >= 0 (the format subtracts it)
};

// Weighted sums of one sub-block, shared by all its trial fits.
struct Q2Sums {
  float sw = 0.0f, sx = 0.0f, sxx = 0.0f;
};

// One trial: codes q = clamp(round((x + M0)/S0), 0, 3), then the weighted
// least-squares x ~= S*q - M for those codes with M >= 0 (when the free fit wants a
// positive offset, M = 0 and S alone is fitted). Returns the fit's error, from the
// normal-equation sums, or INFINITY when the codes cannot carry a positive scale.
float q2_trial(const float* x, const float* w, const Q2Sums& t, float S0, float M0, float* S, float* M) {
  const float inv = 1.0f / S0;
  F4 vq = splat(0.0f), vq2 = splat(0.0f), vxq = splat(0.0f);
  for (int i = 0; i < kSub; i += 4) {
    const F4 xv = load4(x + i), wv = load4(w + i);
    const F4 q = round_even(clamp4((xv + M0) * inv, 0.0f, 3.0f));
    vq += wv * q;
    vq2 += wv * q * q;
    vxq += wv * xv * q;
  }
  const float sq = hsum(vq), sq2 = hsum(vq2), sxq = hsum(vxq);
  const float D = t.sw * sq2 - sq * sq;
  float s = 0.0f, m = 0.0f;
  if (D > 0.0f) {
    s = (t.sw * sxq - t.sx * sq) / D;
    m = -(sq2 * t.sx - sq * sxq) / D;  // x ~= s*q - m
  }
  if (!(D > 0.0f) || m < 0.0f) {
    if (!(sq2 > 0.0f)) return INFINITY;
    s = sxq / sq2;
    m = 0.0f;
  }
  if (!(s > 0.0f)) return INFINITY;
  *S = s;
  *M = m;
  // sum w (x + m - s*q)^2, expanded.
  return (t.sxx + 2.0f * m * t.sx + m * m * t.sw) - 2.0f * s * (sxq + m * sq) + s * s * sq2;
}

Q2SubFit q2_fit_sub(const float* x, const float* w) {
  float mn = x[0], mx = x[0];
  Q2Sums t;
  for (int i = 0; i < kSub; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
    t.sw += w[i];
    t.sx += w[i] * x[i];
    t.sxx += w[i] * x[i] * x[i];
  }
  mn = std::min(mn, 0.0f);  // the offset can only lower values
  Q2SubFit best{0.0f, -mn};
  if (mx <= mn) return best;  // constant (<= 0) sub-block: the offset alone is exact
  float best_err = q2_error(x, w, 0.0f, -mn, nullptr);
  // Trial grids spanning [mn, mx] in 2 to 4 steps, then a few alternations of
  // re-picking codes for the best fit and refitting.
  constexpr int kGrid = 11, kRefits = 3;
  for (int k = 0; k < kGrid + kRefits; ++k) {
    if (k >= kGrid && best.scale == 0.0f) break;
    float S, M;
    float e = k < kGrid ? q2_trial(x, w, t, (mx - mn) / (2.0f + 0.2f * k), -mn, &S, &M)
                        : q2_trial(x, w, t, best.scale, best.min, &S, &M);
    if (e != INFINITY) e = q2_error(x, w, S, M, nullptr);
    if (e < best_err) {
      best_err = e;
      best = {S, M};
    } else if (k >= kGrid) {
      break;
    }
  }
  return best;
}

// The nibbles floor(v) - reach + 1 .. floor(v) + reach within 0..15 (reach 1: floor
// and ceil; reach 0: the nearest); returns how many.
int nibble_candidates(float v, int reach, int* out) {
  if (reach == 0) {
    out[0] = static_cast<int>(round_even(clampf(v, 0.0f, 15.0f)));
    return 1;
  }
  const int r = static_cast<int>(std::floor(clampf(v, 0.0f, 15.0f)));
  int n = 0;
  for (int c = std::max(r - reach + 1, 0); c <= std::min(r + reach, 15); ++c) out[n++] = c;
  return n;
}

// For decoded super-scales d, dmin, every sub-block's best (scale, min) nibbles among
// the neighbours of its float fit; returns the block's total error.
float q2_eval(const float* x, const float* w, const Q2SubFit* fits, float d, float dmin, int reach,
              uint8_t* sc_out, uint8_t* m_out) {
  float total = 0.0f;
  for (int j = 0; j < kNumSub; ++j) {
    int sc[16], mc[16];
    const int ns = d > 0.0f ? nibble_candidates(fits[j].scale / d, reach, sc) : (sc[0] = 0, 1);
    const int nm = dmin > 0.0f ? nibble_candidates(fits[j].min / dmin, reach, mc) : (mc[0] = 0, 1);
    float best = INFINITY;
    for (int a = 0; a < ns; ++a)
      for (int b = 0; b < nm; ++b) {
        const float e = q2_error(x + kSub * j, w + kSub * j, d * static_cast<float>(sc[a]),
                                 dmin * static_cast<float>(mc[b]), nullptr);
        if (e < best) {
          best = e;
          sc_out[j] = static_cast<uint8_t>(sc[a]);
          m_out[j] = static_cast<uint8_t>(mc[b]);
        }
      }
    total += best;
  }
  return total;
}

// The normal equations of the least-squares (d, dmin) for the nibbles sc, mn
// (x ~= d * a - dmin * b, a = sc[j] * q, b = mn[j]), each sub-block's codes q
// re-picked for its decoded scale and min as q2_error picks them: each sum taken per
// sub-block in q2_error's order, then over the sub-blocks in order.
struct Q2RefitSums {
  float aa = 0.0f, ab = 0.0f, bb = 0.0f, xa = 0.0f, xb = 0.0f;
};

void q2_refit_sums(const float* x, const float* w, float d, float dmin, const uint8_t* sc, const uint8_t* mn,
                   Q2RefitSums& r) {
  r = Q2RefitSums{};
  for (int j = 0; j < kNumSub; ++j) {
    const float S = d * static_cast<float>(sc[j]), M = dmin * static_cast<float>(mn[j]);
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;  // S == 0: every code 0
    const float scale = static_cast<float>(sc[j]), b = static_cast<float>(mn[j]);
    F4 aa = splat(0.0f), ab = aa, bb = aa, xa = aa, xb = aa;
    for (int i = kSub * j; i < kSub * (j + 1); i += 4) {
      const F4 xv = load4(x + i), wv = load4(w + i);
      const F4 a = scale * round_even(clamp4((xv + M) * inv, 0.0f, 3.0f));
      aa += wv * a * a;
      ab += wv * a * b;
      bb += wv * b * b;
      xa += wv * xv * a;
      xb += wv * xv * b;
    }
    r.aa += hsum(aa);
    r.ab += hsum(ab);
    r.bb += hsum(bb);
    r.xa += hsum(xa);
    r.xb += hsum(xb);
  }
}

// The per-sub-block stages of the Q2_K and Q3_K searches (the fits, the evaluation
// of every sub-block's integer candidates for a super-scale, Q3_K's bound, the
// refits' sums), the scalar way. The SIMD variants (kernels/cpu/lanes/
// kquants_low_lanes.hpp) supply the same operations with the sub-blocks in vector
// lanes and the same values, so the blocks' control flow, and with it every byte, is
// shared.
struct ScalarLowOps {
  void fit_q3(const float* x, const float* w, bool weighted, Q3SubFit* fits) {
    for (int j = 0; j < kNumSub; ++j) fits[j] = q3_fit_sub(x + kSub * j, w + kSub * j, weighted);
  }
  float bound_q3(const Q3SubFit* fits, float d) { return q3_block_bound(fits, d); }
  void refit_q3(const float* x, const float* w, float d, const int8_t* sc, float& num, float& den) {
    q3_refit_sums(x, w, d, sc, num, den);
  }
  float eval_q3(const float* x, const float* w, const Q3SubFit* fits, float d, Q3Reach reach, int8_t* sc) {
    return q3_eval(x, w, fits, d, reach, sc);
  }
  void refit_q2(const float* x, const float* w, float d, float dmin, const uint8_t* sc, const uint8_t* mn,
                Q2RefitSums& r) {
    q2_refit_sums(x, w, d, dmin, sc, mn, r);
  }
  void fit_q2(const float* x, const float* w, Q2SubFit* fits) {
    for (int j = 0; j < kNumSub; ++j) fits[j] = q2_fit_sub(x + kSub * j, w + kSub * j);
  }
  float eval_q2(const float* x, const float* w, const Q2SubFit* fits, float d, float dmin, int reach, uint8_t* sc,
                uint8_t* m) {
    return q2_eval(x, w, fits, d, dmin, reach, sc, m);
  }
};

// Q2_K's coordinate search (below) as an effort: d_trials super-scales from the
// largest useful one down in steps of d_step of it, each measured at every
// sub-block's nearest nibbles, the d_measured best of them then with floor and ceil
// (all with floor and ceil when d_measured >= d_trials); then for the best d,
// dmin_trials values of dmin below its natural one in steps of dmin_step.
struct Q2Search {
  int d_trials;
  float d_step;
  int d_measured;
  int dmin_trials;
  float dmin_step;
};
// `default`: 17 super-scales down to 60% (33 sub-block error passes). It replaced 9
// super-scales down to 76%, each with floor and ceil (36 passes), which left
// 0.0002-2.4% more error: the sub-blocks of heavy-tailed and outlier rows often do
// best with the largest sub-block scale clipped. `best` measures 41 super-scales down
// to 60% and 12 values of dmin, all with floor and ceil: 0.03-0.2% less error than
// `default` at about twice its time.
constexpr Q2Search kQ2Default{17, 0.025f, 4, 6, 0.03f};
constexpr Q2Search kQ2Best{41, 0.01f, 41, 12, 0.015f};
constexpr int kQ2MaxTrials = 64;
static_assert(kQ2Default.d_trials <= kQ2MaxTrials && kQ2Best.d_trials <= kQ2MaxTrials);

template <class Ops>
void quantize_block_q2_K(const float* raw, const float* importance, block_q2_K* y, Ops& ops, const Q2Search& search) {
  const Block blk(raw, importance);
  const float* x = blk.x;
  const float* w = blk.w;
  std::memset(y, 0, sizeof *y);

  Q2SubFit fits[kNumSub];
  float smax = 0.0f, mmax = 0.0f;
  ops.fit_q2(x, w, fits);
  for (int j = 0; j < kNumSub; ++j) {
    smax = std::max(smax, fits[j].scale);
    mmax = std::max(mmax, fits[j].min);
  }
  if (smax == 0.0f && mmax == 0.0f) return;  // nothing to fit: all-zero bytes decode to zeros

  uint8_t sc[kNumSub], mn[kNumSub], sc_try[kNumSub], mn_try[kNumSub];
  float best = INFINITY;
  uint16_t best_d = 0, best_m = 0;
  auto measure = [&](uint16_t hd, uint16_t hm, int reach) {
    const float e = ops.eval_q2(x, w, fits, blk.unhalf(hd), blk.unhalf(hm), reach, sc_try, mn_try);
    if (e < best) {
      best = e;
      best_d = hd;
      best_m = hm;
      std::copy(sc_try, sc_try + kNumSub, sc);
      std::copy(mn_try, mn_try + kNumSub, mn);
    }
    return e;
  };
  auto consider = [&](float dc, float mc, int reach) {
    measure(blk.half(std::max(dc, 0.0f)), blk.half(std::max(mc, 0.0f)), reach);
  };
  // Coordinate search: d with dmin at its natural value, then dmin for the best d.
  const float d0 = smax / 15.0f, m0 = mmax / 15.0f;
  {
    const uint16_t hm = blk.half(m0);
    const bool all = search.d_measured >= search.d_trials;
    uint16_t hd[kQ2MaxTrials];
    float err[kQ2MaxTrials];
    int n = 0;
    for (int k = 0; k < std::min(search.d_trials, kQ2MaxTrials); ++k) {
      const uint16_t h = blk.half(d0 * (1.0f - search.d_step * static_cast<float>(k)));
      if (n > 0 && hd[n - 1] == h) continue;  // the trials decrease: duplicates are adjacent
      hd[n] = h;
      err[n] = measure(h, hm, all ? 1 : 0);
      ++n;
    }
    if (!all) measure_lowest(hd, err, n, search.d_measured, [&](uint16_t h) { measure(h, hm, 1); });
  }
  for (int k = 1; k <= search.dmin_trials; ++k)
    measure(best_d, blk.half(std::max(m0 * (1.0f - search.dmin_step * static_cast<float>(k)), 0.0f)), 1);
  // From here on each sub-block looks wider around its float fit: first at the best
  // super-scales found, then at least-squares refits of (d, dmin) for the chosen
  // nibbles and codes.
  measure(best_d, best_m, 2);
  for (int iter = 0; iter < 2 && best > 0.0f; ++iter) {
    Q2RefitSums r;
    ops.refit_q2(x, w, blk.unhalf(best_d), blk.unhalf(best_m), sc, mn, r);
    // x ~= d*a - dmin*b
    const float D = r.aa * r.bb - r.ab * r.ab;
    float nd, nm;
    if (D > 0.0f) {
      nd = (r.xa * r.bb - r.xb * r.ab) / D;
      nm = (r.xa * r.ab - r.xb * r.aa) / D;
    } else if (r.aa > 0.0f) {
      nd = r.xa / r.aa;
      nm = 0.0f;
    } else {
      break;
    }
    const uint16_t bd = best_d, bm = best_m;
    consider(nd, nm, 2);
    if (best_d == bd && best_m == bm) break;
  }

  const float d = blk.unhalf(best_d), dm = blk.unhalf(best_m);
  y->d = best_d;
  y->dmin = best_m;
  uint8_t L[kBlock];
  for (int j = 0; j < kNumSub; ++j) {
    q2_error(x + kSub * j, w + kSub * j, d * sc[j], dm * mn[j], L + kSub * j);
    y->scales[j] = static_cast<uint8_t>(sc[j] | mn[j] << 4);
  }
  pack_low2(L, y->qs);
}

template <class Ops = ScalarLowOps>
void quantize_q3_K_row(const float* x, void* y, int64_t n, const float* importance) {
  Ops ops;
  auto* blocks = static_cast<block_q3_K*>(y);
  for (int64_t b = 0; b < n / kBlock; ++b)
    quantize_block_q3_K(x + b * kBlock, importance ? importance + b * kBlock : nullptr, blocks + b, ops);
}

template <class Ops = ScalarLowOps>
void quantize_q2_K_row(const float* x, void* y, int64_t n, const float* importance,
                       const Q2Search& search = kQ2Default) {
  Ops ops;
  auto* blocks = static_cast<block_q2_K*>(y);
  for (int64_t b = 0; b < n / kBlock; ++b)
    quantize_block_q2_K(x + b * kBlock, importance ? importance + b * kBlock : nullptr, blocks + b, ops, search);
}

}  // namespace
}  // namespace lowbit::kernels
