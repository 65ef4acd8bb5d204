#pragma once
// The dot products of the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) on
// x86, one row (dot32) and several rows against one activation row (dot32_rows), shared
// by the AVX2 and AVX-512 VNNI variants. Internal linkage: each including file compiles
// its own copy with its own ISA flags, and supplies the integer products as a policy P:
//   P::dot4(acc, u, a)               acc + per int32 lane the sum of its four u * a
//                                    products (u unsigned bytes, a signed)
//   P::dot4_pair(lo, alo, hi, ahi)   dot4(dot4(0, lo, alo), hi, ahi)
// AVX-512 VNNI does them with vpdpbusd; AVX2 with vpmaddubsw + vpmaddwd, which cannot
// saturate for codes up to 31 (two products per 16-bit sum, four in a pair: at most
// 4 * 31 * 128 < 2^15). Either way the int32 lanes hold the same exact integers, so the
// two ISAs' results are bit-identical.
//
// Each block's sum is sum_l (u_l - kOffset) a_l with u = q + kOffset unsigned (Q4_0 + 8,
// Q5_0 + 16, Q8_0 and the IQ4_NL code book + 128), exact in int32. The float work
// (two fp16 scales per block, a multiply, a conversion, an FMA) is done for eight blocks
// at once after their int32 lanes are reduced to one register.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cpu/x86/prefetch.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {
namespace x86_dot32 {

using x86_prefetch::prefetch_ahead;
using x86_prefetch::worth_prefetching;

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// The 32 four-bit codes of a block (low nibbles elements 0..15, high 16..31).
inline __m256i nibbles(const uint8_t* qs) {
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0f));
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

// One block's int32 lanes of sum_l (u_l - kOffset) a_l.
template <class P, int kOffset>
inline __m256i block_isum(__m256i u, const int8_t* a) {
  const __m256i y = load256(a);
  const __m256i s = P::dot4(_mm256_setzero_si256(), u, y);
  if constexpr (kOffset == 0) return s;
  else return _mm256_sub_epi32(s, P::dot4(_mm256_setzero_si256(), _mm256_set1_epi8(static_cast<char>(kOffset)), y));
}

// The blocks after the last whole group of eight, one at a time, summed as the
// single-row and multi-row kernels both do.
template <class P, int kOffset, bool kMin, class WBlock, class ABlock, class Codes>
float tail32(const WBlock* w, const ABlock* a, int64_t from, int64_t blocks, Codes codes) {
  float tail = 0;
  for (int64_t i = from; i < blocks; ++i) {
    tail += (h2f(w[i].d) * h2f(a[i].d)) * static_cast<float>(hsum_epi32(block_isum<P, kOffset>(codes(w[i]), a[i].qs)));
    if constexpr (kMin) tail += h2f(w[i].m) * h2f(a[i].s);
  }
  return tail;
}

// sum_b (d_w d_a)_b * sum_l (u_l - kOffset) a_l [+ m_w s_a]_b over the blocks. Codes(b)
// gives block b's unsigned codes u; kMin adds Q4_1/Q5_1's min times Q8_1's s.
template <class P, int kOffset, bool kMin, class WBlock, class ABlock, class Codes>
float dot32(const WBlock* w, const ABlock* a, int64_t blocks, Codes codes) {
  __m256 acc = _mm256_setzero_ps(), mins = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= blocks; i += 8) {
    __m256i v[8];
    for (int b = 0; b < 8; ++b) v[b] = block_isum<P, kOffset>(codes(w[i + b]), a[i + b].qs);
    const auto d_of = [](const auto& block) { return block.d; };
    const __m256 d = _mm256_mul_ps(half8(w + i, d_of), half8(a + i, d_of));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(reduce8(v)), acc);
    if constexpr (kMin)
      mins = _mm256_fmadd_ps(half8(w + i, [](const WBlock& b) { return b.m; }),
                             half8(a + i, [](const ABlock& b) { return b.s; }), mins);
  }
  const float tail = tail32<P, kOffset, kMin>(w, a, i, blocks, codes);
  if constexpr (kMin) return hsum(acc) + hsum(mins) + tail;
  else return hsum(acc) + tail;
}

// ---------------------------------------------------------------- several rows at once
// The same sums for a group of weight rows against one activation row, each row's
// float operations those of dot32 in the same order (so bit-identical), with the
// work that depends only on the activations done once per group and chunk:
//  - Two blocks share a register pair: lo holds the first 16 codes of blocks 2p and
//    2p + 1, hi their last 16, so a nibble format splits a pair with one load and
//    three operations and dot4_pair takes both into one accumulator (no per-block
//    offset product, no subtraction). The activation codes are rearranged to match
//    once per chunk.
//  - Four such accumulators (eight blocks) reduce to eight sums in nine operations
//    instead of reduce8's 21; the sums come out in the order 0, 2, 4, 6, 1, 3, 5, 7,
//    which the scales follow and the final sum undoes.
//  - Each block's offset term kOffset * sum(a), d_a (and Q8_1's s) are computed once.
//  - Long rows are prefetched ahead (cpu/x86/prefetch.hpp).
// Measured in cache on Zen 4 (docs/benchmarks.md): VNNI Q4_0 123 -> ~75 ns per
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

template <class P, int kOffset, bool kMin, class ABlock>
void prepare_chunk(const ABlock* a, int64_t count, PreparedChunk& p) {
  const __m256i offset = _mm256_set1_epi8(static_cast<char>(kOffset));
  for (int64_t i = 0; i < count; i += 8) {
    __m256i pr[4];
    for (int q = 0; q < 4; ++q) {
      const __m256i x0 = load256(a[i + 2 * q].qs), x1 = load256(a[i + 2 * q + 1].qs);
      const __m256i lo = _mm256_permute2x128_si256(x0, x1, 0x20), hi = _mm256_permute2x128_si256(x0, x1, 0x31);
      _mm256_store_si256(reinterpret_cast<__m256i*>(p.qs + 32 * (i + 2 * q)), lo);
      _mm256_store_si256(reinterpret_cast<__m256i*>(p.qs + 32 * (i + 2 * q) + 32), hi);
      if constexpr (kOffset != 0) pr[q] = P::dot4_pair(offset, lo, offset, hi);
    }
    if constexpr (kOffset != 0) _mm256_store_si256(reinterpret_cast<__m256i*>(p.offset_sum + i), reduce_pairs(pr));
    _mm256_store_ps(p.d + i, half8_pair_order(a + i, [](const ABlock& b) { return b.d; }));
    if constexpr (kMin) _mm256_store_ps(p.s + i, half8(a + i, [](const ABlock& b) { return b.s; }));
  }
}

// PairCodes(b0, b1, lo, hi) splits two blocks' unsigned codes into the pair layout;
// Codes(b) gives one block's (for the tail), as dot32 takes them.
template <class P, int kOffset, bool kMin, class WBlock, class ABlock, class Codes, class PairCodes>
void dot32_rows(const void* vw, size_t row_bytes, const ABlock* a, int64_t blocks, int64_t rows, float* y,
                Codes codes, PairCodes pair_codes) {
  const auto row = [&](int64_t r) {
    return reinterpret_cast<const WBlock*>(static_cast<const std::byte*>(vw) + static_cast<size_t>(r) * row_bytes);
  };
  PreparedChunk p;
  const int64_t whole = blocks / 8 * 8;
  const bool prefetch = worth_prefetching(row_bytes);
  const __m256i block_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undoes the pair order
  for (int64_t r0 = 0; r0 < rows; r0 += kRowsGroup) {
    const int64_t group = std::min(kRowsGroup, rows - r0);
    __m256 acc[kRowsGroup], mins[kRowsGroup];
    for (int64_t r = 0; r < group; ++r) acc[r] = mins[r] = _mm256_setzero_ps();
    for (int64_t c0 = 0; c0 < whole; c0 += kRowsChunk) {
      const int64_t count = std::min(kRowsChunk, whole - c0);
      prepare_chunk<P, kOffset, kMin>(a + c0, count, p);
      for (int64_t r = 0; r < group; ++r) {
        const WBlock* w = row(r0 + r) + c0;
        __m256 ac = acc[r], mn = mins[r];
        for (int64_t i = 0; i < count; i += 8) {
          if (prefetch) prefetch_ahead<8 * sizeof(WBlock)>(w + i);
          __m256i pr[4];
          for (int q = 0; q < 4; ++q) {
            __m256i lo, hi;
            pair_codes(w[i + 2 * q], w[i + 2 * q + 1], lo, hi);
            const int8_t* y2 = p.qs + 32 * (i + 2 * q);
            pr[q] = P::dot4_pair(lo, load256(y2), hi, load256(y2 + 32));
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
      const float tail = tail32<P, kOffset, kMin>(row(r0 + r), a, whole, blocks, codes);
      const float body = hsum(_mm256_permutevar8x32_ps(acc[r], block_order));
      if constexpr (kMin) y[r0 + r] = body + hsum(mins[r]) + tail;
      else y[r0 + r] = body + tail;
    }
  }
}

// Two blocks' 16 code bytes side by side, split into low and high nibbles (elements
// 0..15 and 16..31 of each block): the pair layout of a nibble format.
inline void nibble_pair(const uint8_t* qs0, const uint8_t* qs1, __m256i& lo, __m256i& hi) {
  const __m256i x = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(qs1), reinterpret_cast<const __m128i*>(qs0));
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  lo = _mm256_and_si256(x, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m4);
}

// Q5_0 / Q5_1's fifth bits as two 32-bit masks in the pair layout: bit e of lo's mask
// is element e % 16 of block e / 16 (elements 0..15 of both blocks), of hi's element
// 16 + e % 16.
inline void pair_masks(const uint8_t* qh0, const uint8_t* qh1, uint32_t& lo, uint32_t& hi) {
  uint32_t h0, h1;
  std::memcpy(&h0, qh0, 4);
  std::memcpy(&h1, qh1, 4);
  lo = (h0 & 0xffffu) | (h1 << 16);
  hi = (h0 >> 16) | (h1 & 0xffff0000u);
}

}  // namespace x86_dot32
}  // namespace
}  // namespace lowbit::kernels
