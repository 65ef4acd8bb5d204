// NEON variants of the K-quants' `fast` quantizers (ggml's algorithm): eight
// sub-blocks in the lanes of an eight-float GCC vector, which the compiler keeps in a
// pair of 128-bit registers; byte-identical to the scalar reference
// (kernels/cpu/lanes/kquants_fast_lanes.hpp says how).
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

// Eight-lane vectors are wider than NEON's registers; only the row functions below
// have external linkage, so the calling convention never matters.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace lowbit::kernels {
namespace {
typedef float V __attribute__((vector_size(32)));
typedef int32_t Vi __attribute__((vector_size(32)));
constexpr int kLanes = 8;
// FSQRT is the correctly rounded IEEE square root, as std::sqrt and _mm256_sqrt_ps.
inline V vsqrt(V a) {
  float32x4_t h[2];
  std::memcpy(h, &a, sizeof a);
  h[0] = vsqrtq_f32(h[0]);
  h[1] = vsqrtq_f32(h[1]);
  V r;
  std::memcpy(&r, h, sizeof r);
  return r;
}
}  // namespace
}  // namespace lowbit::kernels

#define LOWBIT_FAST_ISA neon
#include "cpu/lanes/kquants_fast_lanes.hpp"
