// AVX2 decoders for the K-quants, bit-identical to the scalar references (same
// float operations in the same order, no FMA).
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include "common/kquant_scales.hpp"
#include "cpu/x86/avx2/codes.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {

void dequantize_row_q2_K__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q2_K*>(x);
  alignas(32) int8_t q[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q2_K& b = in[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    low_2bit_codes(b.qs, q);
    for (int j = 0; j < 16; ++j, y += 16) {
      // (d * sc) * q - (dmin * m), the scalar reference's order.
      const __m256 dl = _mm256_set1_ps(d * static_cast<float>(b.scales[j] & 0xF));
      const __m256 ml = _mm256_set1_ps(dmin * static_cast<float>(b.scales[j] >> 4));
      for (int h = 0; h < 16; h += 8)
        _mm256_storeu_ps(y + h, _mm256_sub_ps(_mm256_mul_ps(dl, i8_to_ps(q + 16 * j + h)), ml));
    }
  }
}

void dequantize_row_q3_K__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q3_K*>(x);
  const __m256i one = _mm256_set1_epi8(1);
  alignas(32) int8_t q[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q3_K& b = in[i];
    const float d = fp16_to_fp32(b.d);
    low_2bit_codes(b.qs, q);
    // A clear hmask bit (bit e / 32 of hmask[e % 32]) subtracts 4.
    const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask));
    for (int m = 0; m < 8; ++m) {
      const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hm, m), one);
      const __m256i minus = _mm256_slli_epi16(_mm256_xor_si256(high, one), 2);  // 0 or 4 per byte
      __m256i* p = reinterpret_cast<__m256i*>(q + 32 * m);
      _mm256_store_si256(p, _mm256_sub_epi8(_mm256_load_si256(p), minus));
    }
    for (int j = 0; j < 16; ++j, y += 16) {
      const int lo = (b.scales[j % 8] >> (j < 8 ? 0 : 4)) & 0xF;
      const int hi = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
      const __m256 dl = _mm256_set1_ps(d * static_cast<float>((lo | hi << 4) - 32));
      for (int h = 0; h < 16; h += 8) _mm256_storeu_ps(y + h, _mm256_mul_ps(dl, i8_to_ps(q + 16 * j + h)));
    }
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
      float s1, n1, s2, n2;
      sub_block_affine_k4(j, b.scales, d, dmin, s1, n1);
      sub_block_affine_k4(j + 1, b.scales, d, dmin, s2, n2);
      const __m256 d1 = _mm256_set1_ps(s1), m1 = _mm256_set1_ps(n1), d2 = _mm256_set1_ps(s2), m2 = _mm256_set1_ps(n2);
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

void dequantize_row_q6_K__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q6_K*>(x);
  const __m128i m4 = _mm_set1_epi8(0x0f), m2 = _mm_set1_epi8(3), bias = _mm_set1_epi8(32);
  // The 2-bit field of qh at bit `shift`, moved to bits 4..5.
  auto high = [&](__m128i qh, int shift) {
    const __m128i v = shift >= 4 ? _mm_srli_epi16(qh, shift - 4) : _mm_slli_epi16(qh, 4 - shift);
    return _mm_and_si128(v, _mm_slli_epi16(m2, 4));
  };
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q6_K& b = in[i];
    const float d = fp16_to_fp32(b.d);
    const uint8_t* ql = b.ql;
    const uint8_t* qh = b.qh;
    const int8_t* sc = b.scales;
    for (int j = 0; j < QK_K; j += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; l += 16) {
        const __m128i lo0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ql + l));
        const __m128i lo1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ql + l + 32));
        const __m128i hb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qh + l));
        alignas(16) int8_t q[4][16];
        _mm_store_si128(reinterpret_cast<__m128i*>(q[0]), _mm_sub_epi8(_mm_or_si128(_mm_and_si128(lo0, m4), high(hb, 0)), bias));
        _mm_store_si128(reinterpret_cast<__m128i*>(q[1]), _mm_sub_epi8(_mm_or_si128(_mm_and_si128(lo1, m4), high(hb, 2)), bias));
        _mm_store_si128(reinterpret_cast<__m128i*>(q[2]),
                        _mm_sub_epi8(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(lo0, 4), m4), high(hb, 4)), bias));
        _mm_store_si128(reinterpret_cast<__m128i*>(q[3]),
                        _mm_sub_epi8(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(lo1, 4), m4), high(hb, 6)), bias));
        const int is = l / 16;
        for (int k = 0; k < 4; ++k) {
          // (d * sc) * q, the scalar reference's order.
          const __m256 ds = _mm256_set1_ps(d * sc[is + 2 * k]);
          for (int h = 0; h < 16; h += 8) _mm256_storeu_ps(y + 32 * k + l + h, _mm256_mul_ps(ds, i8_to_ps(q[k] + h)));
        }
      }
    }
  }
}

void dequantize_row_q5_K__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q5_K*>(x);
  const __m256i mask = _mm256_set1_epi8(0x0f);
  alignas(32) uint8_t q[64];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q5_K& b = in[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
    const uint8_t* ql = b.qs;
    for (int j = 0; j < QK_K / 32; j += 2, ql += 32, y += 64) {
      float s1, n1, s2, n2;
      sub_block_affine_k4(j, b.scales, d, dmin, s1, n1);
      sub_block_affine_k4(j + 1, b.scales, d, dmin, s2, n2);
      const __m256 d1 = _mm256_set1_ps(s1), m1 = _mm256_set1_ps(n1), d2 = _mm256_set1_ps(s2), m2 = _mm256_set1_ps(n2);
      const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      // Bit j of qh[l] is element l's fifth bit in sub-block j: move it to bit 4 (a
      // 16-bit shift is safe: bit 0 of each byte then holds that byte's bit j).
      const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, j), _mm256_set1_epi8(1));
      const __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(qh, j + 1), _mm256_set1_epi8(1));
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(bytes, mask), _mm256_slli_epi16(h1, 4));
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask),
                                         _mm256_slli_epi16(h2, 4));
      _mm256_store_si256(reinterpret_cast<__m256i*>(q), lo);
      _mm256_store_si256(reinterpret_cast<__m256i*>(q + 32), hi);
      for (int l = 0; l < 32; l += 8) {
        _mm256_storeu_ps(y + l, _mm256_sub_ps(_mm256_mul_ps(d1, u8_to_ps(q + l)), m1));
        _mm256_storeu_ps(y + 32 + l, _mm256_sub_ps(_mm256_mul_ps(d2, u8_to_ps(q + 32 + l)), m2));
      }
    }
  }
}

void dequantize_row_q8_K__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q8_K*>(x);
  for (int64_t i = 0; i < n / QK_K; ++i, y += QK_K) {
    const __m256 d = _mm256_set1_ps(in[i].d);
    for (int j = 0; j < QK_K; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(d, i8_to_ps(in[i].qs + j)));
  }
}

void dequantize_row_iq4_xs__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_iq4_xs*>(x);
  const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  alignas(32) int8_t v[32];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_iq4_xs& b = in[i];
    const float d = fp16_to_fp32(b.d);
    for (int ib = 0; ib < QK_K / 32; ++ib, y += 32) {
      const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((b.scales_h >> (2 * ib)) & 3) << 4);
      const __m256 dl = _mm256_set1_ps(d * static_cast<float>(ls - 32));
      _mm256_store_si256(reinterpret_cast<__m256i*>(v), _mm256_shuffle_epi8(book, nibbles32(b.qs + 16 * ib)));
      for (int j = 0; j < 32; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(dl, i8_to_ps(v + j)));
    }
  }
}

}  // namespace lowbit::kernels
