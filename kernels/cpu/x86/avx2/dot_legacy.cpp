// AVX2 dot products of the 32-element formats with Q8_0 / Q8_1 activations. Each
// block's integer sum is exact (as in the scalar reference). Q4_0, Q4_1, Q5_0 and Q5_1
// (unsigned codes up to 31) take the shared x86 scheme of kernels/cpu/x86/dot32.hpp with
// vpmaddubsw + vpmaddwd for the products, one row or a group of rows at a time (the
// multi-row family); Q8_0 and IQ4_NL, whose unsigned codes would reach 255 and saturate
// vpmaddubsw, move the codes' sign onto the activations and accumulate each block's
// float term in eight lanes.
#include "target.hpp"
// (target.hpp first: it checks the compile flags.)
#include "codes.hpp"
#include "cpu/x86/dot32.hpp"
#include "dot_common.hpp"
#include "lists/declarations.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// d_w * d_a broadcast, as the scalar reference multiplies them.
inline __m256 block_scale(uint16_t dw, uint16_t da) { return _mm256_set1_ps(h2f(dw) * h2f(da)); }

// The signed formats (Q4_0, Q5_0, Q8_0, IQ4_NL): sum += (d_w d_a) * isum, with
// `codes(block)` returning the 32 signed codes.
template <class Block, class Codes>
float dot_signed(const Block* w, const block_q8_0* a, int64_t blocks, Codes codes) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < blocks; ++i) {
    const __m256i isum = dot_i8_i8(codes(w[i]), load256(a[i].qs));
    acc = _mm256_fmadd_ps(block_scale(w[i].d, a[i].d), _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum(acc);
}

// The products for x86_dot32: vpmaddubsw sums two u * a products into a 16-bit lane
// (at most 2 * 31 * 128), vpmaddwd by ones two of those into an int32 lane; a pair adds
// two 16-bit sums first (at most 4 * 31 * 128 < 2^15).
struct Avx2Products {
  static __m256i dot4(__m256i acc, __m256i u, __m256i a) { return _mm256_add_epi32(acc, dot_u8_i8(u, a)); }
  static __m256i dot4_pair(__m256i lo, __m256i alo, __m256i hi, __m256i ahi) {
    const __m256i sums = _mm256_add_epi16(_mm256_maddubs_epi16(lo, alo), _mm256_maddubs_epi16(hi, ahi));
    return _mm256_madd_epi16(sums, _mm256_set1_epi16(1));
  }
};

// Q5_0 / Q5_1 in the pair layout: the nibbles of two blocks plus their fifth bits.
inline void five_bit_pair(const uint8_t* qs0, const uint8_t* qh0, const uint8_t* qs1, const uint8_t* qh1,
                          __m256i& lo, __m256i& hi) {
  uint32_t mlo, mhi;
  x86_dot32::pair_masks(qh0, qh1, mlo, mhi);
  x86_dot32::nibble_pair(qs0, qs1, lo, hi);
  lo = add_sixteen_where(lo, mlo);
  hi = add_sixteen_where(hi, mhi);
}

}  // namespace

float dot_q4_0_q8_0__avx2(const void* w, const void* a, int64_t n) {
  return x86_dot32::dot32<Avx2Products, 8, false>(
      static_cast<const block_q4_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
      [](const block_q4_0& b) { return nibbles32(b.qs); });
}

float dot_q5_0_q8_0__avx2(const void* w, const void* a, int64_t n) {
  return x86_dot32::dot32<Avx2Products, 16, false>(
      static_cast<const block_q5_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
      [](const block_q5_0& b) { return five_bit_codes(b.qs, b.qh); });
}

float dot_q8_0_q8_0__avx2(const void* w, const void* a, int64_t n) {
  return dot_signed(static_cast<const block_q8_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                    [](const block_q8_0& b) { return load256(b.qs); });
}

float dot_iq4_nl_q8_0__avx2(const void* w, const void* a, int64_t n) {
  const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  return dot_signed(static_cast<const block_iq4_nl*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                    [book](const block_iq4_nl& b) { return _mm256_shuffle_epi8(book, nibbles32(b.qs)); });
}

float dot_q4_1_q8_1__avx2(const void* w, const void* a, int64_t n) {
  return x86_dot32::dot32<Avx2Products, 0, true>(
      static_cast<const block_q4_1*>(w), static_cast<const block_q8_1*>(a), n / QK_LEGACY,
      [](const block_q4_1& b) { return nibbles32(b.qs); });
}

float dot_q5_1_q8_1__avx2(const void* w, const void* a, int64_t n) {
  return x86_dot32::dot32<Avx2Products, 0, true>(
      static_cast<const block_q5_1*>(w), static_cast<const block_q8_1*>(a), n / QK_LEGACY,
      [](const block_q5_1& b) { return five_bit_codes(b.qs, b.qh); });
}

// ---------------------------------------------------------------- multi-row entry points
void dot_rows_q4_0_q8_0__avx2(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  x86_dot32::dot32_rows<Avx2Products, 8, false, block_q4_0>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [](const block_q4_0& b) { return nibbles32(b.qs); },
      [](const block_q4_0& b0, const block_q4_0& b1, __m256i& lo, __m256i& hi) {
        x86_dot32::nibble_pair(b0.qs, b1.qs, lo, hi);
      });
}

void dot_rows_q4_1_q8_1__avx2(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  x86_dot32::dot32_rows<Avx2Products, 0, true, block_q4_1>(
      w, row_bytes, static_cast<const block_q8_1*>(a), n / QK_LEGACY, rows, y,
      [](const block_q4_1& b) { return nibbles32(b.qs); },
      [](const block_q4_1& b0, const block_q4_1& b1, __m256i& lo, __m256i& hi) {
        x86_dot32::nibble_pair(b0.qs, b1.qs, lo, hi);
      });
}

void dot_rows_q5_0_q8_0__avx2(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  x86_dot32::dot32_rows<Avx2Products, 16, false, block_q5_0>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [](const block_q5_0& b) { return five_bit_codes(b.qs, b.qh); },
      [](const block_q5_0& b0, const block_q5_0& b1, __m256i& lo, __m256i& hi) {
        five_bit_pair(b0.qs, b0.qh, b1.qs, b1.qh, lo, hi);
      });
}

void dot_rows_q5_1_q8_1__avx2(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  x86_dot32::dot32_rows<Avx2Products, 0, true, block_q5_1>(
      w, row_bytes, static_cast<const block_q8_1*>(a), n / QK_LEGACY, rows, y,
      [](const block_q5_1& b) { return five_bit_codes(b.qs, b.qh); },
      [](const block_q5_1& b0, const block_q5_1& b1, __m256i& lo, __m256i& hi) {
        five_bit_pair(b0.qs, b0.qh, b1.qs, b1.qh, lo, hi);
      });
}

}  // namespace lowbit::kernels
