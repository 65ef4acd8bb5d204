// AVX2 variants of the K-quants' `fast` quantizers (ggml's algorithm), byte-identical
// to kernels/cpu/reference/kquants_ggml.cpp. The search over trial scales runs with
// the eight 32-element sub-blocks of a Q4_K / Q5_K super-block in the eight lanes:
// every lane performs its sub-block's scalar float operations in the reference's
// order (serial sums over the elements, no FMA), so no horizontal sum or reordering
// is involved; the per-super-block integer scales stay scalar (shared header).
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "common/kquant_scales.hpp"
#include "cpu/reference/kquants_ggml.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// Eight float lanes, one per sub-block (GCC vector extension: the operators are
// IEEE lane-wise operations, comparisons give all-ones masks).
typedef float V __attribute__((vector_size(32)));
typedef int32_t Vi __attribute__((vector_size(32)));

inline V splat(float v) { return V{v, v, v, v, v, v, v, v}; }
// std::min / std::max semantics: min(a, b) = b < a ? b : a, max(a, b) = a < b ? b : a.
inline V vmin(V a, V b) { return b < a ? b : a; }
inline V vmax(V a, V b) { return a < b ? b : a; }
inline V vabs(V a) { return reinterpret_cast<V>(reinterpret_cast<Vi>(a) & 0x7fffffff); }
inline V vsqrt(V a) { return reinterpret_cast<V>(_mm256_sqrt_ps(reinterpret_cast<__m256>(a))); }
// The reference's nearest() as a float: equal for |v| < 2^22, which the trial
// roundings (clamped to [0, nmax]) never exceed.
inline V round_even(V v) { return (v + 12582912.0f) - 12582912.0f; }

// fit_affine of the reference for the eight sub-blocks at once: x[i], w[i] hold
// element i of every sub-block. Returns each sub-block's scale and min and, in L,
// the codes the winning trial rounded to (used where the sub-block's decoded scale
// is zero).
template <int NMAX>
void fit_affine_lanes(const V* x, const V* w, float rmin, float rdelta, int nstep, bool mad, V& scale_out,
                      V& min_out, V* L) {
  constexpr float fn = NMAX;
  const V zero = splat(0.0f), vfn = splat(fn);
  V mn = x[0], mx = x[0], sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < 32; ++i) {
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
  for (int i = 0; i < 32; ++i) {
    const V l = vmax(zero, vmin(vfn, round_even(iscale * (x[i] - mn))));
    V diff = scale * l + mn - x[i];
    diff = mad ? vabs(diff) : diff * diff;
    best += w[i] * diff;
  }
  // Where each lane's codes came from: the trial's iscale and the min it rounded with.
  V l_iscale = iscale, l_min = mn;
  V aux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = splat(rmin + rdelta * static_cast<float>(is) + fn) / (mx - mn);
    V sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < 32; ++i) {
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
    for (int i = 0; i < 32; ++i) {
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
  for (int i = 0; i < 32; ++i) {
    const V v = l_iscale * (x[i] - l_min);
    const V l = v > zero ? round_even(vmin(v, vfn)) : zero;
    L[i] = constant ? zero : l;
  }
  scale_out = constant ? zero : scale;
  min_out = -mn;
}

// One Q4_K / Q5_K super-block: codes (0..NMAX) into L, scales into the block fields.
template <int NMAX>
void affine_k_block(const float* x, const float* qw, uint16_t& d_bits, uint16_t& dmin_bits, uint8_t* packed,
                    uint8_t* L) {
  V xt[32], wt[32], Lt[32];
  for (int i = 0; i < 32; ++i)
    for (int j = 0; j < 8; ++j) xt[i][j] = x[32 * j + i];
  V sw = splat(0.0f);
  if (qw == nullptr) {
    V sum_x2 = splat(0.0f);
    for (int i = 0; i < 32; ++i) sum_x2 += xt[i] * xt[i];
    const V av_x = vsqrt(sum_x2 / 32.0f);
    for (int i = 0; i < 32; ++i) wt[i] = av_x + vabs(xt[i]);
  } else {
    float sum_x2 = 0;
    for (int l = 0; l < QK_K; ++l) sum_x2 += x[l] * x[l];
    const V sigma2 = splat(2 * sum_x2 / QK_K);
    for (int i = 0; i < 32; ++i) {
      V q;
      for (int j = 0; j < 8; ++j) q[j] = qw[32 * j + i];
      wt[i] = q * vsqrt(sigma2 + xt[i] * xt[i]);
      sw += wt[i];
    }
  }
  V vs, vm;
  if (qw == nullptr)
    fit_affine_lanes<NMAX>(xt, wt, NMAX == 15 ? -1.0f : -0.5f, 0.1f, NMAX == 15 ? 20 : 15, false, vs, vm, Lt);
  else
    fit_affine_lanes<NMAX>(xt, wt, -0.9f, 0.05f, 36, false, vs, vm, Lt);
  float scales[8], mins[8], sums[8];
  for (int j = 0; j < 8; ++j) {
    scales[j] = vs[j];
    mins[j] = vm[j];
    sums[j] = sw[j];
  }
  affine_k_scales(scales, mins, qw ? sums : nullptr, d_bits, dmin_bits, packed);
  const float d_all = fp16_to_fp32(d_bits), m_all = fp16_to_fp32(dmin_bits);
  const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(static_cast<float>(NMAX));
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, packed, sc, m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0.0f) {
      for (int i = 0; i < 32; ++i) L[32 * j + i] = static_cast<uint8_t>(Lt[i][j]);
      continue;
    }
    const __m256 vd = _mm256_set1_ps(d), vdm = _mm256_set1_ps(m_all * static_cast<float>(m));
    for (int i = 0; i < 32; i += 8) {
      const __m256 q = _mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(x + 32 * j + i), vdm), vd);
      // nearest_in(q, 0, NMAX): clamp, then round half to even.
      const __m256 c0 = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
      const __m256i c = _mm256_cvttps_epi32(_mm256_sub_ps(_mm256_add_ps(c0, magic), magic));
      alignas(32) int32_t out[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(out), c);
      for (int k = 0; k < 8; ++k) L[32 * j + i + k] = static_cast<uint8_t>(out[k]);
    }
  }
}

}  // namespace

void quantize_row_q4_K_fast__avx2(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_q4_K*>(y);
  float w[QK_K];
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    block_q4_K& b = out[i];
    affine_k_block<15>(x + i * QK_K, block_weights(importance ? importance + i * QK_K : nullptr, w), b.d, b.dmin,
                       b.scales, L);
    for (int j = 0; j < QK_K; j += 64)
      for (int l = 0; l < 32; ++l) b.qs[j / 2 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
}

void quantize_row_q5_K_fast__avx2(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_q5_K*>(y);
  float w[QK_K];
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    block_q5_K& b = out[i];
    affine_k_block<31>(x + i * QK_K, block_weights(importance ? importance + i * QK_K : nullptr, w), b.d, b.dmin,
                       b.scales, L);
    std::memset(b.qh, 0, sizeof b.qh);
    for (int j = 0; j < QK_K; j += 64) {
      const int bit = j / 32;
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = L[j + l], hi = L[j + l + 32];
        b.qs[j / 2 + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        b.qh[l] = static_cast<uint8_t>(b.qh[l] | ((lo >> 4) << bit) | ((hi >> 4) << (bit + 1)));
      }
    }
  }
}

}  // namespace lowbit::kernels
