// AVX-512 `fast` quantizers for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and IQ4_XS:
// ggml's algorithm (kernels/cpu/reference/legacy_fast.cpp), byte for byte.
//   - Without importance the legacy formats are one rounding pass per block: the
//     extremes are order-independent (the first element of largest magnitude is found
//     by a mask, as the reference's strict '>' keeps the first), the scale and its
//     inverse are the same scalar operations, and each element is the same multiply,
//     add, clamp and truncation.
//   - IQ4_NL / IQ4_XS search 16 trial scales per 32-element block: the lanes hold the
//     trials and the loop walks the elements in order, so every lane's sums run in
//     exactly the reference's order; the choice among the trials is scalar
//     (kernels/cpu/lanes/iq4_fast_lanes.hpp, shared with AVX2 and NEON).
//   - With importance (rarely on a hot path) they call the scalar reference.
#include "cpu/x86/avx512/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <array>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "common/iq4_buckets.hpp"
#include "cpu/lanes/iq4_fast_lanes.hpp"
#include "cpu/reference/scalar_math.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

constexpr int QK = QK_LEGACY;
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
    const __m512 id = _mm512_set1_ps(finite_inverse(d));
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
    float max = _mm512_reduce_max_ps(_mm512_max_ps(v0, v1));
    // A zero maximum only matters in an all-zero block, whose d the reference gets as
    // x0 - x0 = +0, as +0 - min does.
    if (max == 0.0f) max = 0.0f;
    if (min == 0.0f) {  // the reference keeps the first zero it meets, with its sign
      const __m512 z = _mm512_setzero_ps();
      const uint32_t hit = static_cast<uint32_t>(_mm512_cmp_ps_mask(v0, z, _CMP_EQ_OQ)) |
                           static_cast<uint32_t>(_mm512_cmp_ps_mask(v1, z, _CMP_EQ_OQ)) << 16;
      min = x[__builtin_ctz(hit)];
    }
    const float d = (max - min) / static_cast<float>(nmax);
    const __m512 id = _mm512_set1_ps(finite_inverse(d)), mv = _mm512_set1_ps(min);
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

// ---------------------------------------------------------------- IQ4 code look-up

// The nearest code (ggml's best_index_int8) by bucket (kernels/common/iq4_buckets.hpp):
// each table of 32 floats or indices is two registers, one permutex2var per look-up.
class Iq4Lookup {
 public:
  typedef float Trials __attribute__((vector_size(64)));

  Iq4Lookup()
      : thr_a_(_mm512_load_ps(kIq4Buckets.thr)), thr_b_(_mm512_load_ps(kIq4Buckets.thr + 16)),
        lo_a_(_mm512_load_ps(kIq4Buckets.lo)), lo_b_(_mm512_load_ps(kIq4Buckets.lo + 16)),
        hi_a_(_mm512_load_ps(kIq4Buckets.hi)), hi_b_(_mm512_load_ps(kIq4Buckets.hi + 16)),
        loi_a_(_mm512_load_si512(kIq4Buckets.lo_index)), loi_b_(_mm512_load_si512(kIq4Buckets.lo_index + 16)),
        hii_a_(_mm512_load_si512(kIq4Buckets.hi_index)), hii_b_(_mm512_load_si512(kIq4Buckets.hi_index + 16)) {}

  __attribute__((always_inline)) Trials splat(float v) const { return reinterpret_cast<Trials>(_mm512_set1_ps(v)); }
  __attribute__((always_inline)) Trials value(Trials t) const {
    const __m512 v = reinterpret_cast<__m512>(t);
    const __m512i b = bucket(v);
    return reinterpret_cast<Trials>(_mm512_mask_blend_ps(up(v, b), _mm512_permutex2var_ps(lo_a_, b, lo_b_),
                                                         _mm512_permutex2var_ps(hi_a_, b, hi_b_)));
  }
  void pack(const float* x, float id, uint8_t* qs) const {
    const __m512 idv = _mm512_set1_ps(id);
    store_nibbles(index(_mm512_mul_ps(idv, _mm512_loadu_ps(x))), index(_mm512_mul_ps(idv, _mm512_loadu_ps(x + 16))),
                  qs);
  }

 private:
  static __m512i bucket(__m512 v) {
    return _mm512_cvttps_epi32(_mm512_fmadd_ps(v, _mm512_set1_ps(1.0f / kIq4BucketWidth),
                                               _mm512_set1_ps(-kIq4BucketStart / kIq4BucketWidth)));
  }
  __mmask16 up(__m512 v, __m512i b) const {
    return _mm512_cmp_ps_mask(v, _mm512_permutex2var_ps(thr_a_, b, thr_b_), _CMP_GE_OQ);
  }
  __m512i index(__m512 v) const {
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-kIq4BucketLimit)), _mm512_set1_ps(kIq4BucketLimit));
    const __m512i b = bucket(v);
    return _mm512_mask_blend_epi32(up(v, b), _mm512_permutex2var_epi32(loi_a_, b, loi_b_),
                                   _mm512_permutex2var_epi32(hii_a_, b, hii_b_));
  }
  __m512 thr_a_, thr_b_, lo_a_, lo_b_, hi_a_, hi_b_;
  __m512i loi_a_, loi_b_, hii_a_, hii_b_;
};

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
    const __m512 id = _mm512_set1_ps(finite_inverse(d));
    const __m512 t0 = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(v0, id), lim), nlim);
    const __m512 t1 = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(v1, id), lim), nlim);
    out[i].d = to_half(d);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[i].qs), _mm512_cvtepi32_epi8(round_away(t0)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[i].qs + 16), _mm512_cvtepi32_epi8(round_away(t1)));
  }
}

void quantize_row_iq4_nl_fast__avx512(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_iq4_nl_fast__scalar(x, y, n, importance);
  iq4_nl_fast_row<Iq4Lookup>(x, y, n);
}

void quantize_row_iq4_xs_fast__avx512(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_iq4_xs_fast__scalar(x, y, n, importance);
  iq4_xs_fast_row<Iq4Lookup>(x, y, n);
}

}  // namespace lowbit::kernels
