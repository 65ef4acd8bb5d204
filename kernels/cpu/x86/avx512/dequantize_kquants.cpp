// AVX-512 decoders for the K-quants, bit-identical to the scalar references (same
// float operations in the same order, no FMA). Sixteen floats per instruction halve
// the AVX2 variants' multiply, convert and store count.
#include "cpu/x86/avx512/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>


#include "common/kquant_scales.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// Sixteen 4-bit codes (one per byte) -> (dl * code) - ml, stored at y.
inline void store_affine16(__m128i codes, __m512 dl, __m512 ml, float* y) {
  const __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(codes));
  _mm512_storeu_ps(y, _mm512_sub_ps(_mm512_mul_ps(dl, q), ml));
}

}  // namespace

// Q4_K: each 32 bytes of qs hold sub-block j in the low nibbles and j + 1 in the
// high nibbles; sub-block scale and min come from the 12-byte 6-bit packing.
void dequantize_row_q4_K__avx512(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q4_K*>(x);
  const __m256i mask = _mm256_set1_epi8(0x0f);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q4_K& b = in[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const uint8_t* q = b.qs;
    for (int j = 0; j < QK_K / 32; j += 2, q += 32, y += 64) {
      float s1, n1, s2, n2;
      sub_block_affine_k4(j, b.scales, d, dmin, s1, n1);
      sub_block_affine_k4(j + 1, b.scales, d, dmin, s2, n2);
      const __m512 d1 = _mm512_set1_ps(s1), m1 = _mm512_set1_ps(n1), d2 = _mm512_set1_ps(s2), m2 = _mm512_set1_ps(n2);
      const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
      const __m256i lo = _mm256_and_si256(bytes, mask);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask);
      store_affine16(_mm256_castsi256_si128(lo), d1, m1, y);
      store_affine16(_mm256_extracti128_si256(lo, 1), d1, m1, y + 16);
      store_affine16(_mm256_castsi256_si128(hi), d2, m2, y + 32);
      store_affine16(_mm256_extracti128_si256(hi, 1), d2, m2, y + 48);
    }
  }
}

}  // namespace lowbit::kernels
