#pragma once
// Unpacking GSQ's packed codes (one LSB-first bit stream of B-bit codes per row,
// gsq/packing.hpp) four at a time with Advanced SIMD. 32 codes fill exactly B (<= 8)
// words, so every 32-code chunk starts on a word boundary and one set of tables
// serves every chunk: code j's bits start in byte (j*B)/8 at bit (j*B)%8 and, as
// B + 7 <= 15, lie within that byte and the next. One table lookup (TBL) places those
// two bytes in the low half of the code's 32-bit lane, one variable shift and a mask
// finish it. Internal linkage, as in codes.hpp.
#include <arm_neon.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/gsq_width.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"

namespace lowbit::kernels {
namespace {

template <int B>
struct NeonGsqTables {
  uint8_t bytes[8][16] = {};  // per 4-code vector: each lane's two source bytes, 255 = zero
  int32_t shift[8][4] = {};   // minus the bit offset (a right shift)
  constexpr NeonGsqTables() {
    for (int j = 0; j < 32; ++j) {
      const int bit = j * B, byte = bit / 8;
      uint8_t* lane = bytes[j / 4] + 4 * (j % 4);
      lane[0] = static_cast<uint8_t>(byte);
      // The next byte only where it exists in the chunk (a lookup past the chunk's
      // 4 * B bytes would read another chunk's codes; 255 reads as zero).
      lane[1] = byte + 1 < 4 * B ? static_cast<uint8_t>(byte + 1) : uint8_t{255};
      lane[2] = lane[3] = 255;
      shift[j / 4][j % 4] = -(bit % 8);
    }
  }
};
template <int B>
inline constexpr NeonGsqTables<B> kNeonGsqTables{};

// The bytes of chunk k of a row as a 32-byte lookup table; the last chunk of a row may
// hold fewer than B words, the rest reads as zero (never past the row's words).
template <int B>
inline uint8x16x2_t gsq_chunk(const uint32_t* row, int64_t words_per_row, int64_t k) {
  alignas(16) uint8_t buf[32] = {};
  const int64_t n = std::min<int64_t>(B, words_per_row - k * B);
  std::memcpy(buf, row + k * B, static_cast<size_t>(n) * 4);
  return vld1q_u8_x2(buf);
}

// Codes 4v .. 4v+3 of a chunk.
template <int B>
inline uint32x4_t gsq_codes4(const uint8x16x2_t& chunk, int v) {
  const auto& t = kNeonGsqTables<B>;
  const uint32x4_t raw = vreinterpretq_u32_u8(vqtbl2q_u8(chunk, vld1q_u8(t.bytes[v])));
  return vandq_u32(vshlq_u32(raw, vld1q_s32(t.shift[v])), vdupq_n_u32((1u << B) - 1u));
}

}  // namespace
}  // namespace lowbit::kernels
