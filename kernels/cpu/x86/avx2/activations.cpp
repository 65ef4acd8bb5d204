// AVX2 activation quantizers, byte-identical to the scalar references (and so to
// ggml's quantize_row_q8_*_ref): the maximum is order-independent, the scale and its
// reciprocal are computed as scalars exactly as the reference does, every product is
// the same single multiply, and both rounding modes are reproduced exactly.
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <cmath>
#include <cstring>

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

}  // namespace

void quantize_activations_q8_0__avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_0*>(vy);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, x += QK_LEGACY) y[i].d = to_fp16(q8_block(x, y[i].qs));
}

void quantize_activations_q8_1__avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_1*>(vy);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, x += QK_LEGACY) {
    const float d = q8_block(x, y[i].qs);
    y[i].d = to_fp16(d);
    y[i].s = to_fp16(static_cast<float>(sum_i8(y[i].qs, QK_LEGACY)) * d);
  }
}

void quantize_activations_q8_K__avx2(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < QK_K; j += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + j)));
    const float amax = hmax(m);
    if (amax == 0.0f) {
      y[i].d = 0.0f;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    int first = 0;  // the reference keeps the first element of largest magnitude
    while (first < QK_K - 1 && std::fabs(x[first]) != amax) ++first;
    const float iscale = -127.0f / x[first];
    const __m256 is = _mm256_set1_ps(iscale);
    for (int j = 0; j < QK_K; j += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        // Round half to even, as the reference's magic-number trick; |value| <= 127.
        const __m256 r = _mm256_round_ps(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8 * k)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(r), _mm256_set1_epi32(127));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + j), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y[i].qs + 16 * j));
      const __m256i w = _mm256_cvtepi8_epi16(b);
      __m128i s = _mm_add_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
      s = _mm_add_epi16(s, _mm_shuffle_epi32(s, 0x4e));
      s = _mm_add_epi16(s, _mm_shuffle_epi32(s, 0xb1));
      s = _mm_add_epi16(s, _mm_shufflelo_epi16(s, 0xb1));
      y[i].bsums[j] = static_cast<int16_t>(_mm_extract_epi16(s, 0));
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace lowbit::kernels
