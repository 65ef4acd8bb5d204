// NEON dot products for every weight format (kernels/cpu/arm/dot_rows.hpp), on the
// plain ARMv8.0 Advanced SIMD every AArch64 core has: each 16-lane int8 dot is two
// widening multiplies (SMULL, SMULL2) and two pairwise widening adds (SADALP) into
// int32 lanes. Cores with SDOT run kernels/cpu/arm/dotprod/ instead.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include "cpu/arm/dot_rows.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

struct NeonOps {
  static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
  }
};

}  // namespace

float dot_q4_0_q8_0__neon(const void* w, const void* a, int64_t n) {
  return arm_dot::dot32<NeonOps, arm_dot::Q4_0Codes>(w, a, n);
}
float dot_q4_1_q8_1__neon(const void* w, const void* a, int64_t n) {
  return arm_dot::dot32<NeonOps, arm_dot::Q4_1Codes>(w, a, n);
}
float dot_q5_0_q8_0__neon(const void* w, const void* a, int64_t n) {
  return arm_dot::dot32<NeonOps, arm_dot::Q5_0Codes>(w, a, n);
}
float dot_q5_1_q8_1__neon(const void* w, const void* a, int64_t n) {
  return arm_dot::dot32<NeonOps, arm_dot::Q5_1Codes>(w, a, n);
}
float dot_q8_0_q8_0__neon(const void* w, const void* a, int64_t n) {
  return arm_dot::dot32<NeonOps, arm_dot::Q8_0Codes>(w, a, n);
}
float dot_iq4_nl_q8_0__neon(const void* w, const void* a, int64_t n) {
  return arm_dot::dot32<NeonOps, arm_dot::Iq4NlCodes>(w, a, n);
}
float dot_q2_K_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::q2_K<NeonOps>(w, a, n); }
float dot_q3_K_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::q3_K<NeonOps>(w, a, n); }
float dot_q4_K_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::q4_K<NeonOps>(w, a, n); }
float dot_q5_K_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::q5_K<NeonOps>(w, a, n); }
float dot_q6_K_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::q6_K<NeonOps>(w, a, n); }
float dot_iq4_xs_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::iq4_xs<NeonOps>(w, a, n); }
float dot_f32_f32__neon(const void* w, const void* a, int64_t n) { return arm_dot::f32(w, a, n); }
float dot_f16_f32__neon(const void* w, const void* a, int64_t n) { return arm_dot::f16(w, a, n); }
float dot_bf16_f32__neon(const void* w, const void* a, int64_t n) { return arm_dot::bf16(w, a, n); }

// The multi-row family: four rows in the lanes of a float vector (arm_dot::rows32).
void dot_rows_q4_0_q8_0__neon(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  arm_dot::rows32<NeonOps, arm_dot::Q4_0Codes>(w, row_bytes, a, n, rows, y);
}
void dot_rows_q4_1_q8_1__neon(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  arm_dot::rows32<NeonOps, arm_dot::Q4_1Codes>(w, row_bytes, a, n, rows, y);
}
void dot_rows_q5_0_q8_0__neon(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  arm_dot::rows32<NeonOps, arm_dot::Q5_0Codes>(w, row_bytes, a, n, rows, y);
}
void dot_rows_q5_1_q8_1__neon(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  arm_dot::rows32<NeonOps, arm_dot::Q5_1Codes>(w, row_bytes, a, n, rows, y);
}
void dot_rows_q8_0_q8_0__neon(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  arm_dot::rows32<NeonOps, arm_dot::Q8_0Codes>(w, row_bytes, a, n, rows, y);
}
void dot_rows_iq4_nl_q8_0__neon(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) {
  arm_dot::rows32<NeonOps, arm_dot::Iq4NlCodes>(w, row_bytes, a, n, rows, y);
}

}  // namespace lowbit::kernels
