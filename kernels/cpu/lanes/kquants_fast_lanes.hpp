#pragma once
// The K-quants' `fast` quantizers (ggml's algorithm) with sub-blocks in SIMD lanes,
// byte-identical to kernels/cpu/reference/kquants_ggml.cpp. Lane k holds one
// sub-block (16 or 32 elements) and runs that sub-block's scalar float operations in
// the reference's order: serial sums over its elements, the same roundings, no FMA
// (the library builds with -ffp-contract=off), so no horizontal sum or reordering is
// involved. The per-super-block integer scales and the final re-rounding are the
// reference's own scalar code (kquants_ggml.hpp).
//
// The including file (one per ISA) defines, before including this header:
//   V, Vi     float and int32 GCC vector types of kLanes lanes
//   kLanes    8 (AVX2, NEON: two 128-bit registers per vector) or 16 (AVX-512)
//   vsqrt(V)  the lane-wise IEEE square root
//   LOWBIT_FAST_ISA  the ISA suffix of the exported row functions (avx2, avx512, neon)
// Vectors are filled from memory as a whole, never lane by lane (GCC 12's SLP
// vectorizer miscompiled lane stores into 8-lane vectors; search_lanes.hpp).
#include <cmath>
#include <cstring>

#include "common/kquant_scales.hpp"
#include "cpu/reference/kquants_ggml.hpp"
#include "lowbit/core/half.hpp"
#include "lists/declarations.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

static_assert(kLanes == 8 || kLanes == 16);

inline V splat(float v) {
  V r;
  for (int k = 0; k < kLanes; ++k) r[k] = v;
  return r;
}
// std::min / std::max semantics (the reference's): min(a, b) = b < a ? b : a,
// max(a, b) = a < b ? b : a.
inline V vmin(V a, V b) { return b < a ? b : a; }
inline V vmax(V a, V b) { return a < b ? b : a; }
inline V vabs(V a) { return reinterpret_cast<V>(reinterpret_cast<Vi>(a) & 0x7fffffff); }
// The reference's nearest() as a float, for |v| < 2^22.
inline V round_even(V v) { return (v + 12582912.0f) - 12582912.0f; }
// nearest_in(v, lo, hi): clamp as clampf does, then round.
inline V round_in(V v, float lo, float hi) { return round_even(vmin(vmax(v, splat(lo)), splat(hi))); }

// out[i][k] = base[n*k + i]: element i of sub-block k.
template <int N>
void load_lanes(const float* base, V* out) {
  float t[N][kLanes];
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < kLanes; ++k) t[i][k] = base[N * k + i];
  std::memcpy(out, t, sizeof t);
}

// fit_affine of the reference in every lane of G independent vectors. L receives the
// winning trial's codes. The vectors are interleaved operation by operation: a lane's
// trials form one long dependency chain (serial sums over its elements in the
// reference's order, and each trial rounds against the minimum the last winner set),
// so G chains in flight keep the pipelines fuller than one.
template <int N, int NMAX, int G>
void fit_affine_lanes(const V (*x)[N], const V (*w)[N], float rmin, float rdelta, int nstep, bool mad,
                      V* scale_out, V* min_out, V (*L)[N]) {
  constexpr float fn = NMAX;
  const V zero = splat(0.0f), vfn = splat(fn);
  V mn[G], mx[G], sum_w[G], sum_x[G];
  for (int g = 0; g < G; ++g) {
    mn[g] = mx[g] = x[g][0];
    sum_w[g] = w[g][0];
    sum_x[g] = sum_w[g] * x[g][0];
  }
  for (int i = 1; i < N; ++i)
    for (int g = 0; g < G; ++g) {
      mn[g] = x[g][i] < mn[g] ? x[g][i] : mn[g];
      mx[g] = x[g][i] > mx[g] ? x[g][i] : mx[g];
      sum_w[g] += w[g][i];
      sum_x[g] += w[g][i] * x[g][i];
    }
  Vi constant[G];
  V scale[G], best[G], l_iscale[G], l_min[G];  // l_*: the iscale and min each lane's codes were rounded with
  for (int g = 0; g < G; ++g) {
    mn[g] = mn[g] > zero ? zero : mn[g];
    constant[g] = mx[g] <= mn[g];
    l_iscale[g] = vfn / (mx[g] - mn[g]);
    l_min[g] = mn[g];
    scale[g] = splat(1.0f) / l_iscale[g];
    best[g] = zero;
  }
  for (int i = 0; i < N; ++i)
    for (int g = 0; g < G; ++g) {
      const V l = round_in(l_iscale[g] * (x[g][i] - mn[g]), 0.0f, fn);
      V diff = scale[g] * l + mn[g] - x[g][i];
      diff = mad ? vabs(diff) : diff * diff;
      best[g] += w[g][i] * diff;
    }
  V aux[G][N];
  for (int is = 0; is <= nstep; ++is) {
    V iscale[G], sum_l[G], sum_l2[G], sum_xl[G];
    for (int g = 0; g < G; ++g) {
      iscale[g] = splat(rmin + rdelta * static_cast<float>(is) + fn) / (mx[g] - mn[g]);
      sum_l[g] = sum_l2[g] = sum_xl[g] = zero;
    }
    for (int i = 0; i < N; ++i)
      for (int g = 0; g < G; ++g) {
        const V v = iscale[g] * (x[g][i] - mn[g]);
        const V l = v > zero ? round_even(vmin(v, vfn)) : zero;
        aux[g][i] = l;
        const V wl = w[g][i] * l;
        sum_l[g] += wl;
        sum_l2[g] += wl * l;
        sum_xl[g] += wl * x[g][i];
      }
    V D[G], this_scale[G], this_min[G], cur[G];
    for (int g = 0; g < G; ++g) {
      D[g] = sum_w[g] * sum_l2[g] - sum_l[g] * sum_l[g];
      this_scale[g] = (sum_w[g] * sum_xl[g] - sum_x[g] * sum_l[g]) / D[g];
      this_min[g] = (sum_l2[g] * sum_x[g] - sum_l[g] * sum_xl[g]) / D[g];
      const Vi pos = this_min[g] > zero;
      this_scale[g] = pos ? sum_xl[g] / sum_l2[g] : this_scale[g];
      this_min[g] = pos ? zero : this_min[g];
      cur[g] = zero;
    }
    for (int i = 0; i < N; ++i)
      for (int g = 0; g < G; ++g) {
        V diff = this_scale[g] * aux[g][i] + this_min[g] - x[g][i];
        diff = mad ? vabs(diff) : diff * diff;
        cur[g] += w[g][i] * diff;
      }
    for (int g = 0; g < G; ++g) {
      const Vi take = (D[g] > zero) & (cur[g] < best[g]);
      l_iscale[g] = take ? iscale[g] : l_iscale[g];
      l_min[g] = take ? mn[g] : l_min[g];
      best[g] = take ? cur[g] : best[g];
      scale[g] = take ? this_scale[g] : scale[g];
      mn[g] = take ? this_min[g] : mn[g];
    }
  }
  for (int g = 0; g < G; ++g) {
    for (int i = 0; i < N; ++i) {
      const V v = l_iscale[g] * (x[g][i] - l_min[g]);
      L[g][i] = constant[g] ? zero : (v > zero ? round_even(vmin(v, vfn)) : zero);
    }
    scale_out[g] = constant[g] ? zero : scale[g];
    min_out[g] = -mn[g];
  }
}

// Largest |x| per lane and the signed value that has it (first one on ties).
inline void signed_max(const V* x, int n, V& amax, V& max) {
  amax = splat(0.0f);
  max = splat(0.0f);
  for (int i = 0; i < n; ++i) {
    const V ax = vabs(x[i]);
    const Vi gt = ax > amax;
    amax = gt ? ax : amax;
    max = gt ? x[i] : max;
  }
}

// fit_symmetric(16, nmax, ...) of the reference in every lane; weights qw[i] or x^2.
// L receives the codes + nmax (0 in all-zero lanes).
inline void fit_symmetric_lanes(int nmax, const V* x, const V* qw, V& scale_out, V* L) {
  constexpr int N = 16;
  const auto fn = static_cast<float>(nmax);
  const V zero = splat(0.0f);
  V amax, max;
  signed_max(x, N, amax, max);
  const Vi is_zero = amax < splat(kGroupEps);
  V iscale = splat(-fn) / max;
  V sumlx = zero, suml2 = zero;
  for (int i = 0; i < N; ++i) {
    const V l = round_in(iscale * x[i], -fn, fn - 1);
    const V w = qw ? qw[i] : x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  V scale = suml2 != zero ? sumlx / suml2 : zero;
  V best = scale * sumlx;
  V l_iscale = iscale;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = splat(-(fn + 0.1f * static_cast<float>(is))) / max;
    sumlx = suml2 = zero;
    for (int i = 0; i < N; ++i) {
      const V l = round_in(iscale * x[i], -fn, fn - 1);
      const V w = qw ? qw[i] : x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    const Vi take = (suml2 > zero) & (sumlx * sumlx > best * suml2);
    scale = take ? sumlx / suml2 : scale;
    best = take ? scale * sumlx : best;
    l_iscale = take ? iscale : l_iscale;
  }
  for (int i = 0; i < N; ++i) L[i] = is_zero ? zero : round_in(l_iscale * x[i], -fn, fn - 1) + fn;
  scale_out = is_zero ? zero : scale;
}

// fit_q3 of the reference (Q3_K without importance) in every lane. L receives the
// codes + 4 (0 in all-zero lanes).
inline void fit_q3_lanes(const V* x, V& scale_out, V* L) {
  constexpr int N = 16;
  const V zero = splat(0.0f);
  V amax, max;
  signed_max(x, N, amax, max);
  const Vi is_zero = amax < splat(kGroupEps);
  const V iscale = splat(-4.0f) / max;
  V sumlx = zero, suml2 = zero;
  for (int i = 0; i < N; ++i) {
    L[i] = round_in(iscale * x[i], -4.0f, 3.0f);
    const V w = x[i] * x[i];
    sumlx += w * x[i] * L[i];
    suml2 += w * L[i] * L[i];
  }
  // A lane whose pass changes nothing is at a fixed point, so running the remaining
  // passes on it (instead of the reference's early exit) changes nothing either.
  for (int itry = 0; itry < 5; ++itry) {
    Vi changed = reinterpret_cast<Vi>(zero);
    for (int i = 0; i < N; ++i) {
      const V w = x[i] * x[i];
      V slx = sumlx - w * x[i] * L[i];
      const Vi ok = slx > zero;
      V sl2 = suml2 - w * L[i] * L[i];
      const V nl = round_in(x[i] * sl2 / slx, -4.0f, 3.0f);
      const Vi moved = ok & (nl != L[i]);
      slx += w * x[i] * nl;
      sl2 += w * nl * nl;
      const Vi take = moved & (sl2 > zero) & (slx * slx * suml2 > sumlx * sumlx * sl2);
      L[i] = take ? nl : L[i];
      sumlx = take ? slx : sumlx;
      suml2 = take ? sl2 : suml2;
      changed |= take;
    }
    bool any = false;
    for (int k = 0; k < kLanes; ++k) any |= changed[k] != 0;
    if (!any) break;
  }
  for (int i = 0; i < N; ++i) L[i] = is_zero ? zero : L[i] + 4.0f;
  scale_out = is_zero ? zero : (suml2 > zero ? sumlx / suml2 : zero);
}

// Lane sums of imp * sqrt(sigma2 + x^2) (ggml's imatrix weights) and their totals.
template <int N>
void blend_weights_lanes(const V* qw, const V* x, V sigma2, V* w, V& sw) {
  sw = splat(0.0f);
  for (int i = 0; i < N; ++i) {
    w[i] = qw[i] * vsqrt(sigma2 + x[i] * x[i]);
    sw += w[i];
  }
}

// Lane values back to one float per sub-block, and lane codes back to element order.
inline void store_lanes(V v, float* out, int first) {
  for (int k = 0; k < kLanes; ++k) out[first + k] = v[k];
}
template <int N, class T>
void store_codes(const V* L, T* out, int first_sub) {
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < kLanes; ++k) out[N * (first_sub + k) + i] = static_cast<T>(L[i][k]);
}

// ---------------------------------------------------------------- Q2_K, Q3_K, Q6_K
// Sixteen 16-element sub-blocks per super-block: kLanes at a time.

void q2_K_block_lanes(const float* x, const float* qw, block_q2_K& y) {
  float scales[16], mins[16], sw[16];
  uint8_t L[QK_K];
  const V sigma2 = splat(qw ? sum_squares(x, QK_K) / QK_K : 0.0f);
  for (int g = 0; g < 16; g += kLanes) {
    V xt[16], wt[16], qt[16], Lt[16], s, m, t;
    load_lanes<16>(x + 16 * g, xt);
    if (qw == nullptr) {
      for (int i = 0; i < 16; ++i) wt[i] = vabs(xt[i]);
      fit_affine_lanes<16, 3, 1>(&xt, &wt, -0.5f, 0.1f, 15, true, &s, &m, &Lt);
    } else {
      load_lanes<16>(qw + 16 * g, qt);
      blend_weights_lanes<16>(qt, xt, sigma2, wt, t);
      store_lanes(t, sw, g);
      fit_affine_lanes<16, 3, 1>(&xt, &wt, -0.9f, 0.05f, 36, false, &s, &m, &Lt);
    }
    store_lanes(s, scales, g);
    store_lanes(m, mins, g);
    store_codes<16>(Lt, L, g);
  }
  q2_K_finish(x, scales, mins, qw ? sw : nullptr, L, y);
}

void q3_K_block_lanes(const float* x, const float* qw, block_q3_K& y) {
  float scales[16], sw[16];
  int8_t L[QK_K];
  const V sigma2 = splat(qw ? 2 * sum_squares(x, QK_K) / QK_K : 0.0f);
  for (int g = 0; g < 16; g += kLanes) {
    V xt[16], wt[16], qt[16], Lt[16], s, t;
    load_lanes<16>(x + 16 * g, xt);
    if (qw == nullptr) {
      fit_q3_lanes(xt, s, Lt);
    } else {
      load_lanes<16>(qw + 16 * g, qt);
      blend_weights_lanes<16>(qt, xt, sigma2, wt, t);
      store_lanes(t, sw, g);
      fit_symmetric_lanes(4, xt, wt, s, Lt);
    }
    store_lanes(s, scales, g);
    store_codes<16>(Lt, L, g);
  }
  q3_K_finish(x, scales, qw ? sw : nullptr, L, y);
}

void q6_K_block_lanes(const float* x, const float* qw, block_q6_K& y) {
  float scales[16];
  int8_t L[QK_K];
  for (int g = 0; g < 16; g += kLanes) {
    V xt[16], qt[16], Lt[16], s;
    load_lanes<16>(x + 16 * g, xt);
    if (qw != nullptr) load_lanes<16>(qw + 16 * g, qt);
    fit_symmetric_lanes(32, xt, qw ? qt : nullptr, s, Lt);
    store_lanes(s, scales, g);
    store_codes<16>(Lt, L, g);
  }
  q6_K_finish(x, scales, L, y);
}

// ---------------------------------------------------------------- Q4_K, Q5_K
// Eight 32-element sub-blocks per super-block: kVectors vectors of kLanes / 8
// super-blocks each at a time (their trial chains interleaved), all with importance or
// all without (a group that mixes them runs each block alone, its lanes filled with
// copies).

// Measured on Zen 4 (bench_quantize, q4_K_fast, MB/s): AVX2 413 with one vector, 545
// with two, 526 with four; AVX-512 612, 635, 667. The trial loop is then bound by the
// float operations the reference's order requires, not by their latency.
constexpr int kVectors = kLanes == 16 ? 4 : 2;
constexpr int kGroup = kVectors * kLanes / 8;

template <int NMAX>
void affine_k_group(const float* const* xs, const float* const* qws, bool weighted, uint16_t* d_bits,
                    uint16_t* dmin_bits, uint8_t* const* packed, uint8_t* const* L) {
  alignas(64) float xb[kGroup * QK_K], qb[kGroup * QK_K];
  for (int g = 0; g < kGroup; ++g) {
    std::memcpy(xb + g * QK_K, xs[g], sizeof(float) * QK_K);
    if (weighted) std::memcpy(qb + g * QK_K, qws[g], sizeof(float) * QK_K);
  }
  V xt[kVectors][32], wt[kVectors][32], Lt[kVectors][32], vs[kVectors], vm[kVectors], sw[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    load_lanes<32>(xb + v * kLanes * 32, xt[v]);
    sw[v] = splat(0.0f);
  }
  if (!weighted) {
    for (int v = 0; v < kVectors; ++v) {
      V sum_x2 = splat(0.0f);
      for (int i = 0; i < 32; ++i) sum_x2 += xt[v][i] * xt[v][i];
      const V av_x = vsqrt(sum_x2 / 32.0f);
      for (int i = 0; i < 32; ++i) wt[v][i] = av_x + vabs(xt[v][i]);
    }
    fit_affine_lanes<32, NMAX, kVectors>(xt, wt, NMAX == 15 ? -1.0f : -0.5f, 0.1f, NMAX == 15 ? 20 : 15, false, vs,
                                         vm, Lt);
  } else {
    float s2[kGroup];
    for (int g = 0; g < kGroup; ++g) s2[g] = 2 * sum_squares(xs[g], QK_K) / QK_K;
    for (int v = 0; v < kVectors; ++v) {
      float lanes[kLanes];
      for (int k = 0; k < kLanes; ++k) lanes[k] = s2[v * (kLanes / 8) + k / 8];
      V sigma2, qt[32];
      std::memcpy(&sigma2, lanes, sizeof sigma2);
      load_lanes<32>(qb + v * kLanes * 32, qt);
      blend_weights_lanes<32>(qt, xt[v], sigma2, wt[v], sw[v]);
    }
    fit_affine_lanes<32, NMAX, kVectors>(xt, wt, -0.9f, 0.05f, 36, false, vs, vm, Lt);
  }
  float scales[kGroup * 8], mins[kGroup * 8], sums[kGroup * 8];
  uint8_t codes[kGroup * 8 * 32];
  for (int v = 0; v < kVectors; ++v) {
    store_lanes(vs[v], scales, v * kLanes);
    store_lanes(vm[v], mins, v * kLanes);
    store_lanes(sw[v], sums, v * kLanes);
    store_codes<32>(Lt[v], codes, v * kLanes);
  }
  for (int g = 0; g < kGroup; ++g) {
    affine_k_scales(scales + 8 * g, mins + 8 * g, weighted ? sums + 8 * g : nullptr, d_bits[g], dmin_bits[g],
                    packed[g]);
    const float d_all = fp16_to_fp32(d_bits[g]), m_all = fp16_to_fp32(dmin_bits[g]);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      get_scale_min_k4(j, packed[g], sc, m);
      const float d = d_all * static_cast<float>(sc);
      uint8_t* out = L[g] + 32 * j;
      if (d == 0.0f) {
        std::memcpy(out, codes + 32 * (8 * g + j), 32);
        continue;
      }
      const float dm = m_all * static_cast<float>(m);
      const float* xj = xs[g] + 32 * j;
      for (int i = 0; i < 32; ++i) out[i] = static_cast<uint8_t>(nearest_in((xj[i] + dm) / d, 0, NMAX));
    }
  }
}

// Runs block(i, x, qw) for the n / QK_K blocks of a row, kGroup at a time.
template <int NMAX, class Store>
void affine_k_row(const float* x, int64_t n, const float* importance, Store store) {
  const int64_t nb = n / QK_K;
  float wbuf[kGroup][QK_K];
  for (int64_t b0 = 0; b0 < nb; b0 += kGroup) {
    const float* xs[kGroup];
    const float* qws[kGroup];
    int64_t ids[kGroup];
    bool same = true;
    for (int g = 0; g < kGroup; ++g) {
      ids[g] = std::min(b0 + g, nb - 1);
      xs[g] = x + ids[g] * QK_K;
      qws[g] = block_weights(importance ? importance + ids[g] * QK_K : nullptr, wbuf[g]);
      same = same && ((qws[g] != nullptr) == (qws[0] != nullptr));
    }
    uint16_t d[kGroup], dmin[kGroup];
    uint8_t packed_buf[kGroup][12], codes_buf[kGroup][QK_K];
    uint8_t* packed[kGroup];
    uint8_t* codes[kGroup];
    for (int g = 0; g < kGroup; ++g) {
      packed[g] = packed_buf[g];
      codes[g] = codes_buf[g];
    }
    if (same) {
      affine_k_group<NMAX>(xs, qws, qws[0] != nullptr, d, dmin, packed, codes);
    } else {
      for (int g = 0; g < kGroup; ++g) {
        const float* xg[kGroup];
        const float* qg[kGroup];
        uint16_t dg[kGroup], mg[kGroup];
        uint8_t* pg[kGroup];
        uint8_t* cg[kGroup];
        uint8_t spare_p[kGroup][12], spare_c[kGroup][QK_K];
        for (int h = 0; h < kGroup; ++h) {
          xg[h] = xs[g];
          qg[h] = qws[g];
          pg[h] = h == 0 ? packed[g] : spare_p[h];
          cg[h] = h == 0 ? codes[g] : spare_c[h];
        }
        affine_k_group<NMAX>(xg, qg, qws[g] != nullptr, dg, mg, pg, cg);
        d[g] = dg[0];
        dmin[g] = mg[0];
      }
    }
    for (int g = 0; g < kGroup && b0 + g < nb; ++g) store(b0 + g, d[g], dmin[g], packed[g], codes[g]);
  }
}

void q4_K_row_lanes(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_q4_K*>(y);
  affine_k_row<15>(x, n, importance, [&](int64_t i, uint16_t d, uint16_t dmin, const uint8_t* packed,
                                         const uint8_t* L) {
    block_q4_K& b = out[i];
    b.d = d;
    b.dmin = dmin;
    std::memcpy(b.scales, packed, 12);
    pack_q4_K_codes(L, b.qs);
  });
}

void q5_K_row_lanes(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_q5_K*>(y);
  affine_k_row<31>(x, n, importance, [&](int64_t i, uint16_t d, uint16_t dmin, const uint8_t* packed,
                                         const uint8_t* L) {
    block_q5_K& b = out[i];
    b.d = d;
    b.dmin = dmin;
    std::memcpy(b.scales, packed, 12);
    pack_q5_K_codes(L, b.qs, b.qh);
  });
}

template <class Block, class Fn>
void row_by_block(const float* x, void* y, int64_t n, const float* importance, Fn block) {
  auto* out = static_cast<Block*>(y);
  float w[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i)
    block(x + i * QK_K, block_weights(importance ? importance + i * QK_K : nullptr, w), out[i]);
}

}  // namespace
}  // namespace lowbit::kernels

// The exported `fast` row functions of the K-quants, written once for every ISA.
#define LOWBIT_FAST_NAME_(name, isa) name##__##isa
#define LOWBIT_FAST_NAME(name, isa) LOWBIT_FAST_NAME_(name, isa)
#define LOWBIT_FAST_FN(name) \
  void LOWBIT_FAST_NAME(name, LOWBIT_FAST_ISA)(const float* x, void* y, int64_t n, const float* importance)

namespace lowbit::kernels {

LOWBIT_FAST_FN(quantize_row_q2_K_fast) { row_by_block<block_q2_K>(x, y, n, importance, q2_K_block_lanes); }
LOWBIT_FAST_FN(quantize_row_q3_K_fast) { row_by_block<block_q3_K>(x, y, n, importance, q3_K_block_lanes); }
LOWBIT_FAST_FN(quantize_row_q4_K_fast) { q4_K_row_lanes(x, y, n, importance); }
LOWBIT_FAST_FN(quantize_row_q5_K_fast) { q5_K_row_lanes(x, y, n, importance); }
LOWBIT_FAST_FN(quantize_row_q6_K_fast) { row_by_block<block_q6_K>(x, y, n, importance, q6_K_block_lanes); }

}  // namespace lowbit::kernels

#undef LOWBIT_FAST_FN
#undef LOWBIT_FAST_NAME
#undef LOWBIT_FAST_NAME_
