#pragma once
// Unpacking GSQ's packed codes (one LSB-first bit stream of B-bit codes per row,
// gsq/packing.hpp) 16 at a time. 32 codes fill exactly B words, so every 32-code chunk
// starts on a word boundary and one set of lane tables serves every chunk: code j of
// a chunk sits at bit j*B, i.e. in word (j*B)/32 at shift (j*B)%32, spilling into the
// next word when B does not divide 32 (3, 5, 6 and 7 bits). Each lane fetches its word
// with a cross-lane permute and shifts it into place.
//
// Shared by the avx512 and avx512vnni folders: each file includes its own target.hpp
// first, and everything here has internal linkage, so no copy compiled with one
// folder's flags can stand in for the other's.
// GCC 12 reports the masked intrinsics' own undefined pass-through operand
// (_mm512_undefined_* inside avx512fintrin.h) as (maybe-)uninitialized.
#if defined(__GNUC__) && !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "lowbit/kernels/gsq_gemv.hpp"

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "gsq_codes.hpp needs AVX-512 F/BW/VL"
#endif

namespace lowbit::kernels::avx512_gsq {
namespace {

template <int B>
struct LaneTables {
  alignas(64) int32_t word[32] = {};
  alignas(64) int32_t shift[32] = {};
  alignas(64) int32_t next[32] = {};
  alignas(64) int32_t back[32] = {};
  constexpr LaneTables() {
    for (int j = 0; j < 32; ++j) {
      word[j] = j * B / 32;
      shift[j] = j * B % 32;
      next[j] = word[j] + 1;
      back[j] = 32 - shift[j];  // a shift by 32 gives 0: no spill for that lane
    }
  }
};
template <int B>
inline constexpr LaneTables<B> kLanes{};

template <int B>
struct Unpacker {
  static constexpr bool spills = 32 % B != 0;
  __m512i word[2], shift[2], next[2], back[2];
  __m512i mask = _mm512_set1_epi32((1 << B) - 1);

  Unpacker() {
    for (int h = 0; h < 2; ++h) {
      word[h] = _mm512_load_si512(kLanes<B>.word + 16 * h);
      shift[h] = _mm512_load_si512(kLanes<B>.shift + 16 * h);
      next[h] = _mm512_load_si512(kLanes<B>.next + 16 * h);
      back[h] = _mm512_load_si512(kLanes<B>.back + 16 * h);
    }
  }

  // Codes 16h .. 16h+15 of the chunk whose B words are the low lanes of w.
  __m512i codes(__m512i w, int h) const {
    __m512i v = _mm512_srlv_epi32(_mm512_permutexvar_epi32(word[h], w), shift[h]);
    if constexpr (spills) v = _mm512_or_si512(v, _mm512_sllv_epi32(_mm512_permutexvar_epi32(next[h], w), back[h]));
    return _mm512_and_si512(v, mask);
  }
};

// The words of chunk k of a row (the last chunk of a row may hold fewer than B).
template <int B>
inline __m512i chunk_words(const uint32_t* row, int64_t words_per_row, int64_t k) {
  const int64_t n = std::min<int64_t>(B, words_per_row - k * B);
  return _mm512_maskz_loadu_epi32(static_cast<__mmask16>((1u << n) - 1), row + k * B);
}

// Lane masks of the two halves of a chunk holding n (1..32) codes.
struct ChunkMasks {
  __mmask16 lo, hi;
  explicit ChunkMasks(int64_t n)
      : lo(static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1)),
        hi(static_cast<__mmask16>(n >= 32 ? 0xFFFFu : n > 16 ? (1u << (n - 16)) - 1 : 0u)) {}
};

}  // namespace
}  // namespace lowbit::kernels::avx512_gsq
