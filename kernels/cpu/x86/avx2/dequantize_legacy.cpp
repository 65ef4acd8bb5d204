// AVX2 decoders for the 32-element formats. They perform the scalar references'
// float operations in the same order (products, then sums; no FMA: the library
// builds with -ffp-contract=off), so their output is bit-identical to the scalar
// decoders'. tests/kernels checks that on every variant.
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include "cpu/x86/avx2/codes.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {

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

namespace {

// Q8_0 and Q8_1: d * q (Q8_1's s, d * sum(q), is for dot products only).
template <class Block>
void dequantize_q8(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const Block*>(x);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(in[i].d));
    for (int j = 0; j < QK_LEGACY; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(i8_to_ps(in[i].qs + j), d));
  }
}

}  // namespace

void dequantize_row_q8_0__avx2(const void* x, float* y, int64_t n) { dequantize_q8<block_q8_0>(x, y, n); }
void dequantize_row_q8_1__avx2(const void* x, float* y, int64_t n) { dequantize_q8<block_q8_1>(x, y, n); }

void dequantize_row_q4_1__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q4_1*>(x);
  alignas(32) uint8_t q[QK_LEGACY];
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(in[i].d)), m = _mm256_set1_ps(fp16_to_fp32(in[i].m));
    _mm256_store_si256(reinterpret_cast<__m256i*>(q), nibbles32(in[i].qs));
    // q * d + m, the scalar reference's order.
    for (int j = 0; j < 32; j += 8) _mm256_storeu_ps(y + j, _mm256_add_ps(_mm256_mul_ps(u8_to_ps(q + j), d), m));
  }
}

void dequantize_row_iq4_nl__avx2(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_iq4_nl*>(x);
  // The 16-entry code book as a byte shuffle: code -> int8 value.
  const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  alignas(32) int8_t v[QK_LEGACY];
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(in[i].d));
    _mm256_store_si256(reinterpret_cast<__m256i*>(v), _mm256_shuffle_epi8(book, nibbles32(in[i].qs)));
    for (int j = 0; j < 32; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(d, i8_to_ps(v + j)));
  }
}

}  // namespace lowbit::kernels
