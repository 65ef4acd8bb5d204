#pragma once
// Integer multiply-accumulate pieces shared by this folder's dot products. Internal
// linkage on purpose (see codes.hpp).
#include <immintrin.h>

#include <cstdint>

namespace lowbit::kernels {
namespace {

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Eight int32 lanes, each the sum of four products u[i] * s[i] of unsigned codes
// (at most 63) and signed activation codes: no 16-bit saturation is possible.
inline __m256i dot_u8_i8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// The same for two signed operands (|x| <= 128, |y| <= 127): x's sign moves onto y
// so maddubs sees |x| as unsigned.
inline __m256i dot_i8_i8(__m256i x, __m256i y) {
  return dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// Sixteen 16-bit pair sums times per-lane 16-bit scales, summed into eight int32.
inline __m256i scale_pairs(__m256i pairs16, __m256i scales16) { return _mm256_madd_epi16(pairs16, scales16); }

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

}  // namespace
}  // namespace lowbit::kernels
