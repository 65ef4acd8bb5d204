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

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/kquant_scales.hpp"
#include "lists/declarations.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m512i broadcast256(const void* p) { return _mm512_broadcast_i64x4(load256(p)); }

// Kernels that compute faster than one core reads memory (the multi-row 32-element
// kernels, Q4_K / Q5_K, Q6_K) prefetch their weights this far ahead into L2: the
// hardware prefetcher alone kept too few lines in flight (multi-row Q4_0 from memory
// on Zen 4, one thread: 14-17 GB/s without, 20-24 with 16 KiB into L2; 8 KiB, 32 KiB
// or into L1 were slower). The compute-bound ones (Q2_K, Q3_K, IQ4_XS, below the read
// ceiling even in cache) do not: the prefetches only cost them issue slots (Q2_K
// 13.2-13.7 -> 9.7-11.8 GB/s). docs/benchmarks.md has the measurements.
constexpr size_t kPrefetchBytes = 16384;

// Prefetches the cache lines of `bytes` bytes at p + kPrefetchBytes.
template <size_t bytes>
inline void prefetch_ahead(const void* p) {
  const char* c = static_cast<const char*>(p) + kPrefetchBytes;
  for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_T1);
}

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

// Q3_K's sixteen signed 6-bit scales as 16-bit words, from the 12 packed bytes without
// a trip through memory: the low nibbles sit in bytes 0..7 (scale j < 8 low, j >= 8
// high nibble of byte j % 8) and the high two bits in bits 2(j / 4) of byte 8 + j % 4,
// which is a per-dword rotate once the third dword is broadcast. The 16-byte load
// starts 4 bytes early (the end of qs), so it stays inside the block and the scale
// dwords u0, u1, u2 are its dwords 1, 2, 3 (a masked load of the 12 bytes was
// slightly slower on Zen 4: 118 against 116 ns per 4096-element row).
inline __m256i q3_K_scales16(const block_q3_K& b) {
  static_assert(offsetof(block_q3_K, scales) >= 4 && offsetof(block_q3_K, scales) + 12 <= sizeof(block_q3_K));
  const auto* base = reinterpret_cast<const unsigned char*>(&b);
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + offsetof(block_q3_K, scales) - 4));
  const __m128i u0u1 = _mm_shuffle_epi32(raw, _MM_SHUFFLE(2, 1, 2, 1));
  const __m128i u2 = _mm_shuffle_epi32(raw, _MM_SHUFFLE(3, 3, 3, 3));
  const __m128i low = _mm_and_si128(_mm_srlv_epi32(u0u1, _mm_set_epi32(4, 4, 0, 0)), _mm_set1_epi8(0x0f));
  // Dword r wants bits 2r..2r+1 of each byte of u2 at bits 4..5: rotate left by 4 - 2r.
  const __m128i high = _mm_and_si128(_mm_rolv_epi32(u2, _mm_set_epi32(30, 0, 2, 4)), _mm_set1_epi8(0x30));
  const __m128i biased = _mm_or_si128(low, high);
  return _mm256_cvtepi8_epi16(_mm_sub_epi8(biased, _mm_set1_epi8(32)));
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
    const __m256i sc16 = q3_K_scales16(w[i]);
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
  for (int64_t i = 0; i < blocks; ++i) {
    prefetch_ahead<sizeof(Block)>(w + i);
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
  for (int64_t i = 0; i < n / QK_K; ++i) {
    prefetch_ahead<sizeof(block_q6_K)>(w + i);
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
// 256-bit registers, one block each: on Zen 4 a 512-bit integer instruction costs two
// 256-bit ones, and pairing blocks into one register costs a cross-lane insert per
// pair that one block per register does not pay (measured: docs/benchmarks.md).
// Per block: the codes as unsigned bytes u = q + offset, two vpdpbusd (u * a and
// offset * a, the offset taken off in int32), and nothing else; the per-block float
// work (two fp16 conversions, a multiply, a broadcast, an FMA) is done for eight
// blocks at once after their int32 sums are reduced to one register. Measured in
// cache on Zen 4, of a Q4_0 row's 123 ns the fp16 scales take about 25 and the
// offset's vpdpbusd and subtraction about 27.
namespace {

// The 32 four-bit codes of a block (low nibbles elements 0..15, high 16..31).
inline __m256i nibbles(const uint8_t* qs) {
  const __m256i both = _mm256_broadcastsi128_si256(load128(qs));
  return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0f));
}

// Q5_0 / Q5_1: bit e of the little-endian u32 qh is element e's fifth bit.
inline __m256i five_bits(const uint8_t* qs, const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  const __m256i nib = nibbles(qs);
  return _mm256_mask_add_epi8(nib, _cvtu32_mask32(h), nib, _mm256_set1_epi8(16));
}

// Eight registers of eight int32 lanes -> their eight sums, in register order.
inline __m256i reduce8(const __m256i v[8]) {
  __m256i q[4];
  for (int p = 0; p < 4; ++p)
    q[p] = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2 * p], v[2 * p + 1]), _mm256_unpackhi_epi32(v[2 * p], v[2 * p + 1]));
  // Per 128-bit lane: [v0, v1, v2, v3] and [v4, .., v7], each a half's sum.
  const __m256i lo = _mm256_add_epi32(_mm256_unpacklo_epi64(q[0], q[1]), _mm256_unpackhi_epi64(q[0], q[1]));
  const __m256i hi = _mm256_add_epi32(_mm256_unpacklo_epi64(q[2], q[3]), _mm256_unpackhi_epi64(q[2], q[3]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
}

// An fp16 field of eight consecutive blocks as eight floats, lane k from block
// b[kOrder[k]]: eight word inserts (a load each) and one conversion. Cheaper on Zen 4
// than two-table word permutes of the blocks' bytes (in-cache Q4_0: 147 -> 123 ns per
// 4096-element row) or a gather (165).
template <int... kOrder, class Block, class Field>
inline __m256 half8_at(const Block* b, Field field) {
  static_assert(sizeof...(kOrder) == 8);
  constexpr int order[8] = {kOrder...};
  __m128i v = _mm_cvtsi32_si128(field(b[order[0]]));
  v = _mm_insert_epi16(v, field(b[order[1]]), 1);
  v = _mm_insert_epi16(v, field(b[order[2]]), 2);
  v = _mm_insert_epi16(v, field(b[order[3]]), 3);
  v = _mm_insert_epi16(v, field(b[order[4]]), 4);
  v = _mm_insert_epi16(v, field(b[order[5]]), 5);
  v = _mm_insert_epi16(v, field(b[order[6]]), 6);
  v = _mm_insert_epi16(v, field(b[order[7]]), 7);
  return _mm256_cvtph_ps(v);
}

template <class Block, class Field>
inline __m256 half8(const Block* b, Field field) {
  return half8_at<0, 1, 2, 3, 4, 5, 6, 7>(b, field);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// One block's int32 lanes of sum_l (u_l - kOffset) a_l: u * a by one vpdpbusd, the
// offset taken off by a second.
template <int kOffset>
inline __m256i block_isum(__m256i u, const int8_t* a) {
  const __m256i y = load256(a);
  const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, y);
  if constexpr (kOffset == 0) return s;
  else return _mm256_sub_epi32(s, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(static_cast<char>(kOffset)), y));
}

// The blocks after the last whole group of eight, one at a time, summed as the
// single-row and multi-row kernels both do.
template <int kOffset, bool kMin, class WBlock, class ABlock, class Codes>
float tail32(const WBlock* w, const ABlock* a, int64_t from, int64_t blocks, Codes codes) {
  float tail = 0;
  for (int64_t i = from; i < blocks; ++i) {
    tail += (h2f(w[i].d) * h2f(a[i].d)) * static_cast<float>(hsum_epi32(block_isum<kOffset>(codes(w[i]), a[i].qs)));
    if constexpr (kMin) tail += h2f(w[i].m) * h2f(a[i].s);
  }
  return tail;
}

// sum_b (d_w d_a)_b * sum_l (u_l - kOffset) a_l [+ m_w s_a]_b over the blocks. Codes(b)
// gives block b's unsigned codes u; kMin adds Q4_1/Q5_1's min times Q8_1's s.
template <int kOffset, bool kMin, class WBlock, class ABlock, class Codes>
float dot32(const WBlock* w, const ABlock* a, int64_t blocks, Codes codes) {
  __m256 acc = _mm256_setzero_ps(), mins = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= blocks; i += 8) {
    __m256i v[8];
    for (int b = 0; b < 8; ++b) v[b] = block_isum<kOffset>(codes(w[i + b]), a[i + b].qs);
    const auto d_of = [](const auto& block) { return block.d; };
    const __m256 d = _mm256_mul_ps(half8(w + i, d_of), half8(a + i, d_of));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(reduce8(v)), acc);
    if constexpr (kMin)
      mins = _mm256_fmadd_ps(half8(w + i, [](const WBlock& b) { return b.m; }),
                             half8(a + i, [](const ABlock& b) { return b.s; }), mins);
  }
  const float tail = tail32<kOffset, kMin>(w, a, i, blocks, codes);
  if constexpr (kMin) return hsum(acc) + hsum(mins) + tail;
  else return hsum(acc) + tail;
}

// ---------------------------------------------------------------- several rows at once
// The same sums for a group of weight rows against one activation row, each row's
// float operations those of dot32 in the same order (so bit-identical), with the
// work that depends only on the activations done once per group and chunk:
//  - Two blocks share a register pair: lo holds the first 16 codes of blocks 2p and
//    2p + 1, hi their last 16, so a nibble format splits a pair with one load and
//    three operations and the two vpdpbusd chain into one accumulator (no per-block
//    offset vpdpbusd, no subtraction). The activation codes are rearranged to match
//    once per chunk.
//  - Four such accumulators (eight blocks) reduce to eight sums in nine operations
//    instead of reduce8's 21; the sums come out in the order kPairOrder, which the
//    scales follow and the final sum undoes.
//  - Each block's offset term kOffset * sum(a), d_a (and Q8_1's s) are computed once.
// Measured in cache on Zen 4 (docs/benchmarks.md): Q4_0 123 -> ~70 ns per
// 4096-element row.
constexpr int64_t kRowsChunk = 256;  // activation blocks prepared at a time: 8 KiB of codes
constexpr int64_t kRowsGroup = 16;   // weight rows sharing one preparation
// Four pair accumulators -> the eight block sums, low lane blocks 0, 2, 4, 6, high
// lane 1, 3, 5, 7 (each pair's two blocks sit in the two 128-bit lanes).
inline __m256i reduce_pairs(const __m256i r[4]) {
  const __m256i q0 = _mm256_add_epi32(_mm256_unpacklo_epi32(r[0], r[1]), _mm256_unpackhi_epi32(r[0], r[1]));
  const __m256i q1 = _mm256_add_epi32(_mm256_unpacklo_epi32(r[2], r[3]), _mm256_unpackhi_epi32(r[2], r[3]));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(q0, q1), _mm256_unpackhi_epi64(q0, q1));
}
template <class Block, class Field>
inline __m256 half8_pair_order(const Block* b, Field field) {
  return half8_at<0, 2, 4, 6, 1, 3, 5, 7>(b, field);
}

// Activation state of one chunk: codes in pair layout, and per block (in pair order)
// the offset sum and d; Q8_1's s in block order (the min term is summed unpermuted).
struct PreparedChunk {
  alignas(64) int8_t qs[kRowsChunk * 32];
  alignas(32) int32_t offset_sum[kRowsChunk];
  alignas(32) float d[kRowsChunk];
  alignas(32) float s[kRowsChunk];
};

template <int kOffset, bool kMin, class ABlock>
void prepare_chunk(const ABlock* a, int64_t count, PreparedChunk& p) {
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(kOffset));
  for (int64_t i = 0; i < count; i += 8) {
    __m256i pr[4];
    for (int q = 0; q < 4; ++q) {
      const __m256i x0 = load256(a[i + 2 * q].qs), x1 = load256(a[i + 2 * q + 1].qs);
      const __m256i lo = _mm256_permute2x128_si256(x0, x1, 0x20), hi = _mm256_permute2x128_si256(x0, x1, 0x31);
      _mm256_store_si256(reinterpret_cast<__m256i*>(p.qs + 32 * (i + 2 * q)), lo);
      _mm256_store_si256(reinterpret_cast<__m256i*>(p.qs + 32 * (i + 2 * q) + 32), hi);
      if constexpr (kOffset != 0)
        pr[q] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), offset, lo), offset, hi);
    }
    if constexpr (kOffset != 0) _mm256_store_si256(reinterpret_cast<__m256i*>(p.offset_sum + i), reduce_pairs(pr));
    _mm256_store_ps(p.d + i, half8_pair_order(a + i, [](const ABlock& b) { return b.d; }));
    if constexpr (kMin) _mm256_store_ps(p.s + i, half8(a + i, [](const ABlock& b) { return b.s; }));
  }
}

// PairCodes(b0, b1, lo, hi) splits two blocks' unsigned codes into the pair layout;
// Codes(b) gives one block's (for the tail), as dot32 takes them.
template <int kOffset, bool kMin, class WBlock, class ABlock, class Codes, class PairCodes>
void dot32_rows(const void* vw, size_t row_bytes, const ABlock* a, int64_t blocks, int64_t rows, float* y,
                Codes codes, PairCodes pair_codes) {
  const auto row = [&](int64_t r) {
    return reinterpret_cast<const WBlock*>(static_cast<const std::byte*>(vw) + static_cast<size_t>(r) * row_bytes);
  };
  PreparedChunk p;
  const int64_t whole = blocks / 8 * 8;
  const __m256i block_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undoes kPairOrder
  for (int64_t r0 = 0; r0 < rows; r0 += kRowsGroup) {
    const int64_t group = std::min(kRowsGroup, rows - r0);
    __m256 acc[kRowsGroup], mins[kRowsGroup];
    for (int64_t r = 0; r < group; ++r) acc[r] = mins[r] = _mm256_setzero_ps();
    for (int64_t c0 = 0; c0 < whole; c0 += kRowsChunk) {
      const int64_t count = std::min(kRowsChunk, whole - c0);
      prepare_chunk<kOffset, kMin>(a + c0, count, p);
      for (int64_t r = 0; r < group; ++r) {
        const WBlock* w = row(r0 + r) + c0;
        __m256 ac = acc[r], mn = mins[r];
        for (int64_t i = 0; i < count; i += 8) {
          prefetch_ahead<8 * sizeof(WBlock)>(w + i);
          __m256i pr[4];
          for (int q = 0; q < 4; ++q) {
            __m256i lo, hi;
            pair_codes(w[i + 2 * q], w[i + 2 * q + 1], lo, hi);
            const int8_t* y2 = p.qs + 32 * (i + 2 * q);
            pr[q] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), lo, load256(y2)), hi,
                                        load256(y2 + 32));
          }
          __m256i isum = reduce_pairs(pr);
          if constexpr (kOffset != 0)
            isum = _mm256_sub_epi32(isum, _mm256_load_si256(reinterpret_cast<const __m256i*>(p.offset_sum + i)));
          const __m256 d = _mm256_mul_ps(half8_pair_order(w + i, [](const WBlock& b) { return b.d; }), _mm256_load_ps(p.d + i));
          ac = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), ac);
          if constexpr (kMin) mn = _mm256_fmadd_ps(half8(w + i, [](const WBlock& b) { return b.m; }), _mm256_load_ps(p.s + i), mn);
        }
        acc[r] = ac;
        mins[r] = mn;
      }
    }
    for (int64_t r = 0; r < group; ++r) {
      const float tail = tail32<kOffset, kMin>(row(r0 + r), a, whole, blocks, codes);
      const float body = hsum(_mm256_permutevar8x32_ps(acc[r], block_order));
      if constexpr (kMin) y[r0 + r] = body + hsum(mins[r]) + tail;
      else y[r0 + r] = body + tail;
    }
  }
}

// Pair splitters: two blocks' 16 code bytes side by side, split into low and high
// nibbles (elements 0..15 and 16..31 of each block).
inline void nibble_pair(const uint8_t* qs0, const uint8_t* qs1, __m256i& lo, __m256i& hi) {
  const __m256i x = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(qs1), reinterpret_cast<const __m128i*>(qs0));
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  lo = _mm256_and_si256(x, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
}

// Q5_0 / Q5_1: the fifth bits of elements 0..15 of both blocks go with lo, 16..31
// with hi.
inline void five_bit_pair(const uint8_t* qs0, const uint8_t* qh0, const uint8_t* qs1, const uint8_t* qh1,
                          __m256i& lo, __m256i& hi) {
  uint32_t h0, h1;
  std::memcpy(&h0, qh0, 4);
  std::memcpy(&h1, qh1, 4);
  nibble_pair(qs0, qs1, lo, hi);
  const __m256i sixteen = _mm256_set1_epi8(16);
  lo = _mm256_mask_add_epi8(lo, _cvtu32_mask32((h0 & 0xffffu) | (h1 << 16)), lo, sixteen);
  hi = _mm256_mask_add_epi8(hi, _cvtu32_mask32((h0 >> 16) | (h1 & 0xffff0000u)), hi, sixteen);
}

}  // namespace

float dot_q4_0_q8_0__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot32<8, false>(static_cast<const block_q4_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                         [](const block_q4_0& b) { return nibbles(b.qs); });
}

float dot_q5_0_q8_0__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot32<16, false>(static_cast<const block_q5_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                          [](const block_q5_0& b) { return five_bits(b.qs, b.qh); });
}

float dot_q8_0_q8_0__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot32<128, false>(static_cast<const block_q8_0*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
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
  return dot32<128, false>(static_cast<const block_iq4_nl*>(w), static_cast<const block_q8_0*>(a), n / QK_LEGACY,
                           [table](const block_iq4_nl& b) { return _mm256_shuffle_epi8(table, nibbles(b.qs)); });
}

float dot_q4_1_q8_1__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot32<0, true>(static_cast<const block_q4_1*>(w), static_cast<const block_q8_1*>(a), n / QK_LEGACY,
                        [](const block_q4_1& b) { return nibbles(b.qs); });
}

float dot_q5_1_q8_1__avx512vnni(const void* w, const void* a, int64_t n) {
  return dot32<0, true>(static_cast<const block_q5_1*>(w), static_cast<const block_q8_1*>(a), n / QK_LEGACY,
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
  dot32_rows<8, false, block_q4_0>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [](const block_q4_0& b) { return nibbles(b.qs); },
      [](const block_q4_0& b0, const block_q4_0& b1, __m256i& lo, __m256i& hi) { nibble_pair(b0.qs, b1.qs, lo, hi); });
}

void dot_rows_q4_1_q8_1__avx512vnni(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  dot32_rows<0, true, block_q4_1>(
      w, row_bytes, static_cast<const block_q8_1*>(a), n / QK_LEGACY, rows, y,
      [](const block_q4_1& b) { return nibbles(b.qs); },
      [](const block_q4_1& b0, const block_q4_1& b1, __m256i& lo, __m256i& hi) { nibble_pair(b0.qs, b1.qs, lo, hi); });
}

void dot_rows_q5_0_q8_0__avx512vnni(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  dot32_rows<16, false, block_q5_0>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [](const block_q5_0& b) { return five_bits(b.qs, b.qh); },
      [](const block_q5_0& b0, const block_q5_0& b1, __m256i& lo, __m256i& hi) {
        five_bit_pair(b0.qs, b0.qh, b1.qs, b1.qh, lo, hi);
      });
}

void dot_rows_q5_1_q8_1__avx512vnni(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  dot32_rows<0, true, block_q5_1>(
      w, row_bytes, static_cast<const block_q8_1*>(a), n / QK_LEGACY, rows, y,
      [](const block_q5_1& b) { return five_bits(b.qs, b.qh); },
      [](const block_q5_1& b0, const block_q5_1& b1, __m256i& lo, __m256i& hi) {
        five_bit_pair(b0.qs, b0.qh, b1.qs, b1.qh, lo, hi);
      });
}

void dot_rows_q8_0_q8_0__avx512vnni(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  const __m256i flip = _mm256_set1_epi8(-128);
  dot32_rows<128, false, block_q8_0>(
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
  dot32_rows<128, false, block_iq4_nl>(
      w, row_bytes, static_cast<const block_q8_0*>(a), n / QK_LEGACY, rows, y,
      [table](const block_iq4_nl& b) { return _mm256_shuffle_epi8(table, nibbles(b.qs)); },
      [table](const block_iq4_nl& b0, const block_iq4_nl& b1, __m256i& lo, __m256i& hi) {
        nibble_pair(b0.qs, b1.qs, lo, hi);
        lo = _mm256_shuffle_epi8(table, lo);
        hi = _mm256_shuffle_epi8(table, hi);
      });
}

}  // namespace lowbit::kernels
