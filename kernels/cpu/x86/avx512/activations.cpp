// AVX-512 activation quantizers, byte-identical to the scalar references (ggml's
// quantize_row_q8_*_ref), as the AVX2 ones: the maximum is order-independent, the
// scale and its reciprocal are the reference's correctly rounded divisions (for Q8_0
// and Q8_1 sixteen blocks' in one vector division), every product is the same single
// multiply, and both rounding modes are reproduced exactly. Sixteen lanes hold a Q8_K
// bsums group or half a Q8_0 block, and vpmovsdb packs codes directly. Horizontal
// maxima and sums are done for sixteen blocks (or Q8_K groups) at once (reduce16), so
// no block waits on its own reduction chain.
#include "cpu/x86/avx512/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>


#include <cstring>

#include "lists/declarations.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

inline __m512 abs_ps(__m512 v) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
}

// F16C's round-to-nearest-even conversion: fp32_to_fp16's bits for every finite
// input and Inf (the only values d can take here).
inline uint16_t to_fp16(float v) {
  return static_cast<uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(v), _MM_FROUND_TO_NEAREST_INT), 0));
}

// roundf (half away from zero): trunc(|v| + 0.49999997f) with v's sign. The sum's own
// rounding makes this exact for every float: checked exhaustively for |v| < 2^24
// (beyond, every float is an integer and the sum rounds back to it). Plain + 0.5
// would round 0.49999997 up.
inline __m512i round_away(__m512 v) {
  const __m512i r = _mm512_cvttps_epi32(_mm512_add_ps(abs_ps(v), _mm512_set1_ps(0x1.fffffep-2f)));
  return _mm512_mask_sub_epi32(r, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_si512(), r);
}

// One 32-element block with ggml's Q8_0 rounding: codes into qs, returns d and the
// sum of the codes (Q8_1's s).
inline float q8_block(const float* x, int8_t* qs, int& sum) {
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  const float d = _mm512_reduce_max_ps(_mm512_max_ps(abs_ps(v0), abs_ps(v1))) / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m512 idv = _mm512_set1_ps(id);
  const __m512i q0 = round_away(_mm512_mul_ps(v0, idv)), q1 = round_away(_mm512_mul_ps(v1, idv));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtsepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtsepi32_epi8(q1));
  sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
  return d;
}

// Sixteen horizontal reductions at once: lane i of the result is op over the 16 lanes
// of v[i]. Four halving steps (128-bit halves, 128-bit quarters, pairs, single lanes),
// each op joining two vectors' halves; 45 operations where sixteen separate
// reductions take about 130, and none of them on a dependency chain per block. The
// order in which op meets the lanes differs from a one-vector reduction, so op must
// be order-independent (max, integer add).
template <class Op>
__m512 reduce16(const __m512* v, Op op) {
  __m512 a[8], c[4], e[2];
  for (int i = 0; i < 8; ++i)  // lanes 0..7: v[2i] folded to eight; 8..15: v[2i + 1]
    a[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
              _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  for (int i = 0; i < 4; ++i)  // 128-bit lane k: v[4i + k] folded to four
    c[i] = op(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
              _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  for (int i = 0; i < 2; ++i)  // lane k, elements {0, 2}: c[2i]'s vector, {1, 3}: c[2i + 1]'s
    e[i] = op(_mm512_unpacklo_ps(c[2 * i], c[2 * i + 1]), _mm512_unpackhi_ps(c[2 * i], c[2 * i + 1]));
  const __m512 f = op(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(e[0]), _mm512_castps_pd(e[1]))),
                      _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(e[0]), _mm512_castps_pd(e[1]))));
  // Element 4k + p of f holds v[4p + k]'s result: back to v's order.
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), f);
}

inline __m512 max_ps(__m512 a, __m512 b) { return _mm512_max_ps(a, b); }
inline __m512 add_epi32(__m512 a, __m512 b) {
  return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}

// Sixteen Q8_0/Q8_1 blocks: their maxima reduced together, d and 1/d for all of them
// in one division each (the same correctly rounded scalar operations, lane by lane),
// d to fp16 in one conversion; then each block's codes as q8_block does them. Calls
// store(b, codes 0..15, codes 16..31, fp16 d) per block; returns the sixteen d.
template <class Store>
__m512 q8_blocks16(const float* x, Store store) {
  __m512 m[16];
  for (int b = 0; b < 16; ++b)
    m[b] = _mm512_max_ps(abs_ps(_mm512_loadu_ps(x + 32 * b)), abs_ps(_mm512_loadu_ps(x + 32 * b + 16)));
  const __m512 d = _mm512_div_ps(reduce16(m, max_ps), _mm512_set1_ps(127.0f));
  // id = d != 0 ? 1 / d : 0 (a NaN d is "not zero", as in the reference)
  const __m512 id = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_UQ),
                                        _mm512_set1_ps(1.0f), d);
  alignas(64) float ids[16];
  alignas(32) uint16_t halves[16];
  _mm512_store_ps(ids, id);
  _mm256_store_si256(reinterpret_cast<__m256i*>(halves), _mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT));
  for (int b = 0; b < 16; ++b) {
    const __m512 idv = _mm512_set1_ps(ids[b]);
    store(b, round_away(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * b), idv)),
          round_away(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * b + 16), idv)), halves[b]);
  }
  return d;
}

inline void store_codes(int8_t* qs, __m512i q0, __m512i q1) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs), _mm512_cvtsepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 16), _mm512_cvtsepi32_epi8(q1));
}

// |x| of a Q8_K block folded to sixteen lanes (four chains of maxima, not one).
inline __m512 q8_K_abs_max(const float* x) {
  __m512 m[4];
  for (int k = 0; k < 4; ++k) m[k] = abs_ps(_mm512_loadu_ps(x + 16 * k));
  for (int j = 64; j < QK_K; j += 64)
    for (int k = 0; k < 4; ++k) m[k] = _mm512_max_ps(m[k], abs_ps(_mm512_loadu_ps(x + j + 16 * k)));
  return _mm512_max_ps(_mm512_max_ps(m[0], m[1]), _mm512_max_ps(m[2], m[3]));
}

// The first element of a Q8_K block whose magnitude is amax (> 0): the reference
// keeps the first such element, whose sign sets d's.
inline float first_extreme(const float* x, float amax) {
  const __m512 amax_v = _mm512_set1_ps(amax);
  for (int j = 0; j < QK_K; j += 16) {
    const __mmask16 hit = _mm512_cmp_ps_mask(abs_ps(_mm512_loadu_ps(x + j)), amax_v, _CMP_EQ_OQ);
    if (hit != 0) return x[j + __builtin_ctz(static_cast<unsigned>(hit))];
  }
  return x[0];  // not reached for finite x
}

// One Q8_K block's codes and sums for iscale = -127 / extreme and d = 1 / iscale, or
// zeros where the block's largest magnitude is zero.
inline void q8_K_codes(const float* x, bool zero, float iscale, float d, block_q8_K& y) {
  if (zero) {
    y.d = 0.0f;
    std::memset(y.qs, 0, sizeof y.qs);
    std::memset(y.bsums, 0, sizeof y.bsums);
    return;
  }
  const __m512 is = _mm512_set1_ps(iscale);
  __m512 codes[QK_K / 16];  // int32 lanes, summed together below
  for (int j = 0; j < QK_K; j += 16) {
    // Round half to even (embedded rounding, whatever MXCSR says), as the reference's
    // magic-number trick; |value| <= 127.
    const __m512i q = _mm512_min_epi32(
        _mm512_cvt_roundps_epi32(_mm512_mul_ps(is, _mm512_loadu_ps(x + j)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
        _mm512_set1_epi32(127));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y.qs + j), _mm512_cvtsepi32_epi8(q));
    codes[j / 16] = _mm512_castsi512_ps(q);
  }
  // bsums: the sixteen groups' sums in one reduction (each at most 16 * 127).
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y.bsums),
                      _mm512_cvtepi32_epi16(_mm512_castps_si512(reduce16(codes, add_epi32))));
  y.d = d;
}

}  // namespace

void quantize_activations_q8_0__avx512(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_0*>(vy);
  const int64_t blocks = n / QK_LEGACY;
  int64_t i = 0;
  for (; i + 16 <= blocks; i += 16, x += 16 * QK_LEGACY)
    q8_blocks16(x, [&](int b, __m512i q0, __m512i q1, uint16_t h) {
      store_codes(y[i + b].qs, q0, q1);
      y[i + b].d = h;
    });
  int sum;
  for (; i < blocks; ++i, x += QK_LEGACY) y[i].d = to_fp16(q8_block(x, y[i].qs, sum));
}

void quantize_activations_q8_1__avx512(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_1*>(vy);
  const int64_t blocks = n / QK_LEGACY;
  int64_t i = 0;
  for (; i + 16 <= blocks; i += 16, x += 16 * QK_LEGACY) {
    __m512 code_sums[16];  // int32 lanes, reduced together below
    const __m512 d = q8_blocks16(x, [&](int b, __m512i q0, __m512i q1, uint16_t h) {
      store_codes(y[i + b].qs, q0, q1);
      y[i + b].d = h;
      code_sums[b] = _mm512_castsi512_ps(_mm512_add_epi32(q0, q1));
    });
    // s = fp16(sum * d), the reference's float product, sixteen at once.
    const __m512 sums = _mm512_cvtepi32_ps(_mm512_castps_si512(reduce16(code_sums, add_epi32)));
    alignas(32) uint16_t s[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(s), _mm512_cvtps_ph(_mm512_mul_ps(sums, d), _MM_FROUND_TO_NEAREST_INT));
    for (int b = 0; b < 16; ++b) y[i + b].s = s[b];
  }
  for (; i < blocks; ++i, x += QK_LEGACY) {
    int sum;
    const float d = q8_block(x, y[i].qs, sum);
    y[i].d = to_fp16(d);
    y[i].s = to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_activations_q8_K__avx512(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_K*>(vy);
  // Block by block: a Q8_K block is 1 KB, and reducing sixteen blocks' maxima together
  // (as Q8_0 does) made the first pass over them a burst of misses with no work to
  // overlap: faster in cache, 0.37 of the read ceiling from memory against 0.5.
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    const float amax = _mm512_reduce_max_ps(q8_K_abs_max(x));
    if (amax == 0.0f) {
      q8_K_codes(x, true, 0.0f, 0.0f, y[i]);
      continue;
    }
    const float iscale = -127.0f / first_extreme(x, amax);
    q8_K_codes(x, false, iscale, 1.0f / iscale, y[i]);
  }
}

}  // namespace lowbit::kernels
