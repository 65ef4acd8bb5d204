#pragma once
// Integer multiply-accumulate pieces shared by this folder's dot products. Internal
// linkage on purpose (see codes.hpp).
#include <immintrin.h>

#include <cstdint>

#include "cpu/x86/dot32.hpp"

namespace lowbit::kernels {
namespace {

using x86_dot32::hsum;
using x86_dot32::hsum_epi32;
using x86_dot32::load256;

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

}  // namespace
}  // namespace lowbit::kernels
