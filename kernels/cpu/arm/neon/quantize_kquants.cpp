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

#include "cpu/lanes/kquants_fast_lanes.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {

void quantize_row_q2_K_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  row_by_block<block_q2_K>(x, y, n, importance, q2_K_block_lanes);
}
void quantize_row_q3_K_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  row_by_block<block_q3_K>(x, y, n, importance, q3_K_block_lanes);
}
void quantize_row_q4_K_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  q4_K_row_lanes(x, y, n, importance);
}
void quantize_row_q5_K_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  q5_K_row_lanes(x, y, n, importance);
}
void quantize_row_q6_K_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  row_by_block<block_q6_K>(x, y, n, importance, q6_K_block_lanes);
}

}  // namespace lowbit::kernels
