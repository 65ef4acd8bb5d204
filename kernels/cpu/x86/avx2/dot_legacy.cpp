// AVX2 dot products of the 32-element formats with Q8_0 / Q8_1 activations, one row or
// a group of rows at a time (the multi-row family), all on the shared x86 scheme of
// kernels/cpu/x86/dot32.hpp, so each block's integer sum is exact (as in the scalar
// reference) and the float operations are the AVX-512 VNNI variants' own. Q4_0, Q4_1,
// Q5_0 and Q5_1 take unsigned codes (at most 31) and vpmaddubsw + vpmaddwd for the
// products; Q8_0 and IQ4_NL, whose unsigned codes (q + 128) would saturate vpmaddubsw,
// keep their signed codes and move the sign onto the activations.
#include "target.hpp"
// (target.hpp first: it checks the compile flags.)
#include <cstring>

#include "codes.hpp"
#include "cpu/x86/dot32.hpp"
#include "dot_common.hpp"
#include "lists/declarations.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

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

// The same for signed codes x (|x| <= 128) against Q8_0 activations (|a| <= 127): x's
// sign moves onto a so vpmaddubsw sees |x| as unsigned. A 16-bit sum of two products
// can reach 2 * 128 * 127, so a pair's two halves are widened before they are added.
struct Avx2SignedProducts {
  static __m256i dot4(__m256i acc, __m256i x, __m256i a) { return _mm256_add_epi32(acc, dot_i8_i8(x, a)); }
  static __m256i dot4_pair(__m256i lo, __m256i alo, __m256i hi, __m256i ahi) {
    return _mm256_add_epi32(dot_i8_i8(lo, alo), dot_i8_i8(hi, ahi));
  }
};

// A Q8_0 pair: the first 16 codes of two blocks side by side, then their last 16.
inline void q8_pair(const int8_t* qs0, const int8_t* qs1, __m256i& lo, __m256i& hi) {
  lo = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(qs1), reinterpret_cast<const __m128i*>(qs0));
  hi = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(qs1 + 16), reinterpret_cast<const __m128i*>(qs0 + 16));
}

inline __m256i iq4_nl_book() {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
}

// Q5_0 / Q5_1 in the pair layout: the nibbles of two blocks plus their fifth bits.
// Both registers' bits come from one broadcast of the two blocks' qh words (qword
// bytes 0..3 block 0's, 4..7 block 1's): byte e of lo takes bit e % 8 of qword byte
// e / 8 in the low lane and 4 + e / 8 in the high one (elements 0..15 of each block),
// hi the bytes two further on (elements 16..31), then 16 where the bit is set.
inline void five_bit_pair(const uint8_t* qs0, const uint8_t* qh0, const uint8_t* qs1, const uint8_t* qh1,
                          __m256i& lo, __m256i& hi) {
  uint32_t h0, h1;
  std::memcpy(&h0, qh0, 4);
  std::memcpy(&h1, qh1, 4);
  const __m256i both = _mm256_set1_epi64x(static_cast<int64_t>(h0 | static_cast<uint64_t>(h1) << 32));
  x86_dot32::nibble_pair(qs0, qs1, lo, hi);
  lo = _mm256_or_si256(lo, sixteen_where(both, _mm256_set_epi64x(0x0505050505050505LL, 0x0404040404040404LL,
                                                                  0x0101010101010101LL, 0x0000000000000000LL)));
  hi = _mm256_or_si256(hi, sixteen_where(both, _mm256_set_epi64x(0x0707070707070707LL, 0x0606060606060606LL,
                                                                  0x0303030303030303LL, 0x0202020202020202LL)));
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
  return x86_dot32::dot32<Avx2SignedProducts, 0, false>(
      static_cast<const block_q8_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
      [](const block_q8_0& b) { return load256(b.qs); });
}

float dot_iq4_nl_q8_0__avx2(const void* w, const void* a, int64_t n) {
  const __m256i book = iq4_nl_book();
  return x86_dot32::dot32<Avx2SignedProducts, 0, false>(
      static_cast<const block_iq4_nl*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
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

void dot_rows_q8_0_q8_0__avx2(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  x86_dot32::dot32_rows<Avx2SignedProducts, 0, false, block_q8_0>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [](const block_q8_0& b) { return load256(b.qs); },
      [](const block_q8_0& b0, const block_q8_0& b1, __m256i& lo, __m256i& hi) { q8_pair(b0.qs, b1.qs, lo, hi); });
}

void dot_rows_iq4_nl_q8_0__avx2(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  const __m256i book = iq4_nl_book();
  x86_dot32::dot32_rows<Avx2SignedProducts, 0, false, block_iq4_nl>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [book](const block_iq4_nl& b) { return _mm256_shuffle_epi8(book, nibbles32(b.qs)); },
      [book](const block_iq4_nl& b0, const block_iq4_nl& b1, __m256i& lo, __m256i& hi) {
        x86_dot32::nibble_pair(b0.qs, b1.qs, lo, hi);
        lo = _mm256_shuffle_epi8(book, lo);
        hi = _mm256_shuffle_epi8(book, hi);
      });
}

}  // namespace lowbit::kernels
