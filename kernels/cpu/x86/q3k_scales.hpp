#pragma once
// Q3_K's sixteen signed 6-bit scales unpacked in registers, shared by the AVX2 and
// AVX-512 VNNI dot products. Internal linkage: each including file compiles its own
// copy with its own ISA flags.
#include <immintrin.h>

#include <cstddef>

#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {
namespace x86_q3k {

// The scales as sixteen 16-bit words, without a trip through memory (the scalar
// unpacking's byte stores and a 16-byte reload cost a store-forwarding stall per
// block). Low nibbles: scale j < 8 the low, j >= 8 the high nibble of byte j % 8; high
// two bits: bits 2(j / 4) of byte 8 + j % 4, so dword r of the result takes them from
// the third scale dword shifted right by 2r. The 16-byte load starts 4 bytes early (the
// end of qs), so it stays inside the block and the scale dwords u0, u1, u2 are its
// dwords 1, 2, 3 (a masked load of the 12 bytes was slightly slower on Zen 4: 118
// against 116 ns per 4096-element row).
inline __m256i scales16(const block_q3_K& b) {
  static_assert(offsetof(block_q3_K, scales) >= 4 && offsetof(block_q3_K, scales) + 12 <= sizeof(block_q3_K));
  const auto* base = reinterpret_cast<const unsigned char*>(&b);
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + offsetof(block_q3_K, scales) - 4));
  const __m128i u0u1 = _mm_shuffle_epi32(raw, _MM_SHUFFLE(2, 1, 2, 1));
  const __m128i u2 = _mm_shuffle_epi32(raw, _MM_SHUFFLE(3, 3, 3, 3));
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(u0u1, _mm_set_epi32(4, 4, 0, 0)), _mm_set1_epi8(0x0f));
  const __m128i high =
      _mm_and_si128(_mm_slli_epi32(_mm_srlv_epi32(u2, _mm_set_epi32(6, 4, 2, 0)), 4), _mm_set1_epi8(0x30));
  return _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_or_si128(low, high), _mm_set1_epi8(32)));
}

}  // namespace x86_q3k
}  // namespace
}  // namespace lowbit::kernels
