#pragma once
// The standard-effort searches of Q4_K, Q5_K and Q6_K (and the helpers every K-quant
// search shares), included by the scalar reference (kquants.cpp) and by the SIMD variants
// (kernels/cpu/lanes/kquants_search_lanes.hpp), which replace its per-sub-block stages
// with lane versions and reuse the rest. Internal linkage: each including file gets
// its own copy, compiled with its own flags; the library builds with
// -ffp-contract=off, so every copy rounds exactly as the reference does.
//
// How the search works (what the bytes depend on):
// Quantization minimises the true objective, sum_i w_i (x_i - decoded_i)^2, where
// w is the importance vector (llama.cpp imatrix) or 1. Q4_K, Q5_K and Q6_K work in
// three stages:
//  1. each sub-block gets a continuous fit (scale, and min for Q4_K/Q5_K) from a
//     few trial grids, each refitted by weighted least squares and the best then
//     polished by Lloyd iterations (re-round the codes, refit);
//  2. the super-block scales (fp16) and the integer sub-block scales are chosen by
//     alternating least squares on a quadratic model of each sub-block's error,
//     from several starting points; every candidate is then scored by its real
//     error after all rounding, with each element's code re-picked for the
//     decoded scales;
//  3. a local search moves each sub-block's integer scale (and min) by +-1 while
//     the real error drops, then the super-block scales are refitted by least
//     squares with the codes fixed, and the local search runs again if that won.
// Q8_K (fp32 scale, one per 256) runs Lloyd steps from a few scales around
// ggml's absmax scale and keeps the best.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>

#include "common/kquant_codes.hpp"
#include "common/kquant_scales.hpp"
#include "cpu/reference/scalar_math.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// Sums v[0..N) (N a power of two) by halving: a fixed order that vectorises,
// where a running float sum would be a serial dependency chain. Clobbers v. T is
// float, or a GCC vector of floats whose lanes each hold one sub-block's sum.
template <int N, class T>
T tree_sum(T* v) {
  for (int h = N / 2; h >= 1; h /= 2)
    for (int i = 0; i < h; ++i) v[i] += v[i + h];
  return v[0];
}

// Stores a non-negative float scale as fp16 and returns the value it decodes to.
float to_half(float v, uint16_t& bits) {
  bits = fp32_to_fp16(std::min(v, kHalfMax));
  return fp16_to_fp32(bits);
}

// Blocks (or sub-blocks) whose magnitude is below this are treated as zeros: the
// reciprocal of any scale derived from them would overflow a float. (The fp16
// scales of Q4_K..Q6_K flush anything below about 1e-8 to zero anyway.)
constexpr float kTiny = 1e-36f;

// Per-element weights of one super-block's objective: the importance normalised to
// mean 1 (the objective is invariant to that), plus a negligible floor so that
// sub-blocks whose importance is all zero still have a well-posed fit. A
// super-block with no importance at all falls back to plain squared error.
template <int N>
void normalized_importance(const float* importance, float* w) {
  if (importance != nullptr) {
    double sum = 0;
    for (int i = 0; i < N; ++i) sum += importance[i];
    if (sum > 0) {
      const double inv_mean = N / sum;
      if (inv_mean <= std::numeric_limits<float>::max()) {
        const auto inv = static_cast<float>(inv_mean);
        for (int i = 0; i < N; ++i) w[i] = importance[i] * inv + 1e-6f;
      } else {  // subnormal importance: 1/mean overflows float, so scale in double
        for (int i = 0; i < N; ++i) w[i] = static_cast<float>(importance[i] * inv_mean) + 1e-6f;
      }
      return;
    }
  }
  for (int i = 0; i < N; ++i) w[i] = 1.0f;
}

// ---------------------------------------------------------------- Q4_K / Q5_K
// Sub-block j decodes as (d*sc_j)*q - (dmin*m_j), q in [0, NMAX], sc_j, m_j in [0, 63].

constexpr int kAffSub = 32;                 // elements per sub-block
constexpr int kAffSubs = QK_K / kAffSub;    // sub-blocks per super-block
constexpr int kScaleMax = 63;               // 6-bit sub-block scales and mins

// Codes nearest to x for the decoded grid ds*q - dm, and their weighted squared
// error. Per element the nearest code is optimal, whatever the weights.
template <int NMAX>
float affine_codes(const float* x, const float* w, float ds, float dm, uint8_t* L) {
  float e[kAffSub];
  if (ds == 0.0f) {
    for (int i = 0; i < kAffSub; ++i) {
      L[i] = 0;
      const float r = -dm - x[i];
      e[i] = w[i] * r * r;
    }
    return tree_sum<kAffSub>(e);
  }
  const float inv = 1.0f / ds;
  for (int i = 0; i < kAffSub; ++i) {
    const float q = clampf(round_even((x[i] + dm) * inv), 0.0f, static_cast<float>(NMAX));
    L[i] = static_cast<uint8_t>(q);
    const float r = ds * q - dm - x[i];
    e[i] = w[i] * r * r;
  }
  return tree_sum<kAffSub>(e);
}

// A sub-block's continuous fit x ≈ s*L - m (s, m >= 0) and the curvature of its
// error around that point: moving (s, -m) by (es, em) adds a*es^2 + 2b*es*em + c*em^2
// while the codes stay put.
struct AffineFit {
  float s = 0, m = 0;
  float a = 0, b = 0, c = 0;
  float b_over_c = 0;  // b/c, the offset shift that best absorbs a unit scale error
};

// Weighted sums for fitting x ≈ s*L + mn.
struct AffineSums {
  double sw, swx, swx2;  // of the data
  double sl, sl2, sxl;   // of the codes
};

// Weighted least squares x ≈ s*L + mn with the constraint mn <= 0 (dmin >= 0 makes
// every sub-block offset non-positive). Returns the error of the solution.
double solve_affine(const AffineSums& t, double& s, double& mn) {
  const double det = t.sw * t.sl2 - t.sl * t.sl;
  s = 0;
  mn = 0;
  if (det > 0) {
    s = (t.sw * t.sxl - t.swx * t.sl) / det;
    mn = (t.sl2 * t.swx - t.sl * t.sxl) / det;
  }
  if (det <= 0 || mn > 0) {  // the best offset would be positive: pin it to zero
    mn = 0;
    s = t.sl2 > 0 ? t.sxl / t.sl2 : 0;
  }
  if (s < 0) {  // codes anti-correlated with the data: only a constant remains
    s = 0;
    mn = t.sw > 0 ? std::min(0.0, t.swx / t.sw) : 0;
  }
  return t.swx2 - 2 * s * t.sxl - 2 * mn * t.swx + s * s * t.sl2 + 2 * s * mn * t.sl + mn * mn * t.sw;
}

// Sums of the codes q (as floats) that the least-squares fit needs.
void code_sums(const float* x, const float* w, const float* q, AffineSums& t) {
  float wl[kAffSub], wl2[kAffSub], wxl[kAffSub];
  for (int i = 0; i < kAffSub; ++i) {
    wl[i] = w[i] * q[i];
    wl2[i] = wl[i] * q[i];
    wxl[i] = wl[i] * x[i];
  }
  t.sl = tree_sum<kAffSub>(wl);
  t.sl2 = tree_sum<kAffSub>(wl2);
  t.sxl = tree_sum<kAffSub>(wxl);
}

template <int NMAX>
AffineFit fit_affine(const float* x, const float* w) {
  float xmin = x[0], xmax = x[0];
  float tw[kAffSub], twx[kAffSub], twx2[kAffSub];
  for (int i = 0; i < kAffSub; ++i) {
    xmin = std::min(xmin, x[i]);
    xmax = std::max(xmax, x[i]);
    tw[i] = w[i];
    twx[i] = w[i] * x[i];
    twx2[i] = twx[i] * x[i];
  }
  AffineSums t{};
  t.sw = tree_sum<kAffSub>(tw);
  t.swx = tree_sum<kAffSub>(twx);
  t.swx2 = tree_sum<kAffSub>(twx2);

  AffineFit fit;
  const float lo = std::min(xmin, 0.0f);
  if (!(xmax - lo > kTiny)) {  // constant sub-block at or below zero: the offset alone
    fit.m = -lo;
    fit.c = static_cast<float>(t.sw);
    return fit;
  }

  // Trial grids: the lower anchor at lo or raised by 0.3 or 0.6 of a step (clipping
  // the smallest values), [anchor, xmax] stretched over NMAX-0.9 .. NMAX+0.9 steps
  // (NMAX-1.8 .. NMAX+1.8 for 5 bits, whose optimum strays further).
  // Sweeping the anchor as well as the scale finds fits that a scale-only sweep
  // misses; every trial is scored after its least-squares refit.
  float q[kAffSub];
  double best_err = INFINITY, best_s = 0, best_mn = 0;
  AffineSums best_t = t;
  const float range = xmax - lo;
  constexpr float kStep = NMAX > 15 ? 0.6f : 0.3f;
  for (int a = 0; a < 3; ++a) {
    const float anchor = lo + 0.3f * static_cast<float>(a) * range / static_cast<float>(NMAX);
    for (int k = -3; k <= 3; ++k) {
      const float iscale = (static_cast<float>(NMAX) + kStep * static_cast<float>(k)) / range;
      for (int i = 0; i < kAffSub; ++i)
        q[i] = clampf(round_even((x[i] - anchor) * iscale), 0.0f, static_cast<float>(NMAX));
      code_sums(x, w, q, t);
      double s, mn;
      const double err = solve_affine(t, s, mn);
      if (err < best_err) {
        best_err = err;
        best_s = s;
        best_mn = mn;
        best_t = t;
      }
    }
  }
  // Lloyd iterations: re-round every element for the fitted grid, refit.
  for (int it = 0; it < 4 && best_s > 0; ++it) {
    const float s = static_cast<float>(best_s), mn = static_cast<float>(best_mn);
    const float inv = 1.0f / s;
    for (int i = 0; i < kAffSub; ++i)
      q[i] = clampf(round_even((x[i] - mn) * inv), 0.0f, static_cast<float>(NMAX));
    code_sums(x, w, q, t);
    double ns, nmn;
    const double err = solve_affine(t, ns, nmn);
    if (!(err < best_err * (1 - 1e-9))) break;
    best_err = err;
    best_s = ns;
    best_mn = nmn;
    best_t = t;
  }
  fit.s = static_cast<float>(best_s);
  fit.m = static_cast<float>(-best_mn);
  fit.a = static_cast<float>(best_t.sl2);
  fit.b = static_cast<float>(best_t.sl);
  fit.c = static_cast<float>(best_t.sw);
  fit.b_over_c = best_t.sw > 0 ? static_cast<float>(best_t.sl / best_t.sw) : 0.0f;
  return fit;
}

// One complete choice of a super-block's scales, codes and its real error.
struct AffineChoice {
  uint16_t d_bits = 0, dmin_bits = 0;
  float d = 0, dmin = 0;
  uint8_t sc[kAffSubs] = {}, mm[kAffSubs] = {};
  float err[kAffSubs] = {};
  uint8_t L[QK_K] = {};
  double total() const {
    double t = 0;
    for (float e : err) t += e;
    return t;
  }
};

// For decoded d, dmin, the integer scale and min of every sub-block that the
// quadratic error model prefers. For each rounding of the scale the min is rounded
// around the offset that best absorbs that scale error (em = -b*es/c), not around
// the unperturbed one: a clipped or coarsely rounded scale is partly made good by
// shifting the offset.
void pick_integers(const AffineFit* f, float d, float dmin, uint8_t* sc, uint8_t* mm) {
  const float inv_d = d > 0 ? 1.0f / d : 0.0f, inv_dmin = dmin > 0 ? 1.0f / dmin : 0.0f;
  constexpr float kMax = static_cast<float>(kScaleMax);
  for (int j = 0; j < kAffSubs; ++j) {
    // Floor and ceil (truncation floors: the targets are non-negative), clamped to
    // [0, 63]; duplicates at the clamp are harmless. Written without early exits so
    // the comparisons become conditional moves.
    float best = INFINITY;
    int best_s = 0, best_m = 0;
    const int s_lo = static_cast<int>(clampf(f[j].s * inv_d, 0.0f, kMax));
    for (int s = s_lo; s <= s_lo + 1; ++s) {
      const int sv = std::min(s, kScaleMax);
      const float es = d * static_cast<float>(sv) - f[j].s;
      const int m_lo = static_cast<int>(clampf((f[j].m + f[j].b_over_c * es) * inv_dmin, 0.0f, kMax));
      for (int m = m_lo; m <= m_lo + 1; ++m) {
        const int mv = std::min(m, kScaleMax);
        const float em = f[j].m - dmin * static_cast<float>(mv);
        const float q = f[j].a * es * es + 2 * f[j].b * es * em + f[j].c * em * em;
        const bool better = q < best;
        best = better ? q : best;
        best_s = better ? sv : best_s;
        best_m = better ? mv : best_m;
      }
    }
    sc[j] = static_cast<uint8_t>(best_s);
    mm[j] = static_cast<uint8_t>(best_m);
  }
}

// Least-squares d, dmin for fixed integers under the quadratic model.
void fit_super_scales(const AffineFit* f, const uint8_t* sc, const uint8_t* mm, float& d, float& dmin) {
  double P = 0, Q = 0, R = 0, e1 = 0, e2 = 0;
  for (int j = 0; j < kAffSubs; ++j) {
    const double s = sc[j], m = mm[j];
    P += f[j].a * s * s;
    Q += f[j].b * s * m;
    R += f[j].c * m * m;
    e1 += f[j].a * s * f[j].s - f[j].b * s * f[j].m;
    e2 += f[j].b * m * f[j].s - f[j].c * m * f[j].m;
  }
  const double det = Q * Q - P * R;
  double u = d, v = dmin;
  if (R <= 0) {
    if (P > 0) u = e1 / P;
  } else if (P <= 0) {
    v = -e2 / R;
  } else if (det < 0) {
    u = (Q * e2 - e1 * R) / det;
    v = (P * e2 - Q * e1) / det;
  }
  if (u >= 0 && v >= 0) {
    d = static_cast<float>(u);
    dmin = static_cast<float>(v);
  }
}

template <int NMAX>
void score_choice(const float* x, const float* w, AffineChoice& c) {
  for (int j = 0; j < kAffSubs; ++j) {
    const float ds = c.d * static_cast<float>(c.sc[j]);
    const float dm = c.dmin * static_cast<float>(c.mm[j]);
    c.err[j] = affine_codes<NMAX>(x + kAffSub * j, w + kAffSub * j, ds, dm, c.L + kAffSub * j);
  }
}

// Moves each sub-block's integer scale and min by +-1 while its real error drops.
template <int NMAX>
void local_search(const float* x, const float* w, AffineChoice& c) {
  uint8_t L[kAffSub];
  for (int j = 0; j < kAffSubs; ++j) {
    const float* xj = x + kAffSub * j;
    const float* wj = w + kAffSub * j;
    for (int round = 0; round < 3; ++round) {
      const int s0 = c.sc[j], m0 = c.mm[j];
      bool moved = false;
      for (int ds = -1; ds <= 1; ++ds)
        for (int dm = -1; dm <= 1; ++dm) {
          const int s = s0 + ds, m = m0 + dm;
          if ((ds == 0 && dm == 0) || s < 0 || s > kScaleMax || m < 0 || m > kScaleMax) continue;
          const float e = affine_codes<NMAX>(xj, wj, c.d * static_cast<float>(s), c.dmin * static_cast<float>(m), L);
          if (e < c.err[j]) {
            c.err[j] = e;
            c.sc[j] = static_cast<uint8_t>(s);
            c.mm[j] = static_cast<uint8_t>(m);
            std::memcpy(c.L + kAffSub * j, L, kAffSub);
            moved = true;
          }
        }
      if (!moved) break;
    }
  }
}

// Weighted least squares for d and dmin with every code and integer fixed
// (x ≈ d*(sc*q) - dmin*m), kept if the real error after re-rounding drops.
template <int NMAX, class Ops>
bool refit_super_scales(const float* x, const float* w, AffineChoice& c, Ops& ops) {
  double aa = 0, ab = 0, bb = 0, ax = 0, bx = 0;
  for (int j = 0; j < kAffSubs; ++j)
    for (int i = 0; i < kAffSub; ++i) {
      const double wi = w[kAffSub * j + i], xi = x[kAffSub * j + i];
      const double a = static_cast<double>(c.sc[j]) * c.L[kAffSub * j + i], b = c.mm[j];
      aa += wi * a * a;
      ab += wi * a * b;
      bb += wi * b * b;
      ax += wi * a * xi;
      bx += wi * b * xi;
    }
  // Normal equations of min sum w (d*a - v*b - x)^2: [aa -ab; ab -bb] [d; v] = [ax; bx].
  // Without any min in use (bb = 0) only d is free.
  const double det = ab * ab - aa * bb;
  if (!(aa > 0)) return false;
  const double d = bb > 0 ? (ab * bx - ax * bb) / det : ax / aa;
  const double v = bb > 0 ? (aa * bx - ab * ax) / det : c.dmin;
  if (!(d >= 0 && v >= 0)) return false;
  AffineChoice n = c;
  n.d = to_half(static_cast<float>(d), n.d_bits);
  n.dmin = to_half(static_cast<float>(v), n.dmin_bits);
  ops.score(x, w, n);
  if (!(n.total() < c.total())) return false;
  c = n;
  return true;
}

// The per-sub-block stages of the search, the scalar way: one sub-block at a time.
// The SIMD variants (kquants_search_lanes.hpp) supply the same four operations with
// the sub-blocks in vector lanes and produce the same values, so that
// quantize_affine_block's control flow, and with it every byte, is shared.
template <int NMAX>
struct ScalarAffineOps {
  void fit(const float* x, const float* w, AffineFit* fits) {
    for (int j = 0; j < kAffSubs; ++j) fits[j] = fit_affine<NMAX>(x + kAffSub * j, w + kAffSub * j);
  }
  void pick(const AffineFit* f, float d, float dmin, uint8_t* sc, uint8_t* mm) { pick_integers(f, d, dmin, sc, mm); }
  void score(const float* x, const float* w, AffineChoice& c) { score_choice<NMAX>(x, w, c); }
  void local(const float* x, const float* w, AffineChoice& c) { local_search<NMAX>(x, w, c); }
  // The codes c.L for c's scales. The scalar stages keep them current as they go;
  // a variant that tracks only the errors recomputes them here, where they are read.
  void codes(const float*, const float*, AffineChoice&) {}
};

template <int NMAX, class Ops>
void quantize_affine_block(const float* x, const float* w, AffineChoice& best, Ops& ops) {
  AffineFit fits[kAffSubs];
  ops.fit(x, w, fits);
  float max_s = 0, max_m = 0;
  for (int j = 0; j < kAffSubs; ++j) {
    max_s = std::max(max_s, fits[j].s);
    max_m = std::max(max_m, fits[j].m);
  }

  // Stage 2: alternating least squares from several starting super-block scales
  // around max_s/63. Different starts round the sub-block scales differently; the
  // real error picks the winner. The last start puts the median sub-block near
  // scale 32: it rescues blocks where one or two sub-blocks drifted to a large,
  // nearly arbitrary scale (data far from zero, whose fits are ill-conditioned),
  // which would otherwise leave every other sub-block a coarse scale.
  float sorted[kAffSubs];
  for (int j = 0; j < kAffSubs; ++j) sorted[j] = fits[j].s;
  std::sort(sorted, sorted + kAffSubs);
  const float median_s = 0.5f * (sorted[kAffSubs / 2 - 1] + sorted[kAffSubs / 2]);
  static constexpr float kStarts[] = {1.06f, 1.04f, 1.02f, 1.0f, 0.97f, 0.94f};
  AffineChoice cand;
  for (size_t k = 0; k <= std::size(kStarts); ++k) {
    float d = k < std::size(kStarts) ? max_s / kScaleMax * kStarts[k] : median_s / 32;
    float dmin = max_m / kScaleMax;
    cand.d = to_half(d, cand.d_bits);
    cand.dmin = to_half(dmin, cand.dmin_bits);
    for (int it = 0; it < 4; ++it) {
      ops.pick(fits, cand.d, cand.dmin, cand.sc, cand.mm);
      fit_super_scales(fits, cand.sc, cand.mm, d, dmin);
      uint16_t db, mb;
      const float nd = to_half(d, db), nm = to_half(dmin, mb);
      if (db == cand.d_bits && mb == cand.dmin_bits) break;
      cand.d = nd, cand.d_bits = db, cand.dmin = nm, cand.dmin_bits = mb;
    }
    ops.pick(fits, cand.d, cand.dmin, cand.sc, cand.mm);
    ops.score(x, w, cand);
    if (k == 0 || cand.total() < best.total()) best = cand;
  }

  // Stage 3: local search on the integers, then one exact least-squares refit of
  // d and dmin for the chosen codes, and the local search again if that helped.
  ops.local(x, w, best);
  ops.codes(x, w, best);
  if (refit_super_scales<NMAX>(x, w, best, ops)) {
    ops.local(x, w, best);
    ops.codes(x, w, best);
  }
}

// Ops is default-constructible and may keep per-block state between its calls.
template <int NMAX, class Ops = ScalarAffineOps<NMAX>>
void quantize_affine_row(const float* x, int64_t n, const float* importance,
                         void (*store)(const AffineChoice&, void*), void* y, size_t block_bytes) {
  float w[QK_K];
  AffineChoice choice;
  Ops ops;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    normalized_importance<QK_K>(importance ? importance + i * QK_K : nullptr, w);
    quantize_affine_block<NMAX>(x + i * QK_K, w, choice, ops);
    store(choice, static_cast<uint8_t*>(y) + i * block_bytes);
  }
}

void store_q4_K(const AffineChoice& c, void* dst) {
  block_q4_K& b = *static_cast<block_q4_K*>(dst);
  b.d = c.d_bits;
  b.dmin = c.dmin_bits;
  put_scale_min_k4(c.sc, c.mm, b.scales);
  pack_q4_K_codes(c.L, b.qs);
}

void store_q5_K(const AffineChoice& c, void* dst) {
  block_q5_K& b = *static_cast<block_q5_K*>(dst);
  b.d = c.d_bits;
  b.dmin = c.dmin_bits;
  put_scale_min_k4(c.sc, c.mm, b.scales);
  pack_q5_K_codes(c.L, b.qs, b.qh);
}
// ---------------------------------------------------------------- Q6_K
// Sub-block j (16 elements) decodes as (d*sc_j)*(q-32), q in [0, 63], sc_j int8.

constexpr int kSymSub = 16;
constexpr int kSymSubs = QK_K / kSymSub;

float to_half_signed(float v, uint16_t& bits) {
  bits = fp32_to_fp16(clampf(v, -kHalfMax, kHalfMax));
  return fp16_to_fp32(bits);
}

// Codes (stored q-32 in [-32, 31]) nearest to x on the grid ds*q and their error.
float sym_codes(const float* x, const float* w, float ds, int8_t* L) {
  float e[kSymSub];
  if (ds == 0.0f) {
    for (int i = 0; i < kSymSub; ++i) {
      L[i] = 0;
      e[i] = w[i] * x[i] * x[i];
    }
    return tree_sum<kSymSub>(e);
  }
  const float inv = 1.0f / ds;
  for (int i = 0; i < kSymSub; ++i) {
    const float q = clampf(round_even(x[i] * inv), -32.0f, 31.0f);
    L[i] = static_cast<int8_t>(q);
    const float r = ds * q - x[i];
    e[i] = w[i] * r * r;
  }
  return tree_sum<kSymSub>(e);
}

// A sub-block's continuous scale and a = sum w q^2 for its codes: the error grows by
// a*es^2 when the scale moves by es with the codes fixed.
struct SymFit {
  float s = 0, a = 0;
};

SymFit fit_sym(const float* x, const float* w) {
  float amax = 0, vmax = 0;
  float twx2[kSymSub];
  for (int i = 0; i < kSymSub; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      vmax = x[i];
    }
    twx2[i] = w[i] * x[i] * x[i];
  }
  SymFit fit;
  if (amax < kTiny) return fit;
  const double swx2 = tree_sum<kSymSub>(twx2);

  float q[kSymSub], wq2[kSymSub], wxq[kSymSub];
  double best_err = INFINITY, best_s = 0, best_a = 0;
  auto try_codes = [&](float iscale) {
    for (int i = 0; i < kSymSub; ++i) {
      q[i] = clampf(round_even(x[i] * iscale), -32.0f, 31.0f);
      wq2[i] = w[i] * q[i] * q[i];
      wxq[i] = w[i] * x[i] * q[i];
    }
    const double sq2 = tree_sum<kSymSub>(wq2), sxq = tree_sum<kSymSub>(wxq);
    if (!(sq2 > 0)) return false;
    const double s = sxq / sq2, err = swx2 - s * sxq;
    if (!(err < best_err * (1 - 1e-9))) return false;
    best_err = err, best_s = s, best_a = sq2;
    return true;
  };
  // Trial grids put the largest element on code -32 (the longer side) or +31, or
  // up to four codes beyond (clipping it, which with 16 elements often pays for a
  // finer grid), or up to eight codes inside: a coarse first rounding from which
  // the least-squares refit and the Lloyd steps reach optima that the tight grids
  // miss. Each trial is scored after its refit.
  for (int k = -8; k <= 4; ++k) {
    try_codes(-(32.0f + static_cast<float>(k)) / vmax);
    try_codes((31.0f + static_cast<float>(k)) / vmax);
  }
  for (int it = 0; it < 4 && best_s != 0; ++it)
    if (!try_codes(static_cast<float>(1.0 / best_s))) break;
  fit.s = static_cast<float>(best_s);
  fit.a = static_cast<float>(best_a);
  return fit;
}

struct SymChoice {
  uint16_t d_bits = 0;
  float d = 0;
  int8_t sc[kSymSubs] = {};
  float err[kSymSubs] = {};
  int8_t L[QK_K] = {};
  double total() const {
    double t = 0;
    for (float e : err) t += e;
    return t;
  }
};

void score_sym(const float* x, const float* w, SymChoice& c) {
  for (int j = 0; j < kSymSubs; ++j)
    c.err[j] = sym_codes(x + kSymSub * j, w + kSymSub * j, c.d * static_cast<float>(c.sc[j]),
                         c.L + kSymSub * j);
}

// Moves each sub-block's integer scale by +-1 while its real error drops.
void local_search_sym(const float* x, const float* w, SymChoice& c) {
  int8_t L[kSymSub];
  for (int j = 0; j < kSymSubs; ++j) {
    for (int round = 0; round < 3; ++round) {
      const int s0 = c.sc[j];
      bool moved = false;
      for (int s : {s0 - 1, s0 + 1}) {
        if (s < -128 || s > 127) continue;
        const float e = sym_codes(x + kSymSub * j, w + kSymSub * j, c.d * static_cast<float>(s), L);
        if (e < c.err[j]) {
          c.err[j] = e;
          c.sc[j] = static_cast<int8_t>(s);
          std::memcpy(c.L + kSymSub * j, L, kSymSub);
          moved = true;
        }
      }
      if (!moved) break;
    }
  }
}

// Weighted least-squares d with every code and integer scale fixed (x ≈ d*(sc*q)),
// kept if the real error after re-rounding drops.
template <class Ops>
bool refit_sym_scale(const float* x, const float* w, SymChoice& c, Ops& ops) {
  double aa = 0, ax = 0;
  for (int i = 0; i < QK_K; ++i) {
    const double a = static_cast<double>(c.sc[i / kSymSub]) * c.L[i];
    aa += w[i] * a * a;
    ax += w[i] * a * x[i];
  }
  if (!(aa > 0)) return false;
  SymChoice n = c;
  n.d = to_half_signed(static_cast<float>(ax / aa), n.d_bits);
  if (n.d == 0) return false;
  ops.score(x, w, n);
  if (!(n.total() < c.total())) return false;
  c = n;
  return true;
}

// The per-sub-block stages of the Q6_K search, the scalar way (ScalarAffineOps says
// why they are a policy).
struct ScalarSymOps {
  void fit(const float* x, const float* w, SymFit* fits) {
    for (int j = 0; j < kSymSubs; ++j) fits[j] = fit_sym(x + kSymSub * j, w + kSymSub * j);
  }
  void score(const float* x, const float* w, SymChoice& c) { score_sym(x, w, c); }
  void local(const float* x, const float* w, SymChoice& c) { local_search_sym(x, w, c); }
  void codes(const float*, const float*, SymChoice&) {}
};

template <class Ops>
void quantize_q6_K_block(const float* x, const float* w, SymChoice& best, Ops& ops) {
  SymFit fits[kSymSubs];
  ops.fit(x, w, fits);
  float smax = 0;
  for (int j = 0; j < kSymSubs; ++j)
    if (std::fabs(fits[j].s) > std::fabs(smax)) smax = fits[j].s;
  // An all-zero block is stored as all-zero bytes (q = 0, d = 0), like ggml's.
  best = SymChoice{};
  if (smax == 0) {
    std::fill(best.L, best.L + QK_K, static_cast<int8_t>(-32));
    return;
  }

  // The widest sub-block on scale -128 or +127, or a little inside, then
  // alternating least squares: integers by rounding, d = sum a sc s / sum a sc^2.
  static constexpr float kStarts[] = {-1.0f / 128, 1.0f / 127, -0.97f / 128, 0.97f / 127};
  SymChoice cand;
  bool have = false;
  for (float start : kStarts) {
    cand.d = to_half_signed(smax * start, cand.d_bits);
    if (cand.d == 0) continue;  // scales below fp16 resolution: keep the zero block
    for (int it = 0; it < 4; ++it) {
      double num = 0, den = 0;
      for (int j = 0; j < kSymSubs; ++j) {
        const float v = clampf(round_even(fits[j].s / cand.d), -128.0f, 127.0f);
        cand.sc[j] = static_cast<int8_t>(v);
        num += static_cast<double>(fits[j].a) * v * fits[j].s;
        den += static_cast<double>(fits[j].a) * v * v;
      }
      if (!(den > 0)) break;
      uint16_t db;
      const float nd = to_half_signed(static_cast<float>(num / den), db);
      if (db == cand.d_bits || nd == 0) break;
      cand.d = nd, cand.d_bits = db;
    }
    for (int j = 0; j < kSymSubs; ++j)
      cand.sc[j] = static_cast<int8_t>(clampf(round_even(fits[j].s / cand.d), -128.0f, 127.0f));
    ops.score(x, w, cand);
    if (!have || cand.total() < best.total()) best = cand;
    have = true;
  }
  if (!have) {
    std::fill(best.L, best.L + QK_K, static_cast<int8_t>(-32));
    return;
  }

  // Local search on the integer scales by real error, then one exact
  // least-squares refit of d for the chosen codes, and the search again if that
  // helped.
  ops.local(x, w, best);
  ops.codes(x, w, best);
  if (refit_sym_scale(x, w, best, ops)) {
    ops.local(x, w, best);
    ops.codes(x, w, best);
  }
}

void store_q6_K(const SymChoice& c, block_q6_K& b) {
  b.d = c.d_bits;
  std::memcpy(b.scales, c.sc, sizeof b.scales);
  // Per 128 elements: ql[0..32) low nibbles hold elements 0..31, high nibbles
  // 64..95; ql[32..64) hold 32..63 and 96..127; qh[l] holds the top two bits of
  // elements l, l+32, l+64, l+96 in bits 0-1, 2-3, 4-5, 6-7.
  for (int j = 0; j < QK_K; j += 128) {
    uint8_t* ql = b.ql + j / 2;
    uint8_t* qh = b.qh + j / 4;
    for (int l = 0; l < 32; ++l) {
      uint8_t q[4];
      for (int k = 0; k < 4; ++k) q[k] = static_cast<uint8_t>(c.L[j + l + 32 * k] + 32);
      ql[l] = static_cast<uint8_t>((q[0] & 0xF) | ((q[2] & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q[1] & 0xF) | ((q[3] & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6));
    }
  }
}

template <class Ops = ScalarSymOps>
void quantize_q6_K_row(const float* x, void* y, int64_t n, const float* importance) {
  float w[QK_K];
  SymChoice choice;
  Ops ops;
  auto* out = static_cast<block_q6_K*>(y);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    normalized_importance<QK_K>(importance ? importance + i * QK_K : nullptr, w);
    quantize_q6_K_block(x + i * QK_K, w, choice, ops);
    store_q6_K(choice, out[i]);
  }
}

}  // namespace
}  // namespace lowbit::kernels
