#pragma once
// Widening helpers shared by this folder's decoders. Internal linkage on purpose (as
// in kernels/cpu/x86/avx2/codes.hpp): a copy with external linkage compiled with one
// folder's flags could be the one the linker keeps for another's callers.
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace lowbit::kernels {
namespace {

// 16 signed codes times a scale, the product the scalar references form: float(q) * d
// (the int -> float conversion is exact; one rounding, in the multiply).
inline void store_i8_times(int8x16_t q, float32x4_t d, float* y) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_s8(vget_high_s8(q));
  vst1q_f32(y + 0, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
  vst1q_f32(y + 4, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), d));
  vst1q_f32(y + 8, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
  vst1q_f32(y + 12, vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), d));
}

// 16 unsigned codes: float(q) * d - m (K-quants with mins), rounded after each step
// like the scalar references (this folder is built with -ffp-contract=off, so the
// compiler never fuses the pair into one FMLS).
inline void store_u8_times_minus(uint8x16_t q, float32x4_t d, float32x4_t m, float* y) {
  const uint16x8_t lo = vmovl_u8(vget_low_u8(q)), hi = vmovl_u8(vget_high_u8(q));
  vst1q_f32(y + 0, vsubq_f32(vmulq_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))), d), m));
  vst1q_f32(y + 4, vsubq_f32(vmulq_f32(vcvtq_f32_u32(vmovl_u16(vget_high_u16(lo))), d), m));
  vst1q_f32(y + 8, vsubq_f32(vmulq_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))), d), m));
  vst1q_f32(y + 12, vsubq_f32(vmulq_f32(vcvtq_f32_u32(vmovl_u16(vget_high_u16(hi))), d), m));
}

// 16 unsigned codes: float(q) * d + m (the legacy formats with a minimum).
inline void store_u8_times_plus(uint8x16_t q, float32x4_t d, float32x4_t m, float* y) {
  const uint16x8_t lo = vmovl_u8(vget_low_u8(q)), hi = vmovl_u8(vget_high_u8(q));
  vst1q_f32(y + 0, vaddq_f32(vmulq_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))), d), m));
  vst1q_f32(y + 4, vaddq_f32(vmulq_f32(vcvtq_f32_u32(vmovl_u16(vget_high_u16(lo))), d), m));
  vst1q_f32(y + 8, vaddq_f32(vmulq_f32(vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))), d), m));
  vst1q_f32(y + 12, vaddq_f32(vmulq_f32(vcvtq_f32_u32(vmovl_u16(vget_high_u16(hi))), d), m));
}

// The 32 five-bit codes of a Q5_0 / Q5_1 block as two vectors (elements 0..15 from
// the low nibbles, 16..31 from the high ones); bit e of the little-endian u32 qh is
// element e's fifth bit.
inline void five_bit_codes(const uint8_t* qs, const uint8_t* qh, uint8x16_t& lo, uint8x16_t& hi) {
  const uint8x16_t bytes = vld1q_u8(qs), m4 = vdupq_n_u8(0x0f);
  uint32_t h;
  std::memcpy(&h, qh, 4);
  // Byte e of each half gets byte e / 8 of its 16 bits, then keeps bit e % 8 of it.
  const uint8x8_t hb = vreinterpret_u8_u32(vdup_n_u32(h));
  const uint8x16_t spread_lo = vcombine_u8(vdup_lane_u8(hb, 0), vdup_lane_u8(hb, 1));
  const uint8x16_t spread_hi = vcombine_u8(vdup_lane_u8(hb, 2), vdup_lane_u8(hb, 3));
  const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ULL));
  const uint8x16_t sixteen = vdupq_n_u8(16);
  lo = vorrq_u8(vandq_u8(bytes, m4), vandq_u8(vtstq_u8(spread_lo, bit), sixteen));
  hi = vorrq_u8(vshrq_n_u8(bytes, 4), vandq_u8(vtstq_u8(spread_hi, bit), sixteen));
}

}  // namespace
}  // namespace lowbit::kernels
