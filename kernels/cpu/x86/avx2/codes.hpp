#pragma once
// Code extraction and widening shared by this folder's AVX2 decoders. Internal
// linkage on purpose: an inline function with external linkage compiled here with
// AVX2 enabled could be merged by the linker with a copy in a scalar file.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

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

// 16 in the bytes of `source` that a byte shuffle by `spread` (byte e <- the mask byte
// holding bit e % 8) finds with bit e % 8 set, 0 elsewhere: Q5's fifth bits as bytes.
inline __m256i sixteen_where(__m256i source, __m256i spread) {
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(source, spread), bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

// v + 16 in the bytes whose bit is set in `mask` (byte e <-> bit e): the fifth bits of
// Q5_0 / Q5_1 codes.
inline __m256i add_sixteen_where(__m256i v, uint32_t mask) {
  // Byte e gets byte e / 8 of the mask.
  return _mm256_or_si256(v, sixteen_where(_mm256_set1_epi32(static_cast<int>(mask)),
                                          _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                                            0x0101010101010101LL, 0x0000000000000000LL)));
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
  return add_sixteen_where(nib, h);
}

// The 32 four-bit codes of a 32-element block (low nibbles are elements 0..15, high
// nibbles 16..31), one per byte.
inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(bytes, 4), m4), _mm_and_si128(bytes, m4));
}

}  // namespace
}  // namespace lowbit::kernels
