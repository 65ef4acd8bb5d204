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

// The 32-element formats, one row and several rows (arm_dot::dot32, arm_dot::rows32).
LOWBIT_ARM_DOT32_ENTRY_POINTS(neon, NeonOps)

float dot_q2_K_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::q2_K<NeonOps>(w, a, n); }
float dot_q3_K_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::q3_K<NeonOps>(w, a, n); }
float dot_q4_K_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::q4_K<NeonOps>(w, a, n); }
float dot_q5_K_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::q5_K<NeonOps>(w, a, n); }
float dot_q6_K_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::q6_K<NeonOps>(w, a, n); }
float dot_iq4_xs_q8_K__neon(const void* w, const void* a, int64_t n) { return arm_dot::iq4_xs<NeonOps>(w, a, n); }
float dot_f32_f32__neon(const void* w, const void* a, int64_t n) { return arm_dot::f32(w, a, n); }
float dot_f16_f32__neon(const void* w, const void* a, int64_t n) { return arm_dot::f16(w, a, n); }
float dot_bf16_f32__neon(const void* w, const void* a, int64_t n) { return arm_dot::bf16(w, a, n); }

}  // namespace lowbit::kernels
