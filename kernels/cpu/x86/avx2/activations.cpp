// AVX2 activation quantizers, byte-identical to the scalar references (and so to
// ggml's quantize_row_q8_*_ref): the maximum is order-independent, the scale and its
// reciprocal are the reference's IEEE divisions (for Q8_0/Q8_1 eight blocks' at once,
// in lanes), every product is the same single multiply, and both rounding modes are
// reproduced exactly. Rows of 2 KiB and more are prefetched 16 KiB ahead
// (cpu/x86/prefetch.hpp): from memory on Zen 3 that took Q8_0 from 0.61-0.69 of the
// read ceiling to 0.73-0.83 and Q8_K from 0.58-0.62 to 0.64-0.76.
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "cpu/x86/prefetch.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// F16C's round-to-nearest-even conversion: the same bits as fp32_to_fp16 for every
// finite input and for Inf (the only values d can take here).
inline uint16_t to_fp16(float v) {
  return static_cast<uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(v), _MM_FROUND_TO_NEAREST_INT), 0));
}

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// roundf (half away from zero): trunc(|v| + 0.49999997f) with v's sign (psignd by
// v's bits: a negative float is a negative int32). The sum's own rounding makes this
// exact for every float: checked exhaustively for |v| < 2^24 (beyond, every float is
// an integer and the sum rounds back to it). Plain + 0.5 would round 0.49999997 up.
inline __m256i round_away(__m256 v) {
  const __m256i r = _mm256_cvttps_epi32(_mm256_add_ps(abs_ps(v), _mm256_set1_ps(0x1.fffffep-2f)));
  return _mm256_sign_epi32(r, _mm256_castps_si256(v));
}

// Four vectors of eight int32 (each within int8) -> 32 int8 in element order.
inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  // packs work per 128-bit lane: restore element order.
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// One 32-element block with ggml's Q8_0 rounding; returns d (float) and the codes.
inline float q8_block(const float* x, int8_t* qs) {
  __m256 v[4], m = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_loadu_ps(x + 8 * k);
    m = _mm256_max_ps(m, abs_ps(v[k]));
  }
  const float d = hmax(m) / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m256 idv = _mm256_set1_ps(id);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) q[k] = round_away(_mm256_mul_ps(v[k], idv));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
  return d;
}

inline int sum_i8(const int8_t* qs, int n) {
  __m256i acc = _mm256_setzero_si256();
  for (int j = 0; j < n; j += 32) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + j));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), b), _mm256_set1_epi16(1)));
  }
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// Eight vectors -> one whose lane b combines all lanes of v[b] (max or integer add:
// both order-independent, so the transposing tree gives the reference's values).
template <class Combine>
inline __m256 reduce8(const __m256 v[8], Combine op) {
  __m256 q[4];
  for (int p = 0; p < 4; ++p) q[p] = op(_mm256_unpacklo_ps(v[2 * p], v[2 * p + 1]), _mm256_unpackhi_ps(v[2 * p], v[2 * p + 1]));
  const __m256 lo = op(_mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(q[0]), _mm256_castps_pd(q[1]))),
                       _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(q[0]), _mm256_castps_pd(q[1]))));
  const __m256 hi = op(_mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(q[2]), _mm256_castps_pd(q[3]))),
                       _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(q[2]), _mm256_castps_pd(q[3]))));
  return op(_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31));
}
inline __m256 max8(__m256 a, __m256 b) { return _mm256_max_ps(a, b); }
inline __m256 add8_epi32(__m256 a, __m256 b) {
  return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(a), _mm256_castps_si256(b)));
}

// Eight consecutive 32-element blocks with ggml's Q8_0 rounding: the maxima of all
// eight reduced together and one vector division for their d and 1/d, instead of a
// horizontal maximum and two dependent scalar divisions per block (the same values:
// IEEE division is the same in any lane). emit(b, codes, q, d_fp16) gets block b's 32
// codes, its four vectors of int32 codes, and d as fp16. Returns the eight d.
template <class Emit>
inline __m256 q8_blocks8(const float* x, Emit emit) {
  __m256 m[8];
  for (int b = 0; b < 8; ++b) {
    const float* xb = x + 32 * b;
    m[b] = _mm256_max_ps(_mm256_max_ps(abs_ps(_mm256_loadu_ps(xb)), abs_ps(_mm256_loadu_ps(xb + 8))),
                         _mm256_max_ps(abs_ps(_mm256_loadu_ps(xb + 16)), abs_ps(_mm256_loadu_ps(xb + 24))));
  }
  const __m256 d = _mm256_div_ps(reduce8(m, max8), _mm256_set1_ps(127.0f));
  const __m256 id = _mm256_and_ps(_mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_NEQ_UQ), _mm256_div_ps(_mm256_set1_ps(1.0f), d));
  alignas(16) uint16_t dh[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(dh), _mm256_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT));
  for (int b = 0; b < 8; ++b) {
    const float* xb = x + 32 * b;
    const __m256 idb = _mm256_permutevar8x32_ps(id, _mm256_set1_epi32(b));
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = round_away(_mm256_mul_ps(_mm256_loadu_ps(xb + 8 * k), idb));
    emit(b, pack_i32_to_i8(q[0], q[1], q[2], q[3]), q, dh[b]);
  }
  return d;
}

// The largest magnitude of a Q8_K block, four independent chains.
inline float q8_K_abs_max(const float* x) {
  __m256 m[4];
  for (int k = 0; k < 4; ++k) m[k] = abs_ps(_mm256_loadu_ps(x + 8 * k));
  for (int j = 32; j < QK_K; j += 32)
    for (int k = 0; k < 4; ++k) m[k] = _mm256_max_ps(m[k], abs_ps(_mm256_loadu_ps(x + j + 8 * k)));
  return hmax(_mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3])));
}

// The first element of a Q8_K block whose magnitude is amax (> 0): the reference
// keeps the first such element, whose sign sets d's.
inline float first_extreme(const float* x, float amax) {
  const __m256 amax_v = _mm256_set1_ps(amax);
  for (int j = 0; j < QK_K; j += 8) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + j)), amax_v, _CMP_EQ_OQ));
    if (hit != 0) return x[j + __builtin_ctz(static_cast<unsigned>(hit))];
  }
  return x[0];  // not reached for finite x
}

// Sixteen 16-element sums of a Q8_K block's 256 codes (each at most 16 * 127), from its
// eight registers of 32 codes: per register two sums of four, then two rounds of
// pairwise adds and one narrowing give [0, 2, .., 14 | 1, 3, .., 15], interleaved back.
inline void q8_K_bsums(const __m256i packed[8], int16_t* bsums) {
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  __m256i s[8];
  for (int t = 0; t < 8; ++t) s[t] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, packed[t]), ones16);
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
  const __m256i w = _mm256_packs_epi32(a, b);  // even sub-blocks in the low lane, odd in the high
  const __m128i even = _mm256_castsi256_si128(w), odd = _mm256_extracti128_si256(w, 1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(bsums), _mm_unpacklo_epi16(even, odd));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(bsums + 8), _mm_unpackhi_epi16(even, odd));
}

}  // namespace

void quantize_activations_q8_0__avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_0*>(vy);
  const int64_t blocks = n / QK_LEGACY;
  const bool prefetch = x86_prefetch::worth_prefetching(static_cast<size_t>(n) * sizeof(float));
  int64_t i = 0;
  for (; i + 8 <= blocks; i += 8, x += 8 * QK_LEGACY) {
    if (prefetch) x86_prefetch::prefetch_ahead<8 * QK_LEGACY * sizeof(float)>(x);
    q8_blocks8(x, [&](int b, __m256i codes, const __m256i*, uint16_t d) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i + b].qs), codes);
      y[i + b].d = d;
    });
  }
  for (; i < blocks; ++i, x += QK_LEGACY) y[i].d = to_fp16(q8_block(x, y[i].qs));
}

void quantize_activations_q8_1__avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_1*>(vy);
  const int64_t blocks = n / QK_LEGACY;
  const bool prefetch = x86_prefetch::worth_prefetching(static_cast<size_t>(n) * sizeof(float));
  int64_t i = 0;
  for (; i + 8 <= blocks; i += 8, x += 8 * QK_LEGACY) {
    if (prefetch) x86_prefetch::prefetch_ahead<8 * QK_LEGACY * sizeof(float)>(x);
    __m256 code_sums[8];  // int32 lanes, reduced together below
    const __m256 d = q8_blocks8(x, [&](int b, __m256i codes, const __m256i* q, uint16_t dh) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i + b].qs), codes);
      y[i + b].d = dh;
      code_sums[b] = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    });
    // s = fp16(sum * d), the reference's float product, eight at once.
    const __m256 sums = _mm256_cvtepi32_ps(_mm256_castps_si256(reduce8(code_sums, add8_epi32)));
    alignas(16) uint16_t s[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(s), _mm256_cvtps_ph(_mm256_mul_ps(sums, d), _MM_FROUND_TO_NEAREST_INT));
    for (int b = 0; b < 8; ++b) y[i + b].s = s[b];
  }
  for (; i < blocks; ++i, x += QK_LEGACY) {
    const float d = q8_block(x, y[i].qs);
    y[i].d = to_fp16(d);
    y[i].s = to_fp16(static_cast<float>(sum_i8(y[i].qs, QK_LEGACY)) * d);
  }
}

void quantize_activations_q8_K__avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_K*>(vy);
  const bool prefetch = x86_prefetch::worth_prefetching(static_cast<size_t>(n) * sizeof(float));
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    if (prefetch) x86_prefetch::prefetch_ahead<QK_K * sizeof(float)>(x);
    const float amax = q8_K_abs_max(x);
    if (amax == 0.0f) {
      y[i].d = 0.0f;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    const float iscale = -127.0f / first_extreme(x, amax);
    const __m256 is = _mm256_set1_ps(iscale);
    __m256i packed[QK_K / 32];
    for (int j = 0; j < QK_K; j += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        // Round half to even, as the reference's magic-number trick; |value| <= 127.
        const __m256 r = _mm256_round_ps(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8 * k)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(r), _mm256_set1_epi32(127));
      }
      packed[j / 32] = pack_i32_to_i8(q[0], q[1], q[2], q[3]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), packed[j / 32]);
    }
    q8_K_bsums(packed, y[i].bsums);
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace lowbit::kernels
