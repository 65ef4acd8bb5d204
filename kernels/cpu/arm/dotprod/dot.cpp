// Dot products with the Armv8.2 dot-product instructions (kernels/cpu/arm/dot_rows.hpp):
// each 16-lane int8 dot is one SDOT (vdotq_s32), four int8 products summed into each
// int32 lane, where plain NEON needs four instructions. Only the integer formats: the
// float formats have nothing for SDOT to do and keep their NEON variants.
#include "cpu/arm/dotprod/target.hpp"  // first: checks this file's compile flags

#include "cpu/arm/dot_rows.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

struct DotprodOps {
  static int32x4_t dot(int32x4_t acc, int8x16_t a, int8x16_t b) { return vdotq_s32(acc, a, b); }
};

}  // namespace

// The 32-element formats, one row and several rows (arm_dot::dot32, arm_dot::rows32).
LOWBIT_ARM_DOT32_ENTRY_POINTS(dotprod, DotprodOps)

float dot_q2_K_q8_K__dotprod(const void* w, const void* a, int64_t n) { return arm_dot::q2_K<DotprodOps>(w, a, n); }
float dot_q3_K_q8_K__dotprod(const void* w, const void* a, int64_t n) { return arm_dot::q3_K<DotprodOps>(w, a, n); }
float dot_q4_K_q8_K__dotprod(const void* w, const void* a, int64_t n) { return arm_dot::q4_K<DotprodOps>(w, a, n); }
float dot_q5_K_q8_K__dotprod(const void* w, const void* a, int64_t n) { return arm_dot::q5_K<DotprodOps>(w, a, n); }
float dot_q6_K_q8_K__dotprod(const void* w, const void* a, int64_t n) { return arm_dot::q6_K<DotprodOps>(w, a, n); }
float dot_iq4_xs_q8_K__dotprod(const void* w, const void* a, int64_t n) { return arm_dot::iq4_xs<DotprodOps>(w, a, n); }

}  // namespace lowbit::kernels
