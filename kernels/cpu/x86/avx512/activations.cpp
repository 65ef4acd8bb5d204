// AVX-512 activation quantizers, byte-identical to the scalar references (ggml's
// quantize_row_q8_*_ref), as the AVX2 ones: the maximum is order-independent, the
// scale and its reciprocal are the reference's scalars, every product is the same
// single multiply, and both rounding modes are reproduced exactly. Sixteen lanes
// hold a Q8_K bsums group or half a Q8_0 block, and vpmovsdb packs codes directly.
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

// roundf (half away from zero): trunc(v), plus one step away from zero where the
// discarded fraction (exact) is at least one half.
inline __m512i round_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up = _mm512_cmp_ps_mask(abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 step = _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_castps_si512(_mm512_set1_ps(1.0f)),
      _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(static_cast<int>(0x80000000u)))));
  return _mm512_cvtps_epi32(_mm512_mask_add_ps(t, up, t, step));
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

}  // namespace

void quantize_activations_q8_0__avx512(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_0*>(vy);
  int sum;
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, x += QK_LEGACY) y[i].d = to_fp16(q8_block(x, y[i].qs, sum));
}

void quantize_activations_q8_1__avx512(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_1*>(vy);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, x += QK_LEGACY) {
    int sum;
    const float d = q8_block(x, y[i].qs, sum);
    y[i].d = to_fp16(d);
    y[i].s = to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_activations_q8_K__avx512(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    __m512 m = _mm512_setzero_ps();
    for (int j = 0; j < QK_K; j += 16) m = _mm512_max_ps(m, abs_ps(_mm512_loadu_ps(x + j)));
    const float amax = _mm512_reduce_max_ps(m);
    if (amax == 0.0f) {
      y[i].d = 0.0f;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    // The reference keeps the first element of largest magnitude (its sign sets d's).
    int first = 0;
    const __m512 amax_v = _mm512_set1_ps(amax);
    for (int j = 0; j < QK_K; j += 16) {
      const __mmask16 hit = _mm512_cmp_ps_mask(abs_ps(_mm512_loadu_ps(x + j)), amax_v, _CMP_EQ_OQ);
      if (hit != 0) {
        first = j + __builtin_ctz(static_cast<unsigned>(hit));
        break;
      }
    }
    const float iscale = -127.0f / x[first];
    const __m512 is = _mm512_set1_ps(iscale);
    for (int j = 0; j < QK_K; j += 16) {
      // Round half to even, as the reference's magic-number trick; |value| <= 127.
      const __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(is, _mm512_loadu_ps(x + j)),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(r), _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + j), _mm512_cvtsepi32_epi8(q));
      y[i].bsums[j / 16] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace lowbit::kernels
