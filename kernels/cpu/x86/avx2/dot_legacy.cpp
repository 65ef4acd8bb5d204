// AVX2 dot products of the 32-element formats with Q8_0 / Q8_1 activations. Each
// block's integer sum is exact (as in the scalar reference); the per-block float
// terms accumulate in eight lanes.
#include "target.hpp"
// (target.hpp first: it checks the compile flags.)
#include "codes.hpp"
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

// The formats with a min (Q4_1, Q5_1): sum += (d_w d_a) * isum + m_w * s_a.
template <class Block, class Codes>
float dot_with_min(const Block* w, const block_q8_1* a, int64_t blocks, Codes codes) {
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t i = 0; i < blocks; ++i) {
    const __m256i isum = dot_u8_i8(codes(w[i]), load256(a[i].qs));
    acc = _mm256_fmadd_ps(block_scale(w[i].d, a[i].d), _mm256_cvtepi32_ps(isum), acc);
    mins += h2f(w[i].m) * h2f(a[i].s);
  }
  return hsum(acc) + mins;
}

}  // namespace

float dot_q4_0_q8_0__avx2(const void* w, const void* a, int64_t n) {
  return dot_signed(static_cast<const block_q4_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                    [](const block_q4_0& b) { return _mm256_sub_epi8(nibbles32(b.qs), _mm256_set1_epi8(8)); });
}

float dot_q5_0_q8_0__avx2(const void* w, const void* a, int64_t n) {
  return dot_signed(static_cast<const block_q5_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                    [](const block_q5_0& b) { return _mm256_sub_epi8(five_bit_codes(b.qs, b.qh), _mm256_set1_epi8(16)); });
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
  return dot_with_min(static_cast<const block_q4_1*>(w), static_cast<const block_q8_1*>(a), n / QK_LEGACY,
                      [](const block_q4_1& b) { return nibbles32(b.qs); });
}

float dot_q5_1_q8_1__avx2(const void* w, const void* a, int64_t n) {
  return dot_with_min(static_cast<const block_q5_1*>(w), static_cast<const block_q8_1*>(a), n / QK_LEGACY,
                      [](const block_q5_1& b) { return five_bit_codes(b.qs, b.qh); });
}

}  // namespace lowbit::kernels
