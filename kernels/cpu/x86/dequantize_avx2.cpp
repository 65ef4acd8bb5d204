// AVX2 decoders for the most used weight formats. Built with -mavx2 (this file
// only) and reached through the dispatch table when the CPU has AVX2. Same float
// operations in the same order as the scalar references (products, then
// differences; no FMA: the project builds with -ffp-contract=off), so the output
// is bit-identical — Registry.EveryVariantMatchesTheScalarReference checks it.
#include <immintrin.h>

#include <cstring>

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

// The 2-bit codes of a Q2_K / Q3_K super-block in element order: element e sits in
// bits 2*((e % 128) / 32) of qs[32 * (e / 128) + e % 32].
inline void low_2bit_codes(const uint8_t* qs, int8_t* out) {
  const __m256i three = _mm256_set1_epi8(3);
  for (int h = 0; h < 2; ++h) {
    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h));
    for (int s = 0; s < 4; ++s)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 128 * h + 32 * s),
                          _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * s), three));
  }
}

// The 32 five-bit codes of a Q5_0 / Q5_1 block: low nibbles of qs are elements
// 0..15, high nibbles 16..31, and bit e of the little-endian u32 qh is element e's
// fifth bit.
inline __m256i five_bit_codes(const uint8_t* qs, const uint8_t* qh) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  const __m256i nib = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), m4), _mm_and_si128(bytes, m4));
  uint32_t h;
  std::memcpy(&h, qh, 4);
  // Byte e gets byte e / 8 of h, then keeps bit e % 8 of it.
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(h)),
                                             _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                                               0x0101010101010101LL, 0x0000000000000000LL));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_or_si256(nib, _mm256_and_si256(set, _mm256_set1_epi8(16)));
}

}  // namespace

void dequantize_row_q5_0__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q5_0*>(x);
  alignas(32) int8_t q[QK_LEGACY];
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(in[i].d));
    _mm256_store_si256(reinterpret_cast<__m256i*>(q),
                       _mm256_sub_epi8(five_bit_codes(in[i].qs, in[i].qh), _mm256_set1_epi8(16)));
    for (int j = 0; j < 32; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(i8_to_ps(q + j), d));
  }
}

void dequantize_row_q5_1__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q5_1*>(x);
  alignas(32) uint8_t q[QK_LEGACY];
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(in[i].d)), m = _mm256_set1_ps(fp16_to_fp32(in[i].m));
    _mm256_store_si256(reinterpret_cast<__m256i*>(q), five_bit_codes(in[i].qs, in[i].qh));
    for (int j = 0; j < 32; j += 8) _mm256_storeu_ps(y + j, _mm256_add_ps(_mm256_mul_ps(u8_to_ps(q + j), d), m));
  }
}

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

}  // namespace lowbit::kernels
