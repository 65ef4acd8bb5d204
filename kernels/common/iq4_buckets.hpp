#pragma once
// Nearest IQ4_NL code value without a search: the tables the SIMD `fast` IQ4
// quantizers look codes up in, so that they choose exactly as ggml's best_index_int8
// (ggml_search::iq4_index) does.
//
// The value line from -136.25 is cut into 32 buckets 8.5 wide. Every decision
// threshold between two neighbouring codes (a midpoint, a multiple of 0.5) lies at
// least 0.25 from a bucket edge, and consecutive thresholds are at least 11.5 apart,
// so a bucket holds at most one. A value's code is its bucket's lower code, or the
// next one at or above the bucket's threshold. The bucket number needs no exact
// arithmetic: a value within rounding of an edge lies 0.25 from any threshold, so
// either bucket gives the same code. ggml compares distances (v - lo < hi - v), which
// near a threshold are exact subtractions, so ">= threshold" decides alike. Where a
// bucket holds no threshold, the next one lies beyond it, so a value's code is also
// lo + (v >= threshold above lo): one look-up by bucket, then small ones by code.
#include <cfloat>
#include <cstdint>

#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {

inline constexpr float kIq4BucketStart = -136.25f, kIq4BucketWidth = 8.5f;
// Values the bucket look-up accepts: |v| <= 135 lies inside the 32 buckets.
inline constexpr float kIq4BucketLimit = 135.0f;

struct Iq4Buckets {
  alignas(64) float thr[32];        // the threshold inside the bucket, or FLT_MAX
  alignas(64) float lo[32];         // the value below it
  alignas(64) float hi[32];         // the value at or above it (lo where none)
  alignas(64) int32_t lo_index[32];
  alignas(64) int32_t hi_index[32];
  alignas(16) uint8_t lo_code[32];  // lo_index as bytes
  // Code c's value, and the threshold above it (FLT_MAX for c = 15): with the lower
  // code of a value's bucket, code = lo + (v >= code_thr[lo]).
  alignas(32) float code_value[16];
  alignas(32) float code_thr[16];
  // Twice the threshold above code c (an integer: the sum of two code values), or a
  // value no doubled input reaches for c = 15; as low and high bytes.
  alignas(16) uint8_t twice_thr_lo[16];
  alignas(16) uint8_t twice_thr_hi[16];
};

constexpr Iq4Buckets make_iq4_buckets() {
  Iq4Buckets b{};
  for (int k = 0; k < 32; ++k) {
    const float start = kIq4BucketStart + kIq4BucketWidth * static_cast<float>(k);
    int lo = 0;
    while (lo < 15 && 2.0f * start >= static_cast<float>(kIq4nlValues[lo] + kIq4nlValues[lo + 1])) ++lo;
    b.lo[k] = b.hi[k] = static_cast<float>(kIq4nlValues[lo]);
    b.lo_index[k] = b.hi_index[k] = lo;
    b.lo_code[k] = static_cast<uint8_t>(lo);
    b.thr[k] = FLT_MAX;
    if (lo < 15) {
      const float t = 0.5f * static_cast<float>(kIq4nlValues[lo] + kIq4nlValues[lo + 1]);
      if (t < start + kIq4BucketWidth) {
        b.thr[k] = t;
        b.hi[k] = static_cast<float>(kIq4nlValues[lo + 1]);
        b.hi_index[k] = lo + 1;
      }
    }
  }
  for (int c = 0; c < 16; ++c) {
    b.code_value[c] = static_cast<float>(kIq4nlValues[c]);
    b.code_thr[c] = c < 15 ? 0.5f * static_cast<float>(kIq4nlValues[c] + kIq4nlValues[c + 1]) : FLT_MAX;
    const int twice = c < 15 ? kIq4nlValues[c] + kIq4nlValues[c + 1] : 0x7fff;
    const auto bits = static_cast<uint16_t>(static_cast<int16_t>(twice));
    b.twice_thr_lo[c] = static_cast<uint8_t>(bits & 0xff);
    b.twice_thr_hi[c] = static_cast<uint8_t>(bits >> 8);
  }
  return b;
}

inline constexpr Iq4Buckets kIq4Buckets = make_iq4_buckets();

}  // namespace lowbit::kernels
