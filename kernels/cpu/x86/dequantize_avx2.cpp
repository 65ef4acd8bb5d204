// AVX2 decoders for the most used weight formats. Built with -mavx2 (this file
// only) and reached through the dispatch table when the CPU has AVX2. Same float
// operations in the same order as the scalar references (products, then
// differences; no FMA: the project builds with -ffp-contract=off), so the output
// is bit-identical — Registry.EveryVariantMatchesTheScalarReference checks it.
#include <immintrin.h>

#include "cpu/reference/kquant_scales.hpp"
#include "cpu/reference/reference.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// Eight unsigned bytes -> eight floats.
inline __m256 u8_to_ps(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// Eight signed bytes -> eight floats.
inline __m256 i8_to_ps(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

}  // namespace

void dequantize_row_q8_0__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q8_0*>(x);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(in[i].d));
    for (int j = 0; j < QK_LEGACY; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(i8_to_ps(in[i].qs + j), d));
  }
}

void dequantize_row_q4_0__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q4_0*>(x);
  const __m128i low = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(in[i].d));
    const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in[i].qs));
    // Elements 0..15 are the low nibbles, 16..31 the high ones; both minus 8.
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, low), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), low), eight);
    alignas(16) int8_t v[32];
    _mm_store_si128(reinterpret_cast<__m128i*>(v), lo);
    _mm_store_si128(reinterpret_cast<__m128i*>(v + 16), hi);
    for (int j = 0; j < 32; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(i8_to_ps(v + j), d));
  }
}

void dequantize_row_q4_K__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q4_K*>(x);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q4_K& b = in[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const uint8_t* q = b.qs;
    alignas(32) uint8_t nib[64];
    for (int j = 0; j < QK_K / 32; j += 2, q += 32, y += 64) {
      uint8_t sc, m;
      get_scale_min_k4(j, b.scales, sc, m);
      const __m256 d1 = _mm256_set1_ps(d * sc), m1 = _mm256_set1_ps(dmin * m);
      get_scale_min_k4(j + 1, b.scales, sc, m);
      const __m256 d2 = _mm256_set1_ps(d * sc), m2 = _mm256_set1_ps(dmin * m);
      const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
      const __m256i mask = _mm256_set1_epi8(0x0f);
      _mm256_store_si256(reinterpret_cast<__m256i*>(nib), _mm256_and_si256(bytes, mask));
      _mm256_store_si256(reinterpret_cast<__m256i*>(nib + 32), _mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask));
      for (int l = 0; l < 32; l += 8) {
        _mm256_storeu_ps(y + l, _mm256_sub_ps(_mm256_mul_ps(d1, u8_to_ps(nib + l)), m1));
        _mm256_storeu_ps(y + 32 + l, _mm256_sub_ps(_mm256_mul_ps(d2, u8_to_ps(nib + 32 + l)), m2));
      }
    }
  }
}

}  // namespace lowbit::kernels
