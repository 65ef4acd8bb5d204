// NEON decoders for the 32-element formats. They perform the scalar references' float
// operations in the same order (one multiply, then the minimum's add; no FMA: the
// folder builds with -ffp-contract=off), so their output is bit-identical to the
// scalar decoders'. Block scales go through the scalar fp16_to_fp32, like the
// reference, so even a NaN scale's payload comes out the same.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <arm_neon.h>

#include "cpu/arm/neon/codes.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {

void dequantize_row_q4_0__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q4_0*>(x);
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  const int8x16_t eight = vdupq_n_s8(8);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const float32x4_t d = vdupq_n_f32(fp16_to_fp32(in[i].d));
    const uint8x16_t qs = vld1q_u8(in[i].qs);
    // Elements 0..15 are the low nibbles, 16..31 the high ones; both minus 8.
    store_i8_times(vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, m4)), eight), d, y);
    store_i8_times(vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(qs, 4)), eight), d, y + 16);
  }
}

void dequantize_row_q4_1__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q4_1*>(x);
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const float32x4_t d = vdupq_n_f32(fp16_to_fp32(in[i].d)), m = vdupq_n_f32(fp16_to_fp32(in[i].m));
    const uint8x16_t qs = vld1q_u8(in[i].qs);
    store_u8_times_plus(vandq_u8(qs, m4), d, m, y);
    store_u8_times_plus(vshrq_n_u8(qs, 4), d, m, y + 16);
  }
}

void dequantize_row_q5_0__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q5_0*>(x);
  const int8x16_t sixteen = vdupq_n_s8(16);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const float32x4_t d = vdupq_n_f32(fp16_to_fp32(in[i].d));
    uint8x16_t lo, hi;
    five_bit_codes(in[i].qs, in[i].qh, lo, hi);
    store_i8_times(vsubq_s8(vreinterpretq_s8_u8(lo), sixteen), d, y);
    store_i8_times(vsubq_s8(vreinterpretq_s8_u8(hi), sixteen), d, y + 16);
  }
}

void dequantize_row_q5_1__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q5_1*>(x);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const float32x4_t d = vdupq_n_f32(fp16_to_fp32(in[i].d)), m = vdupq_n_f32(fp16_to_fp32(in[i].m));
    uint8x16_t lo, hi;
    five_bit_codes(in[i].qs, in[i].qh, lo, hi);
    store_u8_times_plus(lo, d, m, y);
    store_u8_times_plus(hi, d, m, y + 16);
  }
}

void dequantize_row_q8_0__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q8_0*>(x);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const float32x4_t d = vdupq_n_f32(fp16_to_fp32(in[i].d));
    store_i8_times(vld1q_s8(in[i].qs), d, y);
    store_i8_times(vld1q_s8(in[i].qs + 16), d, y + 16);
  }
}

// Q8_1 decodes like Q8_0; its s field (d * sum(q)) is for dot products only.
void dequantize_row_q8_1__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q8_1*>(x);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const float32x4_t d = vdupq_n_f32(fp16_to_fp32(in[i].d));
    store_i8_times(vld1q_s8(in[i].qs), d, y);
    store_i8_times(vld1q_s8(in[i].qs + 16), d, y + 16);
  }
}

void dequantize_row_iq4_nl__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_iq4_nl*>(x);
  // The 16-entry code book as a table lookup: code -> int8 value.
  const int8x16_t book = vld1q_s8(kIq4nlValues);
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, y += QK_LEGACY) {
    const float32x4_t d = vdupq_n_f32(fp16_to_fp32(in[i].d));
    const uint8x16_t qs = vld1q_u8(in[i].qs);
    store_i8_times(vqtbl1q_s8(book, vandq_u8(qs, m4)), d, y);
    store_i8_times(vqtbl1q_s8(book, vshrq_n_u8(qs, 4)), d, y + 16);
  }
}

}  // namespace lowbit::kernels
