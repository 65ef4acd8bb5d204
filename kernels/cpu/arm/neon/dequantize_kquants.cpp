// NEON decoders for the 256-element super-block formats (K-quants, Q8_K, IQ4_XS).
// Sub-block scales and mins are formed as scalars exactly as the references form
// them (d * sc, dmin * m); each element is then one multiply (and one subtract for
// the formats with mins), unfused, so the output is the reference's bit for bit.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <arm_neon.h>

#include "common/kquant_scales.hpp"
#include "cpu/arm/neon/codes.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// The sixteen 2-bit codes of Q2_K / Q3_K sub-block j (16 elements): element e sits in
// bits 2*((e % 128) / 32) of qs[32 * (e / 128) + e % 32].
inline uint8x16_t low_2bit_codes(const uint8_t* qs, int j) {
  const uint8x16_t bytes = vld1q_u8(qs + 32 * (j / 8) + 16 * (j % 2));
  const int8x16_t shift = vdupq_n_s8(static_cast<int8_t>(-2 * ((j % 8) / 2)));
  return vandq_u8(vshlq_u8(bytes, shift), vdupq_n_u8(3));
}

}  // namespace

void dequantize_row_q2_K__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q2_K*>(x);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const block_q2_K& blk = in[b];
    const float d = fp16_to_fp32(blk.d), dmin = fp16_to_fp32(blk.dmin);
    for (int j = 0; j < QK_K / 16; ++j, y += 16) {
      const float dl = d * static_cast<float>(blk.scales[j] & 0xF);
      const float ml = dmin * static_cast<float>(blk.scales[j] >> 4);
      store_u8_times_minus(low_2bit_codes(blk.qs, j), vdupq_n_f32(dl), vdupq_n_f32(ml), y);
    }
  }
}

void dequantize_row_q3_K__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q3_K*>(x);
  const int8x16_t four = vdupq_n_s8(4);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const block_q3_K& blk = in[b];
    const float d = fp16_to_fp32(blk.d);
    for (int j = 0; j < QK_K / 16; ++j, y += 16) {
      const int lo = (blk.scales[j % 8] >> (j < 8 ? 0 : 4)) & 0xF;
      const int hi = (blk.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
      const float dl = d * static_cast<float>((lo | hi << 4) - 32);
      // Element e's high bit is bit e / 32 of hmask[e % 32]; a clear bit subtracts 4.
      const uint8x16_t hm = vld1q_u8(blk.hmask + 16 * (j % 2));
      const uint8x16_t set = vtstq_u8(hm, vdupq_n_u8(static_cast<uint8_t>(1u << (j / 2))));
      const int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(low_2bit_codes(blk.qs, j)),
                                   vbicq_s8(four, vreinterpretq_s8_u8(set)));
      store_i8_times(q, vdupq_n_f32(dl), y);
    }
  }
}

void dequantize_row_q4_K__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q4_K*>(x);
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q4_K& b = in[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const uint8_t* q = b.qs;
    for (int j = 0; j < QK_K / 32; j += 2, q += 32, y += 64) {
      uint8_t sc, m;
      get_scale_min_k4(j, b.scales, sc, m);
      const float32x4_t d1 = vdupq_n_f32(d * sc), m1 = vdupq_n_f32(dmin * m);
      get_scale_min_k4(j + 1, b.scales, sc, m);
      const float32x4_t d2 = vdupq_n_f32(d * sc), m2 = vdupq_n_f32(dmin * m);
      const uint8x16_t q0 = vld1q_u8(q), q1 = vld1q_u8(q + 16);
      store_u8_times_minus(vandq_u8(q0, m4), d1, m1, y);
      store_u8_times_minus(vandq_u8(q1, m4), d1, m1, y + 16);
      store_u8_times_minus(vshrq_n_u8(q0, 4), d2, m2, y + 32);
      store_u8_times_minus(vshrq_n_u8(q1, 4), d2, m2, y + 48);
    }
  }
}

void dequantize_row_q5_K__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q5_K*>(x);
  const uint8x16_t m4 = vdupq_n_u8(0x0f), sixteen = vdupq_n_u8(16);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q5_K& b = in[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const uint8x16_t qh0 = vld1q_u8(b.qh), qh1 = vld1q_u8(b.qh + 16);
    const uint8_t* ql = b.qs;
    for (int j = 0; j < QK_K / 32; j += 2, ql += 32, y += 64) {
      uint8_t sc, m;
      get_scale_min_k4(j, b.scales, sc, m);
      const float32x4_t d1 = vdupq_n_f32(d * sc), m1 = vdupq_n_f32(dmin * m);
      get_scale_min_k4(j + 1, b.scales, sc, m);
      const float32x4_t d2 = vdupq_n_f32(d * sc), m2 = vdupq_n_f32(dmin * m);
      // Sub-block j's fifth bits are bit j of qh[l], sub-block j + 1's bit j + 1.
      const uint8x16_t u1 = vdupq_n_u8(static_cast<uint8_t>(1u << j)), u2 = vdupq_n_u8(static_cast<uint8_t>(2u << j));
      const uint8x16_t q0 = vld1q_u8(ql), q1 = vld1q_u8(ql + 16);
      store_u8_times_minus(vorrq_u8(vandq_u8(q0, m4), vandq_u8(vtstq_u8(qh0, u1), sixteen)), d1, m1, y);
      store_u8_times_minus(vorrq_u8(vandq_u8(q1, m4), vandq_u8(vtstq_u8(qh1, u1), sixteen)), d1, m1, y + 16);
      store_u8_times_minus(vorrq_u8(vshrq_n_u8(q0, 4), vandq_u8(vtstq_u8(qh0, u2), sixteen)), d2, m2, y + 32);
      store_u8_times_minus(vorrq_u8(vshrq_n_u8(q1, 4), vandq_u8(vtstq_u8(qh1, u2), sixteen)), d2, m2, y + 48);
    }
  }
}

void dequantize_row_q6_K__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q6_K*>(x);
  const uint8x16_t m4 = vdupq_n_u8(0x0f), m2 = vdupq_n_u8(3);
  const int8x16_t thirty_two = vdupq_n_s8(32);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q6_K& b = in[i];
    const float d = fp16_to_fp32(b.d);
    const uint8_t* ql = b.ql;
    const uint8_t* qh = b.qh;
    const int8_t* sc = b.scales;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32, sc += 8, y += 128) {
      // Two halves of 16 elements (l = 0..15 and 16..31), each with its own scales.
      for (int h = 0; h < 2; ++h) {
        const uint8x16_t a = vld1q_u8(ql + 16 * h), c = vld1q_u8(ql + 32 + 16 * h), hb = vld1q_u8(qh + 16 * h);
        const uint8x16_t q1 = vorrq_u8(vandq_u8(a, m4), vshlq_n_u8(vandq_u8(hb, m2), 4));
        const uint8x16_t q2 = vorrq_u8(vandq_u8(c, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m2), 4));
        const uint8x16_t q3 = vorrq_u8(vshrq_n_u8(a, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m2), 4));
        const uint8x16_t q4 = vorrq_u8(vshrq_n_u8(c, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4));
        const uint8x16_t q[4] = {q1, q2, q3, q4};
        for (int k = 0; k < 4; ++k)
          store_i8_times(vsubq_s8(vreinterpretq_s8_u8(q[k]), thirty_two),
                         vdupq_n_f32(d * static_cast<float>(sc[h + 2 * k])), y + 32 * k + 16 * h);
      }
    }
  }
}

void dequantize_row_q8_K__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_q8_K*>(x);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float32x4_t d = vdupq_n_f32(in[i].d);
    for (int j = 0; j < QK_K; j += 16, y += 16) store_i8_times(vld1q_s8(in[i].qs + j), d, y);
  }
}

void dequantize_row_iq4_xs__neon(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_iq4_xs*>(x);
  const int8x16_t book = vld1q_s8(kIq4nlValues);
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(in[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib, y += 32) {
      const int ls = ((in[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((in[i].scales_h >> (2 * ib)) & 3) << 4);
      const float32x4_t dl = vdupq_n_f32(d * static_cast<float>(ls - 32));
      const uint8x16_t qs = vld1q_u8(in[i].qs + 16 * ib);
      store_i8_times(vqtbl1q_s8(book, vandq_u8(qs, m4)), dl, y);
      store_i8_times(vqtbl1q_s8(book, vshrq_n_u8(qs, 4)), dl, y + 16);
    }
  }
}

}  // namespace lowbit::kernels
