// AVX-512 VNNI dot products of every integer format. What VNNI adds over
// kernels/cpu/x86/avx512/dot.cpp: vpdpwssd folds the K-quants' 16-bit sub-block scale
// multiply and the int32 accumulation into one instruction (madd + add), and vpdpbusd
// multiplies unsigned codes by signed activations four at a time straight into int32
// (Q2_K through a per-byte table of scale x code, the 32-element formats with their
// offset taken off by a second vpdpbusd). Every block's integer sum is still exact
// (the same products as the scalar reference, summed in int32); docs/kernels.md
// describes each scheme, docs/benchmarks.md what each costs on Zen 4.
#include "cpu/x86/avx512vnni/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/kquant_scales.hpp"
#include "cpu/x86/dot32.hpp"
#include "cpu/x86/q3k_scales.hpp"
#include "lists/declarations.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m512i broadcast256(const void* p) { return _mm512_broadcast_i64x4(load256(p)); }

// A 512-bit register of 64 codes covers four 16-element sub-blocks, and maddubs
// turns it into 32 pair sums, eight per 128-bit lane: lane L is sub-block 4z + L of
// the z-th register. These word indices pick each lane's scale out of the sixteen
// 16-bit scales (one vpermw per register, instead of four broadcasts).
struct ScalePickers {
  __m512i z[4];
  ScalePickers() {
    for (int r = 0; r < 4; ++r) {
      alignas(64) int16_t idx[32];
      for (int w = 0; w < 32; ++w) idx[w] = static_cast<int16_t>(4 * r + w / 8);
      z[r] = _mm512_load_si512(idx);
    }
  }
};

// Per-word right shifts for the 2-bit fields of 32 bytes broadcast to both halves:
// elements 128h + 32k + l sit at bits 2k of qs[32h + l], and one register takes k
// and k + 1 (its low and high half).
inline __m512i two_shifts(int k) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(2 * k)),
                            _mm256_set1_epi16(static_cast<int16_t>(2 * k + 2)), 1);
}

}  // namespace

float dot_q3_K_q8_K__avx512vnni(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q3_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  const ScalePickers pick;
  const __m512i m2 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
  const __m512i shifts[2] = {two_shifts(0), two_shifts(2)};
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const __m256i sc16 = x86_q3k::scales16(w[i]);
    const __m512i sc = _mm512_castsi256_si512(sc16);  // only words 0..15 are picked
    // The codes are taken as q + 4 (0..7, unsigned for maddubs); the 4 comes off in
    // integers through Q8_K's exact 16-element sums: start from -4 * sum_j s_j bsum_j.
    __m512i isum = _mm512_zextsi256_si512(
        _mm256_madd_epi16(load256(a[i].bsums), _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sc16, 2))));
    const __m512i hmask = broadcast256(w[i].hmask);
    for (int h = 0; h < 2; ++h) {
      const __m512i bits = broadcast256(w[i].qs + 32 * h);
      for (int kk = 0; kk < 2; ++kk) {
        const int k = 2 * kk;
        const __m512i low = _mm512_and_si512(_mm512_srlv_epi16(bits, shifts[kk]), m2);
        // The high bit of element 128h + 32k + l is bit 4h + k of hmask[l].
        const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << (4 * h + k))),
                                               _mm256_set1_epi8(static_cast<char>(1 << (4 * h + k + 1))), 1);
        const __m512i q = _mm512_mask_add_epi8(low, _mm512_test_epi8_mask(hmask, bit), low, four);
        const __m512i pairs = _mm512_maddubs_epi16(q, _mm512_loadu_si512(a[i].qs + 128 * h + 32 * k));
        isum = _mm512_dpwssd_epi32(isum, pairs, _mm512_permutexvar_epi16(pick.z[2 * h + kk], sc));
      }
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(a[i].d * h2f(w[i].d)), _mm512_cvtepi32_ps(isum), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

float dot_q2_K_q8_K__avx512vnni(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q2_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  // Q2_K's scale times code fits a byte (15 * 3), so each byte of weights is looked up
  // as s_j * q in a per-sub-block table [0, s, 2s, 3s] and one vpdpbusd does the rest:
  // no maddubs, no 16-bit scale multiply. A register's 128-bit lane L is sub-block
  // 4z + L (z = the register), so the lane's 16-byte table holds the four tables of
  // sub-blocks L, L + 4, L + 8, L + 12 and the shuffle index is q + 4z.
  alignas(64) int32_t spread_idx[16];
  for (int d = 0; d < 16; ++d) spread_idx[d] = d / 4 + 4 * (d % 4);
  const __m512i spread = _mm512_load_si512(spread_idx);
  const __m512i multiples = _mm512_set1_epi32(0x03020100);
  const __m512i m2 = _mm512_set1_epi8(3);
  const __m512i shifts[2] = {two_shifts(0), two_shifts(2)};
  const __m128i m4 = _mm_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    // scales[j]: low nibble the scale, high nibble the min of sub-block j.
    const __m128i packed = load128(w[i].scales);
    const __m512i tables = _mm512_permutexvar_epi32(
        spread, _mm512_mullo_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(packed, m4)), multiples));
    const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
    __m512i isum = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i bits = broadcast256(w[i].qs + 32 * h);
      for (int kk = 0; kk < 2; ++kk) {
        const int z = 2 * h + kk;
        // (bits >> shift) & 3 | 4z in one ternary-logic operation.
        const __m512i index = _mm512_ternarylogic_epi32(_mm512_srlv_epi16(bits, shifts[kk]), m2,
                                                        _mm512_set1_epi8(static_cast<char>(4 * z)), 0xEA);
        isum = _mm512_dpbusd_epi32(isum, _mm512_shuffle_epi8(tables, index),
                                   _mm512_loadu_si512(a[i].qs + 128 * h + 64 * kk));
      }
    }
    // The float terms in 256 bits: dall * isum - dmin * sum_j m_j bsum_j.
    const __m256i isum8 = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
    const __m256i summs = _mm256_madd_epi16(load256(a[i].bsums), mins);
    const float dall = a[i].d * h2f(w[i].d), dmin = a[i].d * h2f(w[i].dmin);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(isum8), acc);
    acc = _mm256_fnmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(summs), acc);
  }
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

namespace {

// Q4_K / Q5_K: eight 32-element sub-blocks. A register holds sub-blocks s (low half)
// and s + 2 (high half); these word indices pick their scales out of the eight.
struct K4Pickers {
  __m512i z[4];  // s = 0, 1, 4, 5
  K4Pickers() {
    const int first[4] = {0, 1, 4, 5};
    for (int r = 0; r < 4; ++r) {
      alignas(64) int16_t idx[32];
      for (int w = 0; w < 32; ++w) idx[w] = static_cast<int16_t>(first[r] + (w < 16 ? 0 : 2));
      z[r] = _mm512_load_si512(idx);
    }
  }
};

template <class Block, bool kFifthBit>
float dot_k4(const Block* w, const block_q8_K* a, int64_t blocks) {
  const K4Pickers pick;
  __m512 acc = _mm512_setzero_ps();
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const bool prefetch = x86_prefetch::worth_prefetching(static_cast<size_t>(blocks) * sizeof(Block));
  for (int64_t i = 0; i < blocks; ++i) {
    if (prefetch) x86_prefetch::prefetch_ahead<sizeof(Block)>(w + i);
    alignas(8) uint8_t sc[8], mins[8];
    unpack_scales_mins_k4(w[i].scales, sc, mins);
    const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc))));
    __m512i isum = _mm512_setzero_si512();
    // qs bytes 64m..64m+63: low nibbles are sub-blocks 4m (bytes 0..31) and 4m+2
    // (bytes 32..63), high nibbles 4m+1 and 4m+3.
    for (int m = 0; m < 2; ++m) {
      const __m512i bytes = _mm512_loadu_si512(w[i].qs + 64 * m);
      __m512i lo = _mm512_and_si512(bytes, m4);
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), m4);
      if constexpr (kFifthBit) {
        // Sub-block j's fifth bit is bit j of qh[l].
        const __m512i qh = broadcast256(w[i].qh);
        const __m512i one = _mm512_set1_epi8(1);
        const __m512i lo_bit = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << (4 * m))),
                                                  _mm256_set1_epi8(static_cast<char>(1 << (4 * m + 2))), 1);
        lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qh, lo_bit), lo, _mm512_slli_epi16(one, 4));
        hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qh, _mm512_add_epi8(lo_bit, lo_bit)), hi,
                                  _mm512_slli_epi16(one, 4));
      }
      const int s = 4 * m;
      const __m512i alo = _mm512_inserti64x4(_mm512_castsi256_si512(load256(a[i].qs + 32 * s)), load256(a[i].qs + 32 * (s + 2)), 1);
      const __m512i ahi = _mm512_inserti64x4(_mm512_castsi256_si512(load256(a[i].qs + 32 * (s + 1))), load256(a[i].qs + 32 * (s + 3)), 1);
      isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(lo, alo), _mm512_permutexvar_epi16(pick.z[2 * m], sc16));
      isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(hi, ahi), _mm512_permutexvar_epi16(pick.z[2 * m + 1], sc16));
    }
    // sum_j m_j * (bsums[2j] + bsums[2j+1]) in eight lanes.
    const __m256i pair_sums = _mm256_madd_epi16(load256(a[i].bsums), _mm256_set1_epi16(1));
    const __m256i m32 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mins)));
    const __m256i summs = _mm256_mullo_epi32(pair_sums, m32);
    const float dall = a[i].d * h2f(w[i].d), dmin = a[i].d * h2f(w[i].dmin);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(dall), _mm512_cvtepi32_ps(isum), acc);
    acc = _mm512_fnmadd_ps(_mm512_set1_ps(dmin), _mm512_cvtepi32_ps(_mm512_zextsi256_si512(summs)), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

}  // namespace

float dot_q4_K_q8_K__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot_k4<block_q4_K, false>(static_cast<const block_q4_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
}

float dot_q5_K_q8_K__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot_k4<block_q5_K, true>(static_cast<const block_q5_K*>(w), static_cast<const block_q8_K*>(a), n / QK_K);
}

float dot_q6_K_q8_K__avx512vnni(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q6_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  const ScalePickers pick;
  __m512 acc = _mm512_setzero_ps();
  const __m512i m4 = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
  // Element k's two high bits (bits 2k of qh) moved to bits 4..5: k = 0 | 1 left by 4
  // and 2, k = 2 | 3 right by 0 and 2.
  const __m512i left01 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  const __m512i right23 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
  const bool prefetch = x86_prefetch::worth_prefetching(static_cast<size_t>(n / QK_K) * sizeof(block_q6_K));
  for (int64_t i = 0; i < n / QK_K; ++i) {
    if (prefetch) x86_prefetch::prefetch_ahead<sizeof(block_q6_K)>(w + i);
    const __m256i sc16 = _mm256_cvtepi8_epi16(load128(w[i].scales));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    // Codes are q + 32 (0..63); start from -32 * sum_j s_j bsum_j.
    __m512i isum = _mm512_zextsi256_si512(_mm256_madd_epi16(load256(a[i].bsums), _mm256_slli_epi16(_mm256_sub_epi16(_mm256_setzero_si256(), sc16), 5)));
    for (int h = 0; h < 2; ++h) {
      // ql[64h..64h+63]: bytes 0..31 hold elements 32k+l for k = 0 (low nibble) and 2
      // (high), bytes 32..63 those of k = 1 and 3; qh[32h + l] holds their high bits
      // at bits 2k.
      const __m512i ql = _mm512_loadu_si512(w[i].ql + 64 * h);
      const __m512i qh = broadcast256(w[i].qh + 32 * h);
      const __m512i h01 = _mm512_and_si512(_mm512_sllv_epi16(qh, left01), bits45);
      const __m512i h23 = _mm512_and_si512(_mm512_srlv_epi16(qh, right23), bits45);
      const __m512i q01 = _mm512_or_si512(_mm512_and_si512(ql, m4), h01);
      const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), h23);
      isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q01, _mm512_loadu_si512(a[i].qs + 128 * h)),
                                 _mm512_permutexvar_epi16(pick.z[2 * h], sc));
      isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q23, _mm512_loadu_si512(a[i].qs + 128 * h + 64)),
                                 _mm512_permutexvar_epi16(pick.z[2 * h + 1], sc));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(a[i].d * h2f(w[i].d)), _mm512_cvtepi32_ps(isum), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// ---------------------------------------------------------------- 32-element formats
// One block per 256-bit register (on Zen 4 a 512-bit integer instruction costs two
// 256-bit ones, and pairing blocks into one register costs a cross-lane insert per
// pair), in the scheme of kernels/cpu/x86/dot32.hpp: codes as unsigned bytes
// u = q + offset, the products by vpdpbusd (exact in int32, u up to 255), the float
// work for eight blocks at once. Measured in cache on Zen 4, of a Q4_0 row's 123 ns
// the fp16 scales take about 25 and the offset's vpdpbusd and subtraction about 27;
// the multi-row kernels share both across rows (docs/benchmarks.md).
namespace {

using x86_dot32::dot32;
using x86_dot32::dot32_rows;
using x86_dot32::hsum;
using x86_dot32::nibble_pair;
using x86_dot32::nibbles;

struct VnniProducts {
  // acc + per int32 lane the sum of its four u * a products.
  static __m256i dot4(__m256i acc, __m256i u, __m256i a) { return _mm256_dpbusd_epi32(acc, u, a); }
  static __m256i dot4_pair(__m256i lo, __m256i alo, __m256i hi, __m256i ahi) {
    return _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), lo, alo), hi, ahi);
  }
};

// Q5_0 / Q5_1: bit e of the little-endian u32 qh is element e's fifth bit.
inline __m256i five_bits(const uint8_t* qs, const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  const __m256i nib = nibbles(qs);
  return _mm256_mask_add_epi8(nib, _cvtu32_mask32(h), nib, _mm256_set1_epi8(16));
}

// The pair layout's fifth bits: elements 0..15 of both blocks go with lo, 16..31
// with hi.
inline void five_bit_pair(const uint8_t* qs0, const uint8_t* qh0, const uint8_t* qs1, const uint8_t* qh1,
                          __m256i& lo, __m256i& hi) {
  uint32_t mlo, mhi;
  x86_dot32::pair_masks(qh0, qh1, mlo, mhi);
  nibble_pair(qs0, qs1, lo, hi);
  const __m256i sixteen = _mm256_set1_epi8(16);
  lo = _mm256_mask_add_epi8(lo, _cvtu32_mask32(mlo), lo, sixteen);
  hi = _mm256_mask_add_epi8(hi, _cvtu32_mask32(mhi), hi, sixteen);
}

}  // namespace

float dot_q4_0_q8_0__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot32<VnniProducts, 8, false>(
      static_cast<const block_q4_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
      [](const block_q4_0& b) { return nibbles(b.qs); });
}

float dot_q5_0_q8_0__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot32<VnniProducts, 16, false>(
      static_cast<const block_q5_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
      [](const block_q5_0& b) { return five_bits(b.qs, b.qh); });
}

float dot_q8_0_q8_0__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot32<VnniProducts, 128, false>(
      static_cast<const block_q8_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
      [](const block_q8_0& b) { return _mm256_xor_si256(load256(b.qs), _mm256_set1_epi8(-128)); });
}

namespace {
// IQ4_NL's code book + 128: unsigned bytes 1..241, in both 128-bit lanes.
inline __m256i iq4_nl_book() {
  alignas(16) uint8_t book[16];
  for (int k = 0; k < 16; ++k) book[k] = static_cast<uint8_t>(kIq4nlValues[k] + 128);
  return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(book)));
}
}  // namespace

float dot_iq4_nl_q8_0__avx512vnni(const void* w, const void* a, int64_t n) {
  const __m256i table = iq4_nl_book();
  return dot32<VnniProducts, 128, false>(
      static_cast<const block_iq4_nl*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
      [table](const block_iq4_nl& b) { return _mm256_shuffle_epi8(table, nibbles(b.qs)); });
}

float dot_q4_1_q8_1__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot32<VnniProducts, 0, true>(
      static_cast<const block_q4_1*>(w), static_cast<const block_q8_1*>(a), n / QK_LEGACY,
      [](const block_q4_1& b) { return nibbles(b.qs); });
}

float dot_q5_1_q8_1__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot32<VnniProducts, 0, true>(
      static_cast<const block_q5_1*>(w), static_cast<const block_q8_1*>(a), n / QK_LEGACY,
      [](const block_q5_1& b) { return five_bits(b.qs, b.qh); });
}

float dot_iq4_xs_q8_K__avx512vnni(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_iq4_xs*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  const __m256i book = _mm256_broadcastsi128_si256(load128(kIq4nlValues));
  const __m128i m4 = _mm_set1_epi8(0x0f);
  // Word j of each 128-bit lane broadcast over the lane, for j = 0..7.
  __m256i pick[8];
  for (int j = 0; j < 8; ++j) pick[j] = _mm256_set1_epi16(static_cast<int16_t>((2 * j) | (2 * j + 1) << 8));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / QK_K; ++i) {
    // The eight 6-bit scales, in registers: low nibbles from scales_l (byte j / 2,
    // nibble j % 2), high two bits from bits 2j of scales_h; stored + 32.
    uint32_t l4;
    std::memcpy(&l4, w[i].scales_l, 4);
    const __m128i sl = _mm_cvtsi32_si128(static_cast<int>(l4));
    const __m128i low = _mm_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_and_si128(sl, m4), _mm_and_si128(_mm_srli_epi16(sl, 4), m4)));
    const __m128i high = _mm_and_si128(_mm_srlv_epi16(_mm_set1_epi16(static_cast<int16_t>(w[i].scales_h)),
                                                      _mm_set_epi16(14, 12, 10, 8, 6, 4, 2, 0)),
                                       _mm_set1_epi16(3));
    const __m256i ls = _mm256_broadcastsi128_si256(
        _mm_sub_epi16(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi16(32)));
    // Signed codes times signed activations: the codes' sign moves onto the
    // activations (|code| <= 127, so a maddubs pair sum stays below 2^15), and
    // vpdpwssd multiplies the pair sums by the sub-block's scale and accumulates.
    __m256i isum = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i x = _mm256_shuffle_epi8(book, nibbles(w[i].qs + 16 * j));
      const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(load256(a[i].qs + 32 * j), x));
      isum = _mm256_dpwssd_epi32(isum, pairs, _mm256_shuffle_epi8(ls, pick[j]));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(a[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(isum), acc);
  }
  return hsum(acc);
}

// ---------------------------------------------------------------- multi-row entry points
void dot_rows_q4_0_q8_0__avx512vnni(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  dot32_rows<VnniProducts, 8, false, block_q4_0>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [](const block_q4_0& b) { return nibbles(b.qs); },
      [](const block_q4_0& b0, const block_q4_0& b1, __m256i& lo, __m256i& hi) { nibble_pair(b0.qs, b1.qs, lo, hi); });
}

void dot_rows_q4_1_q8_1__avx512vnni(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  dot32_rows<VnniProducts, 0, true, block_q4_1>(
      w, row_bytes, static_cast<const block_q8_1*>(a), n / QK_LEGACY, rows, y,
      [](const block_q4_1& b) { return nibbles(b.qs); },
      [](const block_q4_1& b0, const block_q4_1& b1, __m256i& lo, __m256i& hi) { nibble_pair(b0.qs, b1.qs, lo, hi); });
}

void dot_rows_q5_0_q8_0__avx512vnni(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  dot32_rows<VnniProducts, 16, false, block_q5_0>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [](const block_q5_0& b) { return five_bits(b.qs, b.qh); },
      [](const block_q5_0& b0, const block_q5_0& b1, __m256i& lo, __m256i& hi) {
        five_bit_pair(b0.qs, b0.qh, b1.qs, b1.qh, lo, hi);
      });
}

void dot_rows_q5_1_q8_1__avx512vnni(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  dot32_rows<VnniProducts, 0, true, block_q5_1>(
      w, row_bytes, static_cast<const block_q8_1*>(a), n / QK_LEGACY, rows, y,
      [](const block_q5_1& b) { return five_bits(b.qs, b.qh); },
      [](const block_q5_1& b0, const block_q5_1& b1, __m256i& lo, __m256i& hi) {
        five_bit_pair(b0.qs, b0.qh, b1.qs, b1.qh, lo, hi);
      });
}

void dot_rows_q8_0_q8_0__avx512vnni(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  const __m256i flip = _mm256_set1_epi8(-128);
  dot32_rows<VnniProducts, 128, false, block_q8_0>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [flip](const block_q8_0& b) { return _mm256_xor_si256(load256(b.qs), flip); },
      [flip](const block_q8_0& b0, const block_q8_0& b1, __m256i& lo, __m256i& hi) {
        lo = _mm256_xor_si256(_mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(b1.qs),
                                                  reinterpret_cast<const __m128i*>(b0.qs)), flip);
        hi = _mm256_xor_si256(_mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(b1.qs + 16),
                                                  reinterpret_cast<const __m128i*>(b0.qs + 16)), flip);
      });
}

void dot_rows_iq4_nl_q8_0__avx512vnni(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  const __m256i table = iq4_nl_book();
  dot32_rows<VnniProducts, 128, false, block_iq4_nl>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [table](const block_iq4_nl& b) { return _mm256_shuffle_epi8(table, nibbles(b.qs)); },
      [table](const block_iq4_nl& b0, const block_iq4_nl& b1, __m256i& lo, __m256i& hi) {
        nibble_pair(b0.qs, b1.qs, lo, hi);
        lo = _mm256_shuffle_epi8(table, lo);
        hi = _mm256_shuffle_epi8(table, hi);
      });
}

}  // namespace lowbit::kernels
