// NEON activation quantizers, byte-identical to the scalar references (and so to
// ggml's quantize_row_q8_*_ref): the maximum is order-independent, the scale and its
// reciprocal are computed as scalars exactly as the reference does, every product is
// the same single multiply, and AArch64 has both rounding modes as one conversion
// each: FCVTAS is roundf (ties away from zero), FCVTNS round-half-to-even.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <arm_neon.h>

#include <cstring>

#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// FCVT to half rounds to nearest even (the FPCR default), overflowing to Inf past
// 65520: the same bits as fp32_to_fp16 for every finite input and for Inf, the only
// values d and s can take here.
inline uint16_t to_fp16(float v) {
  return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(v))), 0);
}

// Four vectors of int32 (each within int8) -> 16 int8 in element order.
inline int8x16_t narrow_i32_to_i8(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  const int16x8_t ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
  const int16x8_t cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
  return vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd));
}

// One 32-element block with ggml's Q8_0 rounding; returns d (float) and the codes.
inline float q8_block(const float* x, int8_t* qs) {
  float32x4_t v[8];
  float32x4_t m = vdupq_n_f32(0.0f);
  for (int k = 0; k < 8; ++k) {
    v[k] = vld1q_f32(x + 4 * k);
    m = vmaxq_f32(m, vabsq_f32(v[k]));
  }
  const float d = vmaxvq_f32(m) / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int k = 0; k < 8; k += 4)
    vst1q_s8(qs + 4 * k, narrow_i32_to_i8(vcvtaq_s32_f32(vmulq_n_f32(v[k], id)),
                                          vcvtaq_s32_f32(vmulq_n_f32(v[k + 1], id)),
                                          vcvtaq_s32_f32(vmulq_n_f32(v[k + 2], id)),
                                          vcvtaq_s32_f32(vmulq_n_f32(v[k + 3], id))));
  return d;
}

}  // namespace

void quantize_activations_q8_0__neon(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_0*>(vy);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, x += QK_LEGACY) y[i].d = to_fp16(q8_block(x, y[i].qs));
}

void quantize_activations_q8_1__neon(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_1*>(vy);
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, x += QK_LEGACY) {
    const float d = q8_block(x, y[i].qs);
    y[i].d = to_fp16(d);
    const int sum = vaddlvq_s8(vld1q_s8(y[i].qs)) + vaddlvq_s8(vld1q_s8(y[i].qs + 16));
    y[i].s = to_fp16(static_cast<float>(sum) * d);
  }
}

void quantize_activations_q8_K__neon(const float* x, void* vy, int64_t n) {
  auto* y = static_cast<block_q8_K*>(vy);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int j = 0; j < QK_K; j += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + j)));
    const float amax = vmaxvq_f32(m);
    if (amax == 0.0f) {
      y[i].d = 0.0f;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    int first = 0;  // the reference keeps the first element of largest magnitude
    while (first < QK_K - 1 && (x[first] < 0 ? -x[first] : x[first]) != amax) ++first;
    const float iscale = -127.0f / x[first];
    const int32x4_t max_code = vdupq_n_s32(127);
    for (int j = 0; j < QK_K; j += 16) {
      int32x4_t q[4];
      // Round half to even, as the reference's magic-number trick; |value| <= 127.
      for (int k = 0; k < 4; ++k) q[k] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4 * k), iscale)), max_code);
      const int8x16_t codes = narrow_i32_to_i8(q[0], q[1], q[2], q[3]);
      vst1q_s8(y[i].qs + j, codes);
      y[i].bsums[j / 16] = static_cast<int16_t>(vaddlvq_s8(codes));
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace lowbit::kernels
