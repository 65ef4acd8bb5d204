// AVX-512 `fast` quantizers for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and IQ4_XS:
// ggml's algorithm (kernels/cpu/reference/legacy_fast.cpp), byte for byte.
//   - Without importance the legacy formats are one rounding pass per block: the
//     extremes are order-independent (the first element of largest magnitude is found
//     by a mask, as the reference's strict '>' keeps the first), the scale and its
//     inverse are the same scalar operations, and each element is the same multiply,
//     add, clamp and truncation.
//   - IQ4_NL / IQ4_XS search 16 trial scales per 32-element block: the lanes hold the
//     trials and the loop walks the elements in order, so every lane's sums run in
//     exactly the reference's order; the choice among the trials is scalar.
//   - With importance (rarely on a hot path) they call the scalar reference.
#include "cpu/x86/avx512/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <array>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "cpu/reference/ggml_search.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

constexpr int QK = QK_LEGACY;
constexpr float kHalfMax = 65504.0f;

inline uint16_t to_half(float v) { return fp32_to_fp16(std::fmin(std::fmax(v, -kHalfMax), kHalfMax)); }

inline float inverse(float d) {
  if (d == 0.0f) return 0.0f;
  const float id = 1.0f / d;
  return std::fabs(id) <= FLT_MAX ? id : std::copysign(FLT_MAX, id);
}

inline __m512 abs_ps(__m512 v) { return _mm512_abs_ps(v); }

// The first element of largest magnitude with its sign; +0 for an all-zero block.
inline float signed_absmax(const float* x, __m512 v0, __m512 v1) {
  const __m512 a0 = abs_ps(v0), a1 = abs_ps(v1);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
  if (amax == 0.0f) return 0.0f;
  const __m512 m = _mm512_set1_ps(amax);
  const uint32_t hit = static_cast<uint32_t>(_mm512_cmp_ps_mask(a0, m, _CMP_EQ_OQ)) |
                       static_cast<uint32_t>(_mm512_cmp_ps_mask(a1, m, _CMP_EQ_OQ)) << 16;
  return x[__builtin_ctz(hit)];
}

// trunc(clamp(v * id + off, 0, hi)) as the reference's trunc_code.
inline __m512i trunc_codes(__m512 v, __m512 id, __m512 off, __m512 hi) {
  __m512 t = _mm512_add_ps(_mm512_mul_ps(v, id), off);
  t = _mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), hi);
  return _mm512_cvttps_epi32(t);
}

// Codes of elements 0..15 and 16..31 (each 0..31) -> nibbles, and the fifth bits.
inline void store_nibbles(__m512i q0, __m512i q1, uint8_t* qs) {
  const __m512i lo = _mm512_set1_epi32(0x0f);
  const __m512i b = _mm512_or_si512(_mm512_and_si512(q0, lo), _mm512_slli_epi32(_mm512_and_si512(q1, lo), 4));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtepi32_epi8(b));
}
inline void store_high_bits(__m512i q0, __m512i q1, uint8_t* qh) {
  const __m512i bit = _mm512_set1_epi32(0x10);
  const uint32_t h = static_cast<uint32_t>(_mm512_test_epi32_mask(q0, bit)) |
                     static_cast<uint32_t>(_mm512_test_epi32_mask(q1, bit)) << 16;
  std::memcpy(qh, &h, 4);
}

template <class Block>
void sym_row(const float* x, Block* out, int64_t n, int nmax) {
  const __m512 off = _mm512_set1_ps(static_cast<float>(nmax) + 0.5f);
  const __m512 hi = _mm512_set1_ps(static_cast<float>(2 * nmax - 1));
  for (int64_t i = 0; i < n / QK; ++i, x += QK) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float d = signed_absmax(x, v0, v1) / static_cast<float>(-nmax);
    const __m512 id = _mm512_set1_ps(inverse(d));
    const __m512i q0 = trunc_codes(v0, id, off, hi), q1 = trunc_codes(v1, id, off, hi);
    out[i].d = to_half(d);
    if constexpr (requires { out[i].qh; }) store_high_bits(q0, q1, out[i].qh);
    store_nibbles(q0, q1, out[i].qs);
  }
}

template <class Block>
void asym_row(const float* x, Block* out, int64_t n, int nmax) {
  const __m512 half = _mm512_set1_ps(0.5f), hi = _mm512_set1_ps(static_cast<float>(nmax));
  for (int64_t i = 0; i < n / QK; ++i, x += QK) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    float min = _mm512_reduce_min_ps(_mm512_min_ps(v0, v1));
    const float max = _mm512_reduce_max_ps(_mm512_max_ps(v0, v1));
    if (min == 0.0f) {  // the reference keeps the first zero it meets, with its sign
      const __m512 z = _mm512_setzero_ps();
      const uint32_t hit = static_cast<uint32_t>(_mm512_cmp_ps_mask(v0, z, _CMP_EQ_OQ)) |
                           static_cast<uint32_t>(_mm512_cmp_ps_mask(v1, z, _CMP_EQ_OQ)) << 16;
      min = x[__builtin_ctz(hit)];
    }
    const float d = (max - min) / static_cast<float>(nmax);
    const __m512 id = _mm512_set1_ps(inverse(d)), mv = _mm512_set1_ps(min);
    const __m512i q0 = trunc_codes(_mm512_sub_ps(v0, mv), id, half, hi);
    const __m512i q1 = trunc_codes(_mm512_sub_ps(v1, mv), id, half, hi);
    out[i].d = to_half(d);
    out[i].m = to_half(min);
    if constexpr (requires { out[i].qh; }) store_high_bits(q0, q1, out[i].qh);
    store_nibbles(q0, q1, out[i].qs);
  }
}

// roundf: trunc, then one step away from zero where the dropped fraction is >= 1/2.
inline __m512i round_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up = _mm512_cmp_ps_mask(abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  // +-1 with v's sign (integer ops: the float and/or need AVX-512 DQ).
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN));
  const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)), sign));
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one));
}

// ---------------------------------------------------------------- IQ4 code book lookup

// Nearest code value (ggml's best_index_int8) by bucket. The buckets are 8.5 wide from
// -136.25: every decision threshold between two codes (a midpoint, a multiple of 0.5)
// lies at least 0.25 from a bucket edge, and consecutive thresholds are at least 11.5
// apart, so a bucket holds at most one. The value is the bucket's lower code, or its
// upper one at or above its threshold. The bucket number needs no exact arithmetic: a
// value within rounding of an edge lies 0.25 from any threshold, so either bucket
// gives the same code. The reference compares distances (v - lo < hi - v), which near
// a threshold are exact subtractions, so ">= threshold" decides alike
// (tests/formats/test_legacy_effort.cpp and the kernel family test compare the bytes).
constexpr float kBucketStart = -136.25f, kBucketWidth = 8.5f;
struct Buckets {
  alignas(64) float thr[32];
  alignas(64) float lo[32];
  alignas(64) float hi[32];
  alignas(64) int32_t lo_index[32];
  alignas(64) int32_t hi_index[32];
};
constexpr Buckets make_buckets() {
  Buckets b{};
  for (int k = 0; k < 32; ++k) {
    const float start = kBucketStart + kBucketWidth * static_cast<float>(k);
    int lo = 0;
    while (lo < 15 && 2.0f * start >= static_cast<float>(kIq4nlValues[lo] + kIq4nlValues[lo + 1])) ++lo;
    b.lo[k] = b.hi[k] = static_cast<float>(kIq4nlValues[lo]);
    b.lo_index[k] = b.hi_index[k] = lo;
    b.thr[k] = FLT_MAX;
    if (lo < 15) {
      const float t = 0.5f * static_cast<float>(kIq4nlValues[lo] + kIq4nlValues[lo + 1]);
      if (t < start + kBucketWidth) {
        b.thr[k] = t;
        b.hi[k] = static_cast<float>(kIq4nlValues[lo + 1]);
        b.hi_index[k] = lo + 1;
      }
    }
  }
  return b;
}
constexpr Buckets kBuckets = make_buckets();

struct Iq4Tables {
  __m512 thr_a, thr_b, lo_a, lo_b, hi_a, hi_b;
  __m512i loi_a, loi_b, hii_a, hii_b;
  Iq4Tables() {
    loi_a = _mm512_load_si512(kBuckets.lo_index);
    loi_b = _mm512_load_si512(kBuckets.lo_index + 16);
    hii_a = _mm512_load_si512(kBuckets.hi_index);
    hii_b = _mm512_load_si512(kBuckets.hi_index + 16);
    thr_a = _mm512_load_ps(kBuckets.thr);
    thr_b = _mm512_load_ps(kBuckets.thr + 16);
    lo_a = _mm512_load_ps(kBuckets.lo);
    lo_b = _mm512_load_ps(kBuckets.lo + 16);
    hi_a = _mm512_load_ps(kBuckets.hi);
    hi_b = _mm512_load_ps(kBuckets.hi + 16);
  }
  // The bucket of v, for |v| <= 135.
  static __m512i bucket(__m512 v) {
    return _mm512_cvttps_epi32(
        _mm512_fmadd_ps(v, _mm512_set1_ps(1.0f / kBucketWidth), _mm512_set1_ps(-kBucketStart / kBucketWidth)));
  }
  __mmask16 up(__m512 v, __m512i b) const {
    return _mm512_cmp_ps_mask(v, _mm512_permutex2var_ps(thr_a, b, thr_b), _CMP_GE_OQ);
  }
  // Code values of 16 values with |v| <= 135.
  __m512 value(__m512 v) const {
    const __m512i b = bucket(v);
    return _mm512_mask_blend_ps(up(v, b), _mm512_permutex2var_ps(lo_a, b, lo_b), _mm512_permutex2var_ps(hi_a, b, hi_b));
  }
  // Code indices of 16 values of any magnitude (the final codes: d is a refit, so
  // x / d may reach beyond the trials' range).
  __m512i index(__m512 v) const {
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-135.0f)), _mm512_set1_ps(135.0f));
    const __m512i b = bucket(v);
    return _mm512_mask_blend_epi32(up(v, b), _mm512_permutex2var_epi32(loi_a, b, loi_b),
                                   _mm512_permutex2var_epi32(hii_a, b, hii_b));
  }
};

// The first element of largest magnitude with its sign, as ggml_search::signed_absmax.
inline float block_signed_absmax(const float* x) {
  return signed_absmax(x, _mm512_loadu_ps(x), _mm512_loadu_ps(x + 16));
}

// ggml_search::iq4_scale with weights x^2, the 16 trials in the lanes: lane 0 ggml's
// starting scale, lanes 1..15 itry = -7..7.
float iq4_scale(const Iq4Tables& t, const float* x) {
  const float max = block_signed_absmax(x);
  if (std::fabs(max) < 1e-15f) return 0.0f;
  alignas(64) float ids[16];
  ids[0] = 1.0f / (-max / static_cast<float>(kIq4nlValues[0]));
  for (int k = 1; k < 16; ++k) ids[k] = static_cast<float>(k - 8 + kIq4nlValues[0]) / max;
  const __m512 id = _mm512_load_ps(ids);
  __m512 sx = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
  for (int j = 0; j < QK; ++j) {
    const __m512 xj = _mm512_set1_ps(x[j]);
    const __m512 wj = _mm512_set1_ps(x[j] * x[j]);
    const __m512 q = t.value(_mm512_mul_ps(id, xj));
    const __m512 wq = _mm512_mul_ps(wj, q);
    sx = _mm512_add_ps(sx, _mm512_mul_ps(wq, xj));
    s2 = _mm512_add_ps(s2, _mm512_mul_ps(wq, q));
  }
  alignas(64) float sumqx[16], sumq2[16];
  _mm512_store_ps(sumqx, sx);
  _mm512_store_ps(sumq2, s2);
  if (!(sumq2[0] > 0.0f)) return 0.0f;
  float d = sumqx[0] / sumq2[0], best = d * sumqx[0];
  for (int k = 1; k < 16; ++k)
    if (sumq2[k] > 0.0f && sumqx[k] * sumqx[k] > best * sumq2[k]) {
      d = sumqx[k] / sumq2[k];
      best = d * sumqx[k];
    }
  return d;
}

void iq4_pack(const Iq4Tables& t, const float* x, float id, uint8_t* qs) {
  const __m512 idv = _mm512_set1_ps(id);
  const __m512i q0 = t.index(_mm512_mul_ps(idv, _mm512_loadu_ps(x)));
  const __m512i q1 = t.index(_mm512_mul_ps(idv, _mm512_loadu_ps(x + 16)));
  store_nibbles(q0, q1, qs);
}

}  // namespace

void quantize_row_q4_0_fast__avx512(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q4_0_fast__scalar(x, y, n, importance);
  sym_row(x, static_cast<block_q4_0*>(y), n, 8);
}

void quantize_row_q5_0_fast__avx512(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q5_0_fast__scalar(x, y, n, importance);
  sym_row(x, static_cast<block_q5_0*>(y), n, 16);
}

void quantize_row_q4_1_fast__avx512(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q4_1_fast__scalar(x, y, n, importance);
  asym_row(x, static_cast<block_q4_1*>(y), n, 15);
}

void quantize_row_q5_1_fast__avx512(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q5_1_fast__scalar(x, y, n, importance);
  asym_row(x, static_cast<block_q5_1*>(y), n, 31);
}

void quantize_row_q8_0_fast__avx512(const float* x, void* y, int64_t n, const float*) {
  auto* out = static_cast<block_q8_0*>(y);
  const __m512 lim = _mm512_set1_ps(127.0f), nlim = _mm512_set1_ps(-127.0f);
  for (int64_t i = 0; i < n / QK; ++i, x += QK) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs_ps(v0), abs_ps(v1)));
    const float d = amax / 127.0f;
    const __m512 id = _mm512_set1_ps(inverse(d));
    const __m512 t0 = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(v0, id), lim), nlim);
    const __m512 t1 = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(v1, id), lim), nlim);
    out[i].d = to_half(d);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[i].qs), _mm512_cvtepi32_epi8(round_away(t0)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[i].qs + 16), _mm512_cvtepi32_epi8(round_away(t1)));
  }
}

void quantize_row_iq4_nl_fast__avx512(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_iq4_nl_fast__scalar(x, y, n, importance);
  auto* out = static_cast<block_iq4_nl*>(y);
  const Iq4Tables t;
  for (int64_t i = 0; i < n / QK; ++i, x += QK) {
    const float d = iq4_scale(t, x);
    out[i].d = to_half(d);
    iq4_pack(t, x, d != 0.0f ? 1.0f / d : 0.0f, out[i].qs);
  }
}

void quantize_row_iq4_xs_fast__avx512(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_iq4_xs_fast__scalar(x, y, n, importance);
  auto* out = static_cast<block_iq4_xs*>(y);
  constexpr int kSub = QK_K / QK;
  const Iq4Tables t;
  float scales[kSub];
  int ls[kSub];
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl, x += QK_K) {
    for (int ib = 0; ib < kSub; ++ib) scales[ib] = iq4_scale(t, x + ib * QK);
    const float d = ggml_search::iq4_xs_super(scales, ls);
    block_iq4_xs& b = out[ibl];
    std::memset(&b, 0, sizeof b);
    b.d = to_half(d);
    uint16_t scales_h = 0;
    for (int ib = 0; ib < kSub; ++ib) {
      const float dl = d * static_cast<float>(ls[ib]);
      iq4_pack(t, x + ib * QK, dl != 0.0f ? 1.0f / dl : 0.0f, b.qs + ib * (QK / 2));
      const int l = ls[ib] + 32;
      b.scales_l[ib / 2] |= static_cast<uint8_t>((l & 0x0f) << (4 * (ib % 2)));
      scales_h |= static_cast<uint16_t>(((l >> 4) & 3) << (2 * ib));
    }
    b.scales_h = scales_h;
  }
}

}  // namespace lowbit::kernels
