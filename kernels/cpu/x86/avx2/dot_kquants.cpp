// AVX2 dot products of the 256-element formats (Q2_K..Q6_K, IQ4_XS) with Q8_K
// activations. Codes are multiplied as unsigned bytes (maddubs) where the format's
// codes carry an offset (Q3_K's -4, Q6_K's -32): the offset times Q8_K's exact
// 16-element sums (bsums) is subtracted in integers, so each block's integer sum
// equals the scalar reference's. Sub-block scales are unpacked in registers and picked
// per register by one shuffle or permute (scalar unpacking through memory and
// per-sub-block broadcasts made Q3_K 0.63x and Q6_K 0.75x ggml's speed on Zen 3).
#include "target.hpp"
// (target.hpp first: it checks the compile flags.)
#include <cstddef>
#include <cstring>

#include "cpu/x86/prefetch.hpp"
#include "cpu/x86/q3k_scales.hpp"
#include "dot_common.hpp"
#include "common/kquant_scales.hpp"
#include "lists/declarations.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

inline __m256i bytes_mask(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }

// The per-lane scales of two consecutive 16-element sub-blocks j, j + 1 (j even)
// picked out of `half`, eight 16-bit scales (sub-blocks 8h .. 8h + 7) repeated in
// both 128-bit lanes: one byte shuffle instead of two scalar broadcasts.
inline __m256i pick_two_scales(__m256i half, int j) {
  const int b = 2 * (j % 8);  // byte offset of scale j within the half
  const __m128i lo = _mm_set1_epi16(static_cast<int16_t>(b | (b + 1) << 8));
  const __m128i hi = _mm_set1_epi16(static_cast<int16_t>((b + 2) | (b + 3) << 8));
  return _mm256_shuffle_epi8(half, _mm256_set_m128i(hi, lo));
}

// sum_j scale16[j] * bsums[j] over Q8_K's sixteen 16-element sums, in eight lanes.
inline __m256i scaled_bsums(const block_q8_K& a, __m256i scales16) {
  return _mm256_madd_epi16(load256(a.bsums), scales16);
}

// Sixteen signed 8-bit scales widened to 16 bits.
inline __m256i widen_scales(const int8_t* sc) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
}

// Q2_K / Q3_K: element 128h + 32k + l has its 2-bit code at bits 2k of qs[32h + l]
// and belongs to the 16-element sub-block j = 8h + 2k + l / 16; one register of 32
// codes is sub-blocks j (low lane) and j + 1 (high lane).
inline __m256i two_bit_codes(__m256i bits, int k) {
  return _mm256_and_si256(k == 0 ? bits : _mm256_srli_epi16(bits, 2 * k), bytes_mask(3));
}

// The bytes' bit `from` moved to bit `to` (the bits of each byte stay in it: 16-bit
// shifts by at most 7 move nothing across a byte that the mask keeps).
inline __m256i move_bit(__m256i v, int from, int to) {
  const __m256i shifted = from > to ? _mm256_srli_epi16(v, from - to) : from < to ? _mm256_slli_epi16(v, to - from) : v;
  return _mm256_and_si256(shifted, bytes_mask(1 << to));
}

// The sixteen 16-bit scales of one half (sub-blocks 8h .. 8h + 7) in both 128-bit
// lanes, for pick_two_scales.
inline __m256i scales_half(__m256i scales16, int h) {
  return h == 0 ? _mm256_permute2x128_si256(scales16, scales16, 0x00) : _mm256_permute2x128_si256(scales16, scales16, 0x11);
}

}  // namespace

float dot_q2_K_q8_K__avx2(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q2_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  const __m128i m4 = _mm_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    // scales[j]: low nibble the scale, high nibble the min of sub-block j.
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i].scales));
    const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
    const __m256i m = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i half = scales_half(sc, h);
      const __m256i bits = load256(w[i].qs + 32 * h);
      for (int k = 0; k < 4; ++k) {
        const __m256i p = _mm256_maddubs_epi16(two_bit_codes(bits, k), load256(a[i].qs + 128 * h + 32 * k));
        isum = _mm256_add_epi32(isum, scale_pairs(p, pick_two_scales(half, 8 * h + 2 * k)));
      }
    }
    const float dall = a[i].d * h2f(w[i].d), dmin = a[i].d * h2f(w[i].dmin);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(isum), acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(scaled_bsums(a[i], m)), acc);
  }
  return hsum(acc);
}

float dot_q3_K_q8_K__avx2(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q3_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m256i scales16 = x86_q3k::scales16(w[i]);
    // The codes are taken as q + 4 (0..7, unsigned for maddubs); the 4 comes off in
    // integers through Q8_K's exact 16-element sums: start from -4 * sum_j s_j bsum_j.
    __m256i isum = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(scaled_bsums(a[i], scales16), 2));
    const __m256i hmask = load256(w[i].hmask);
    for (int h = 0; h < 2; ++h) {
      const __m256i half = scales_half(scales16, h);
      const __m256i bits = load256(w[i].qs + 32 * h);
      for (int k = 0; k < 4; ++k) {
        // low + 4 * high = q + 4; the high bit is bit 4h + k of hmask[l].
        const __m256i q = _mm256_or_si256(two_bit_codes(bits, k), move_bit(hmask, 4 * h + k, 2));
        const __m256i p = _mm256_maddubs_epi16(q, load256(a[i].qs + 128 * h + 32 * k));
        isum = _mm256_add_epi32(isum, scale_pairs(p, pick_two_scales(half, 8 * h + 2 * k)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum(acc);
}

namespace {

// Q4_K and Q5_K share everything but the fifth bit.
template <class Block, bool kFifthBit>
float dot_k4(const Block* w, const block_q8_K* a, int64_t blocks) {
  __m256 acc = _mm256_setzero_ps();
  const bool prefetch = x86_prefetch::worth_prefetching(static_cast<size_t>(blocks) * sizeof(Block));
  for (int64_t i = 0; i < blocks; ++i) {
    if (prefetch) x86_prefetch::prefetch_ahead<sizeof(Block)>(w + i);
    uint8_t sc[8], mins[8];
    unpack_scales_mins_k4(w[i].scales, sc, mins);
    __m256i isum = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) {
      const __m256i bytes = load256(w[i].qs + 32 * k);
      __m256i lo = _mm256_and_si256(bytes, bytes_mask(0x0f));
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), bytes_mask(0x0f));
      if constexpr (kFifthBit) {
        const __m256i qh = load256(w[i].qh);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), bytes_mask(1)), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k + 1), bytes_mask(1)), 4));
      }
      const __m256i plo = _mm256_maddubs_epi16(lo, load256(a[i].qs + 64 * k));
      const __m256i phi = _mm256_maddubs_epi16(hi, load256(a[i].qs + 64 * k + 32));
      isum = _mm256_add_epi32(isum, scale_pairs(plo, _mm256_set1_epi16(sc[2 * k])));
      isum = _mm256_add_epi32(isum, scale_pairs(phi, _mm256_set1_epi16(sc[2 * k + 1])));
    }
    // sum_j m_j * (bsums[2j] + bsums[2j+1]), j = 0..7, in eight lanes.
    const __m256i pair_sums = _mm256_madd_epi16(load256(a[i].bsums), _mm256_set1_epi16(1));
    const __m256i m32 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mins)));
    const __m256i summs = _mm256_mullo_epi32(pair_sums, m32);
    const float dall = a[i].d * h2f(w[i].d), dmin = a[i].d * h2f(w[i].dmin);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(isum), acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(summs), acc);
  }
  return hsum(acc);
}

}  // namespace

float dot_q4_K_q8_K__avx2(const void* w, const void* a, int64_t n) {
  return dot_k4<block_q4_K, false>(static_cast<const block_q4_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
}

float dot_q5_K_q8_K__avx2(const void* w, const void* a, int64_t n) {
  return dot_k4<block_q5_K, true>(static_cast<const block_q5_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
}

float dot_q6_K_q8_K__avx2(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q6_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  const __m256i m4 = bytes_mask(0x0f);
  __m256 acc = _mm256_setzero_ps();
  const bool prefetch = x86_prefetch::worth_prefetching(static_cast<size_t>(n / QK_K) * sizeof(block_q6_K));
  for (int64_t i = 0; i < n / QK_K; ++i) {
    if (prefetch) x86_prefetch::prefetch_ahead<sizeof(block_q6_K)>(w + i);
    const __m256i scales16 = widen_scales(w[i].scales);
    // Codes are q + 32 (0..63); start from -32 * sum_j s_j bsum_j.
    __m256i isum = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(scaled_bsums(a[i], scales16), 5));
    for (int h = 0; h < 2; ++h) {
      const __m256i half = scales_half(scales16, h);
      // ql[64h..64h+31] holds elements 128h + l (low nibble) and 128h + 64 + l (high),
      // ql[64h+32..64h+63] elements 128h + 32 + l and 128h + 96 + l; qh[32h + l] their
      // two high bits at bits 2k (k = the element's 32-group), wanted at bits 4..5.
      const __m256i ql0 = load256(w[i].ql + 64 * h), ql1 = load256(w[i].ql + 64 * h + 32);
      const __m256i qh = load256(w[i].qh + 32 * h);
      const __m256i low[4] = {_mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                              _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                              _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4)};
      const __m256i high[4] = {_mm256_slli_epi16(qh, 4), _mm256_slli_epi16(qh, 2), qh, _mm256_srli_epi16(qh, 2)};
      for (int k = 0; k < 4; ++k) {
        const __m256i q = _mm256_or_si256(low[k], _mm256_and_si256(high[k], bytes_mask(0x30)));
        const __m256i p = _mm256_maddubs_epi16(q, load256(a[i].qs + 128 * h + 32 * k));
        isum = _mm256_add_epi32(isum, scale_pairs(p, pick_two_scales(half, 8 * h + 2 * k)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum(acc);
}

namespace {

// IQ4_XS's eight signed 6-bit scales as eight dwords, each holding its scale in both
// 16-bit halves (so one permute gives sub-block j's scale in sixteen words): the low
// nibble is nibble j of scales_l (a little-endian u32), the high two bits are bits
// 2j..2j+1 of scales_h, moved to bits 4..5.
inline __m256i iq4_xs_scales(const block_iq4_xs& b) {
  uint32_t l;
  std::memcpy(&l, b.scales_l, 4);
  const __m256i low = _mm256_and_si256(
      _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(l)), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
      _mm256_set1_epi32(0x0f));
  const __m256i high = _mm256_and_si256(
      _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(b.scales_h) << 4), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
      _mm256_set1_epi32(0x30));
  const __m256i biased = _mm256_or_si256(low, high);  // scale + 32, in 0..63
  return _mm256_sub_epi16(_mm256_or_si256(biased, _mm256_slli_epi32(biased, 16)), _mm256_set1_epi16(32));
}

}  // namespace

float dot_iq4_xs_q8_K__avx2(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_iq4_xs*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  const __m256i book = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m256i scales = iq4_xs_scales(w[i]);
    __m256i isum = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      // Sub-block j: low nibbles of qs[16j..16j+15] are elements 0..15, high 16..31.
      const __m256i x = _mm256_shuffle_epi8(book, x86_dot32::nibbles(w[i].qs + 16 * j));
      const __m256i y = load256(a[i].qs + 32 * j);
      const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
      isum = _mm256_add_epi32(isum, scale_pairs(pairs, _mm256_permutevar8x32_epi32(scales, _mm256_set1_epi32(j))));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum(acc);
}

}  // namespace lowbit::kernels
