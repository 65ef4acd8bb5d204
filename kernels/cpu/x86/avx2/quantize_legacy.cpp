// AVX2 `fast` quantizers for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and IQ4_XS without
// importance: ggml's algorithm (kernels/cpu/reference/legacy_fast.cpp), byte for byte.
// IQ4's 16 trial scales per block run in lanes (kernels/cpu/lanes/iq4_fast_lanes.hpp).
// The extremes are order-independent (the first element of largest magnitude is found
// by a mask, as the reference's strict '>' keeps the first), the scale and its inverse
// are the same scalar operations, and each element is the same multiply, add, clamp
// and truncation. With importance they call the scalar reference.
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

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
inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
inline float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// Bit j set where lane j of the four vectors (elements 0..31) equals s.
inline uint32_t equal_mask(const __m256* v, float s) {
  const __m256 m = _mm256_set1_ps(s);
  uint32_t hit = 0;
  for (int k = 0; k < 4; ++k)
    hit |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v[k], m, _CMP_EQ_OQ))) << (8 * k);
  return hit;
}

// Four vectors of eight int32 (each within int8) -> 32 bytes in element order.
inline __m256i pack_bytes(const __m256i* q) {
  const __m256i ab = _mm256_packs_epi32(q[0], q[1]), cd = _mm256_packs_epi32(q[2], q[3]);
  return _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// 32 codes (bytes, each 0..31) -> nibbles; the fifth bits for Q5.
inline void store_nibbles(__m256i b, uint8_t* qs) {
  const __m128i lo_mask = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(_mm256_castsi256_si128(b), lo_mask);
  const __m128i hi = _mm_and_si128(_mm256_extracti128_si256(b, 1), lo_mask);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
}
inline void store_high_bits(__m256i b, uint8_t* qh) {
  const uint32_t h = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(b, 3)));
  std::memcpy(qh, &h, 4);
}

inline __m256i trunc_codes(__m256 v, __m256 id, __m256 off, __m256 hi) {
  __m256 t = _mm256_add_ps(_mm256_mul_ps(v, id), off);
  t = _mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), hi);
  return _mm256_cvttps_epi32(t);
}

template <class Block>
void sym_row(const float* x, Block* out, int64_t n, int nmax) {
  const __m256 off = _mm256_set1_ps(static_cast<float>(nmax) + 0.5f);
  const __m256 hi = _mm256_set1_ps(static_cast<float>(2 * nmax - 1));
  for (int64_t i = 0; i < n / QK; ++i, x += QK) {
    __m256 v[4], a[4];
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      a[k] = abs_ps(v[k]);
    }
    const float amax = hmax(_mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3])));
    const float max = amax == 0.0f ? 0.0f : x[__builtin_ctz(equal_mask(a, amax))];
    const float d = max / static_cast<float>(-nmax);
    const __m256 id = _mm256_set1_ps(finite_inverse(d));
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = trunc_codes(v[k], id, off, hi);
    const __m256i b = pack_bytes(q);
    out[i].d = to_half(d);
    if constexpr (requires { out[i].qh; }) store_high_bits(b, out[i].qh);
    store_nibbles(b, out[i].qs);
  }
}

template <class Block>
void asym_row(const float* x, Block* out, int64_t n, int nmax) {
  const __m256 half = _mm256_set1_ps(0.5f), hi = _mm256_set1_ps(static_cast<float>(nmax));
  for (int64_t i = 0; i < n / QK; ++i, x += QK) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
    float min = hmin(_mm256_min_ps(_mm256_min_ps(v[0], v[1]), _mm256_min_ps(v[2], v[3])));
    float max = hmax(_mm256_max_ps(_mm256_max_ps(v[0], v[1]), _mm256_max_ps(v[2], v[3])));
    if (min == 0.0f) min = x[__builtin_ctz(equal_mask(v, 0.0f))];  // the first zero, with its sign
    // A zero maximum only matters in an all-zero block, whose d the reference gets as
    // x0 - x0 = +0, as +0 - min does.
    if (max == 0.0f) max = 0.0f;
    const float d = (max - min) / static_cast<float>(nmax);
    const __m256 id = _mm256_set1_ps(finite_inverse(d)), mv = _mm256_set1_ps(min);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = trunc_codes(_mm256_sub_ps(v[k], mv), id, half, hi);
    const __m256i b = pack_bytes(q);
    out[i].d = to_half(d);
    out[i].m = to_half(min);
    if constexpr (requires { out[i].qh; }) store_high_bits(b, out[i].qh);
    store_nibbles(b, out[i].qs);
  }
}

inline __m256i round_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = abs_ps(_mm256_sub_ps(v, t));
  const __m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ),
                                    _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, _mm256_set1_ps(-0.0f))));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, step));
}


// ---------------------------------------------------------------- IQ4 code look-up

// The nearest code (ggml's best_index_int8) by bucket (kernels/common/iq4_buckets.hpp)
// with in-register permutes: the bucket's lower code from four 8-entry tables, then
// the threshold above it and the code's value from two each. A discarded version with
// gathers (one per table) ran ten times slower on Zen 4 (docs/benchmarks.md).
class Iq4Lookup {
 public:
  typedef float Trials __attribute__((vector_size(32)));  // two passes of eight trials

  Iq4Lookup() {
    for (int k = 0; k < 4; ++k)
      lo_code_[k] = _mm256_load_si256(reinterpret_cast<const __m256i*>(kIq4Buckets.lo_index + 8 * k));
    for (int k = 0; k < 2; ++k) {
      thr_[k] = _mm256_load_ps(kIq4Buckets.code_thr + 8 * k);
      value_[k] = _mm256_load_ps(kIq4Buckets.code_value + 8 * k);
    }
  }

  __attribute__((always_inline)) Trials splat(float v) const { return reinterpret_cast<Trials>(_mm256_set1_ps(v)); }
  __attribute__((always_inline)) Trials value(Trials t) const {
    const __m256i c = codes(reinterpret_cast<__m256>(t));
    return reinterpret_cast<Trials>(
        _mm256_blendv_ps(_mm256_permutevar8x32_ps(value_[0], c), _mm256_permutevar8x32_ps(value_[1], c), bit(c, 3)));
  }
  void pack(const float* x, float id, uint8_t* qs) const {
    const __m256 idv = _mm256_set1_ps(id), lim = _mm256_set1_ps(kIq4BucketLimit);
    const __m256 nlim = _mm256_set1_ps(-kIq4BucketLimit);
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
      q[k] = codes(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(idv, _mm256_loadu_ps(x + 8 * k)), nlim), lim));
    store_nibbles(pack_bytes(q), qs);
  }

 private:
  // Bit k of every lane as a blendv mask (in the sign bit).
  static __m256 bit(__m256i v, int k) { return _mm256_castsi256_ps(_mm256_sll_epi32(v, _mm_cvtsi32_si128(31 - k))); }
  // The codes of 8 values with |v| <= kIq4BucketLimit.
  __m256i codes(__m256 v) const {
    const __m256i b = _mm256_cvttps_epi32(_mm256_fmadd_ps(v, _mm256_set1_ps(1.0f / kIq4BucketWidth),
                                                          _mm256_set1_ps(-kIq4BucketStart / kIq4BucketWidth)));
    const __m256 b3 = bit(b, 3);
    const __m256 lo01 = _mm256_blendv_ps(permute(lo_code_[0], b), permute(lo_code_[1], b), b3);
    const __m256 lo23 = _mm256_blendv_ps(permute(lo_code_[2], b), permute(lo_code_[3], b), b3);
    const __m256i lo = _mm256_castps_si256(_mm256_blendv_ps(lo01, lo23, bit(b, 4)));
    const __m256 thr =
        _mm256_blendv_ps(_mm256_permutevar8x32_ps(thr_[0], lo), _mm256_permutevar8x32_ps(thr_[1], lo), bit(lo, 3));
    return _mm256_sub_epi32(lo, _mm256_castps_si256(_mm256_cmp_ps(v, thr, _CMP_GE_OQ)));  // true: -1
  }
  static __m256 permute(__m256i table, __m256i index) {
    return _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(table, index));
  }

  __m256i lo_code_[4];
  __m256 thr_[2], value_[2];
};


}  // namespace

void quantize_row_q4_0_fast__avx2(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q4_0_fast__scalar(x, y, n, importance);
  sym_row(x, static_cast<block_q4_0*>(y), n, 8);
}

void quantize_row_q5_0_fast__avx2(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q5_0_fast__scalar(x, y, n, importance);
  sym_row(x, static_cast<block_q5_0*>(y), n, 16);
}

void quantize_row_q4_1_fast__avx2(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q4_1_fast__scalar(x, y, n, importance);
  asym_row(x, static_cast<block_q4_1*>(y), n, 15);
}

void quantize_row_q5_1_fast__avx2(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q5_1_fast__scalar(x, y, n, importance);
  asym_row(x, static_cast<block_q5_1*>(y), n, 31);
}

void quantize_row_q8_0_fast__avx2(const float* x, void* y, int64_t n, const float*) {
  auto* out = static_cast<block_q8_0*>(y);
  const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
  for (int64_t i = 0; i < n / QK; ++i, x += QK) {
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      m = _mm256_max_ps(m, abs_ps(v[k]));
    }
    const float d = hmax(m) / 127.0f;
    const __m256 id = _mm256_set1_ps(finite_inverse(d));
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = round_away(_mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(v[k], id), lim), nlim));
    out[i].d = to_half(d);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[i].qs), pack_bytes(q));
  }
}

void quantize_row_iq4_nl_fast__avx2(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_iq4_nl_fast__scalar(x, y, n, importance);
  iq4_nl_fast_row<Iq4Lookup>(x, y, n);
}

void quantize_row_iq4_xs_fast__avx2(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_iq4_xs_fast__scalar(x, y, n, importance);
  iq4_xs_fast_row<Iq4Lookup>(x, y, n);
}

}  // namespace lowbit::kernels
