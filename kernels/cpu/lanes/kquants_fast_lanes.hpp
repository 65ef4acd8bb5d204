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

// fit_affine of the reference in every lane. L receives the winning trial's codes.
template <int N, int NMAX>
void fit_affine_lanes(const V* x, const V* w, float rmin, float rdelta, int nstep, bool mad, V& scale_out,
                      V& min_out, V* L) {
  constexpr float fn = NMAX;
  const V zero = splat(0.0f), vfn = splat(fn);
  V mn = x[0], mx = x[0], sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < N; ++i) {
    mn = x[i] < mn ? x[i] : mn;
    mx = x[i] > mx ? x[i] : mx;
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  mn = mn > zero ? zero : mn;
  const Vi constant = mx <= mn;
  V iscale = vfn / (mx - mn);
  V scale = splat(1.0f) / iscale;
  V best = zero;
  for (int i = 0; i < N; ++i) {
    const V l = round_in(iscale * (x[i] - mn), 0.0f, fn);
    V diff = scale * l + mn - x[i];
    diff = mad ? vabs(diff) : diff * diff;
    best += w[i] * diff;
  }
  // The iscale and min each lane's current codes were rounded with.
  V l_iscale = iscale, l_min = mn;
  V aux[N];
  for (int is = 0; is <= nstep; ++is) {
    iscale = splat(rmin + rdelta * static_cast<float>(is) + fn) / (mx - mn);
    V sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < N; ++i) {
      const V v = iscale * (x[i] - mn);
      const V l = v > zero ? round_even(vmin(v, vfn)) : zero;
      aux[i] = l;
      const V wl = w[i] * l;
      sum_l += wl;
      sum_l2 += wl * l;
      sum_xl += wl * x[i];
    }
    const V D = sum_w * sum_l2 - sum_l * sum_l;
    V this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    V this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    const Vi pos = this_min > zero;
    this_scale = pos ? sum_xl / sum_l2 : this_scale;
    this_min = pos ? zero : this_min;
    V cur = zero;
    for (int i = 0; i < N; ++i) {
      V diff = this_scale * aux[i] + this_min - x[i];
      diff = mad ? vabs(diff) : diff * diff;
      cur += w[i] * diff;
    }
    const Vi take = (D > zero) & (cur < best);
    l_iscale = take ? iscale : l_iscale;
    l_min = take ? mn : l_min;
    best = take ? cur : best;
    scale = take ? this_scale : scale;
    mn = take ? this_min : mn;
  }
  for (int i = 0; i < N; ++i) {
    const V v = l_iscale * (x[i] - l_min);
    L[i] = constant ? zero : (v > zero ? round_even(vmin(v, vfn)) : zero);
  }
  scale_out = constant ? zero : scale;
  min_out = -mn;
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
      fit_affine_lanes<16, 3>(xt, wt, -0.5f, 0.1f, 15, true, s, m, Lt);
    } else {
      load_lanes<16>(qw + 16 * g, qt);
      blend_weights_lanes<16>(qt, xt, sigma2, wt, t);
      store_lanes(t, sw, g);
      fit_affine_lanes<16, 3>(xt, wt, -0.9f, 0.05f, 36, false, s, m, Lt);
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
// Eight 32-element sub-blocks per super-block: kLanes / 8 super-blocks at a time,
// all with importance or all without (a group that mixes them runs each block alone,
// its lanes filled with copies).

constexpr int kGroup = kLanes / 8;

template <int NMAX>
void affine_k_group(const float* const* xs, const float* const* qws, bool weighted, uint16_t* d_bits,
                    uint16_t* dmin_bits, uint8_t* const* packed, uint8_t* const* L) {
  alignas(64) float xb[kGroup * QK_K], qb[kGroup * QK_K];
  for (int g = 0; g < kGroup; ++g) {
    std::memcpy(xb + g * QK_K, xs[g], sizeof(float) * QK_K);
    if (weighted) std::memcpy(qb + g * QK_K, qws[g], sizeof(float) * QK_K);
  }
  V xt[32], wt[32], Lt[32], vs, vm, sw = splat(0.0f);
  load_lanes<32>(xb, xt);
  if (!weighted) {
    V sum_x2 = splat(0.0f);
    for (int i = 0; i < 32; ++i) sum_x2 += xt[i] * xt[i];
    const V av_x = vsqrt(sum_x2 / 32.0f);
    for (int i = 0; i < 32; ++i) wt[i] = av_x + vabs(xt[i]);
    fit_affine_lanes<32, NMAX>(xt, wt, NMAX == 15 ? -1.0f : -0.5f, 0.1f, NMAX == 15 ? 20 : 15, false, vs, vm, Lt);
  } else {
    V sigma2, qt[32];
    float s2[kLanes];
    for (int g = 0; g < kGroup; ++g) {
      const float s = 2 * sum_squares(xs[g], QK_K) / QK_K;
      for (int k = 0; k < 8; ++k) s2[8 * g + k] = s;
    }
    std::memcpy(&sigma2, s2, sizeof sigma2);
    load_lanes<32>(qb, qt);
    blend_weights_lanes<32>(qt, xt, sigma2, wt, sw);
    fit_affine_lanes<32, NMAX>(xt, wt, -0.9f, 0.05f, 36, false, vs, vm, Lt);
  }
  float scales[kLanes], mins[kLanes], sums[kLanes];
  uint8_t codes[kLanes * 32];
  store_lanes(vs, scales, 0);
  store_lanes(vm, mins, 0);
  store_lanes(sw, sums, 0);
  store_codes<32>(Lt, codes, 0);
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
