#pragma once
// Unpacking GSQ's packed codes (one LSB-first bit stream of B-bit codes per row,
// gsq/packing.hpp) 8 at a time. 32 codes fill exactly B (<= 8) words, so every
// 32-code chunk starts on a word boundary, fits one ymm register, and one set of lane
// tables serves every chunk: code j of a chunk sits in word (j*B)/32 at shift
// (j*B)%32, spilling into the next word when B does not divide 32. Each lane fetches
// its word with a cross-lane permute and shifts it into place.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "target.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"

namespace lowbit::kernels::avx2_gsq {

template <int B>
struct LaneTables {
  alignas(32) int32_t word[32] = {};
  alignas(32) int32_t shift[32] = {};
  alignas(32) int32_t next[32] = {};
  alignas(32) int32_t back[32] = {};
  constexpr LaneTables() {
    for (int j = 0; j < 32; ++j) {
      word[j] = j * B / 32;
      shift[j] = j * B % 32;
      next[j] = word[j] + 1;    // lane 8 wraps to word 0; only lanes that do not spill read it
      back[j] = 32 - shift[j];  // a shift by 32 gives 0: no spill for that lane
    }
  }
};
template <int B>
inline constexpr LaneTables<B> kLanes{};

// -1 in the first 8 entries, 0 in the next 8: loading 8 from (8 - n) masks n lanes.
alignas(32) inline constexpr int32_t kLaneMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
inline __m256i lane_mask(int64_t n) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask + 8 - std::clamp<int64_t>(n, 0, 8)));
}

template <int B>
struct Unpacker {
  static constexpr bool spills = 32 % B != 0;
  // Codes 8q .. 8q+7 of the chunk whose B words are the low lanes of w.
  static __m256i codes(__m256i w, int q) {
    const auto* t = &kLanes<B>;
    const auto lane = [](const int32_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); };
    __m256i v = _mm256_srlv_epi32(_mm256_permutevar8x32_epi32(w, lane(t->word + 8 * q)), lane(t->shift + 8 * q));
    if constexpr (spills)
      v = _mm256_or_si256(v, _mm256_sllv_epi32(_mm256_permutevar8x32_epi32(w, lane(t->next + 8 * q)),
                                               lane(t->back + 8 * q)));
    return _mm256_and_si256(v, _mm256_set1_epi32((1 << B) - 1));
  }
};

// The words of chunk k of a row (the last chunk of a row may hold fewer than B).
template <int B>
inline __m256i chunk_words(const uint32_t* row, int64_t words_per_row, int64_t k) {
  const int64_t n = std::min<int64_t>(B, words_per_row - k * B);
  if (n == 8) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k * B));
  return _mm256_maskload_epi32(reinterpret_cast<const int*>(row + k * B), lane_mask(n));
}

}  // namespace lowbit::kernels::avx2_gsq
