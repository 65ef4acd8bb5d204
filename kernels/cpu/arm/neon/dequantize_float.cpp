// NEON decoders for the plain 16-bit float formats. Both conversions are exact, so
// the output equals the scalar references' bit for bit; the one case the hardware
// treats differently (FCVTL quiets signalling NaNs, the scalar conversion keeps their
// bits) takes the scalar path for that group of eight.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <arm_neon.h>

#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"

namespace lowbit::kernels {

void dequantize_row_f16__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(x);
  const uint16x8_t abs_mask = vdupq_n_u16(0x7fff), inf = vdupq_n_u16(0x7c00);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t h = vld1q_u16(in + i);
    // NaN: exponent all ones and a non-zero mantissa, i.e. |h| > 0x7c00.
    if (vmaxvq_u16(vcgtq_u16(vandq_u16(h, abs_mask), inf)) != 0) {
      for (int j = 0; j < 8; ++j) y[i + j] = fp16_to_fp32(in[i + j]);
      continue;
    }
    const float16x8_t f = vreinterpretq_f16_u16(h);
    vst1q_f32(y + i, vcvt_f32_f16(vget_low_f16(f)));
    vst1q_f32(y + i + 4, vcvt_high_f32_f16(f));
  }
  for (; i < n; ++i) y[i] = fp16_to_fp32(in[i]);
}

void dequantize_row_bf16__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const uint16_t*>(x);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t h = vld1q_u16(in + i);
    vst1q_u32(reinterpret_cast<uint32_t*>(y + i), vshll_n_u16(vget_low_u16(h), 16));
    vst1q_u32(reinterpret_cast<uint32_t*>(y + i + 4), vshll_high_n_u16(h, 16));
  }
  for (; i < n; ++i) y[i] = bf16_to_fp32(in[i]);
}

}  // namespace lowbit::kernels
