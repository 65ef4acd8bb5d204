// AVX2 + F16C decoders for the plain 16-bit float formats. Both conversions are
// exact, so the output equals the scalar references' bit for bit; the one case the
// hardware treats differently (it quiets signalling NaNs, the scalar conversion keeps
// their bits) takes the scalar path for that group of eight.
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"

namespace lowbit::kernels {

void dequantize_row_f16__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(x);
  const __m128i exp_mask = _mm_set1_epi16(0x7c00), abs_mask = _mm_set1_epi16(0x7fff);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    // NaN: exponent all ones and a non-zero mantissa, i.e. |h| > 0x7c00 (signed compare is
    // safe: |h| <= 0x7fff).
    const __m128i nan = _mm_cmpgt_epi16(_mm_and_si128(h, abs_mask), exp_mask);
    if (_mm_movemask_epi8(nan) != 0) {
      for (int j = 0; j < 8; ++j) y[i + j] = fp16_to_fp32(in[i + j]);
      continue;
    }
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) y[i] = fp16_to_fp32(in[i]);
}

void dequantize_row_bf16__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(x);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  for (; i < n; ++i) y[i] = bf16_to_fp32(in[i]);
}

}  // namespace lowbit::kernels
