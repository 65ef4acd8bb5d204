// NEON `fast` quantizers for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and IQ4_XS without
// importance (IQ4's 16 trial scales per block in lanes: kernels/cpu/lanes/
// iq4_fast_lanes.hpp; the rest one block at a time):
// ggml's reference rounding (kernels/cpu/reference/legacy_fast.cpp), byte for byte,
// as the AVX2 ones do it (kernels/cpu/x86/avx2/quantize_legacy.cpp):
//   - the extremes are order-independent; where the reference keeps the first of
//     several equal candidates (the signed absmax, a zero minimum) a mask finds it;
//   - the scale and its inverse are the same scalar operations;
//   - each element is the same multiply, add, clamp and truncation (FCVTZS), and
//     Q8_0's roundf is FCVTAS (to nearest, ties away from zero).
// With importance they call the scalar reference (ggml's imatrix search; the
// `standard` lane searches cover the heavy case).
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <arm_neon.h>

#include <cfloat>
#include <cmath>
#include <cstring>

#include "common/iq4_buckets.hpp"
#include "cpu/lanes/iq4_fast_lanes.hpp"
#include "cpu/reference/scalar_math.hpp"
#include "lists/declarations.hpp"
#include "lowbit/formats/blocks.hpp"

// Iq4Lookup's 16-lane vectors are wider than NEON's registers; only the row
// functions have external linkage, so the calling convention never matters.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace lowbit::kernels {
namespace {

constexpr int QK = QK_LEGACY;

struct Block32 {
  float32x4_t v[8];  // elements 4k..4k+3 in v[k]
  explicit Block32(const float* x) {
    for (int k = 0; k < 8; ++k) v[k] = vld1q_f32(x + 4 * k);
  }
};

inline float max_of(const float32x4_t* a) {
  float32x4_t m = vmaxq_f32(vmaxq_f32(a[0], a[1]), vmaxq_f32(a[2], a[3]));
  m = vmaxq_f32(m, vmaxq_f32(vmaxq_f32(a[4], a[5]), vmaxq_f32(a[6], a[7])));
  return vmaxvq_f32(m);
}
inline float min_of(const float32x4_t* a) {
  float32x4_t m = vminq_f32(vminq_f32(a[0], a[1]), vminq_f32(a[2], a[3]));
  m = vminq_f32(m, vminq_f32(vminq_f32(a[4], a[5]), vminq_f32(a[6], a[7])));
  return vminvq_f32(m);
}

// Four 4-lane masks -> 16 bytes of 0x00 / 0xff in element order.
inline uint8x16_t narrow_masks(const uint32x4_t* m) {
  const uint16x8_t lo = vcombine_u16(vmovn_u32(m[0]), vmovn_u32(m[1]));
  const uint16x8_t hi = vcombine_u16(vmovn_u32(m[2]), vmovn_u32(m[3]));
  return vcombine_u8(vmovn_u16(lo), vmovn_u16(hi));
}

// Index of the first of the 32 elements equal to s (one exists).
inline int first_equal(const float32x4_t* v, float s) {
  const float32x4_t t = vdupq_n_f32(s);
  uint32x4_t m[8];
  for (int k = 0; k < 8; ++k) m[k] = vceqq_f32(v[k], t);
  for (int half = 0; half < 2; ++half) {
    // One nibble per byte (SHRN by 4 of the 16-bit pairs): bit 4j of the result is
    // set where element j of this half matched.
    const uint8x16_t b = narrow_masks(m + 4 * half);
    const uint64_t bits = vget_lane_u64(vreinterpret_u64_u8(vshrn_n_u16(vreinterpretq_u16_u8(b), 4)), 0);
    if (bits != 0) return 16 * half + __builtin_ctzll(bits) / 4;
  }
  return 0;  // unreachable when s is one of the elements
}

// trunc(clamp(v * id + off, 0, hi)) as the reference's trunc_code, as int32 lanes.
inline int32x4_t trunc_codes(float32x4_t v, float32x4_t id, float32x4_t off, float32x4_t hi) {
  float32x4_t t = vaddq_f32(vmulq_f32(v, id), off);
  t = vminq_f32(vmaxq_f32(t, vdupq_n_f32(0.0f)), hi);
  return vcvtq_s32_f32(t);
}

// Eight int32x4 codes (each within int8) -> 2 x 16 bytes in element order.
inline void narrow_codes(const int32x4_t* q, int8x16_t* out) {
  for (int h = 0; h < 2; ++h) {
    const int16x8_t lo = vcombine_s16(vmovn_s32(q[4 * h]), vmovn_s32(q[4 * h + 1]));
    const int16x8_t hi = vcombine_s16(vmovn_s32(q[4 * h + 2]), vmovn_s32(q[4 * h + 3]));
    out[h] = vcombine_s8(vmovn_s16(lo), vmovn_s16(hi));
  }
}

// Codes 0..31 of elements 0..15 (b[0]) and 16..31 (b[1]) -> nibbles; the fifth bits.
inline void store_nibbles(const int8x16_t* b, uint8_t* qs) {
  const uint8x16_t lo = vandq_u8(vreinterpretq_u8_s8(b[0]), vdupq_n_u8(0x0f));
  const uint8x16_t hi = vshlq_n_u8(vreinterpretq_u8_s8(b[1]), 4);
  vst1q_u8(qs, vorrq_u8(lo, hi));
}
inline void store_high_bits(const int8x16_t* b, uint8_t* qh) {
  static const int8_t kShift[16] = {0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7};
  const int8x16_t shift = vld1q_s8(kShift);
  for (int h = 0; h < 2; ++h) {
    const uint8x16_t bit = vandq_u8(vshrq_n_u8(vreinterpretq_u8_s8(b[h]), 4), vdupq_n_u8(1));
    const uint8x16_t placed = vshlq_u8(bit, shift);
    qh[2 * h] = vaddv_u8(vget_low_u8(placed));
    qh[2 * h + 1] = vaddv_u8(vget_high_u8(placed));
  }
}

template <class Block>
void sym_row(const float* x, Block* out, int64_t n, int nmax) {
  const float32x4_t off = vdupq_n_f32(static_cast<float>(nmax) + 0.5f);
  const float32x4_t hi = vdupq_n_f32(static_cast<float>(2 * nmax - 1));
  for (int64_t i = 0; i < n / QK; ++i, x += QK) {
    const Block32 blk(x);
    float32x4_t a[8];
    for (int k = 0; k < 8; ++k) a[k] = vabsq_f32(blk.v[k]);
    const float amax = max_of(a);
    // The reference keeps the first element of largest magnitude, with its sign.
    const float max = amax == 0.0f ? 0.0f : x[first_equal(a, amax)];
    const float d = max / static_cast<float>(-nmax);
    const float32x4_t id = vdupq_n_f32(finite_inverse(d));
    int32x4_t q[8];
    for (int k = 0; k < 8; ++k) q[k] = trunc_codes(blk.v[k], id, off, hi);
    int8x16_t b[2];
    narrow_codes(q, b);
    out[i].d = to_half(d);
    if constexpr (requires { out[i].qh; }) store_high_bits(b, out[i].qh);
    store_nibbles(b, out[i].qs);
  }
}

template <class Block>
void asym_row(const float* x, Block* out, int64_t n, int nmax) {
  const float32x4_t half = vdupq_n_f32(0.5f), hi = vdupq_n_f32(static_cast<float>(nmax));
  for (int64_t i = 0; i < n / QK; ++i, x += QK) {
    const Block32 blk(x);
    float min = min_of(blk.v);
    float max = max_of(blk.v);
    // The reference keeps the first zero it meets as the minimum, with its sign; a
    // zero maximum only matters in an all-zero block, whose d the reference gets as
    // x0 - x0 = +0, as +0 - min does.
    if (min == 0.0f) min = x[first_equal(blk.v, 0.0f)];
    if (max == 0.0f) max = 0.0f;
    const float d = (max - min) / static_cast<float>(nmax);
    const float32x4_t id = vdupq_n_f32(finite_inverse(d)), mv = vdupq_n_f32(min);
    int32x4_t q[8];
    for (int k = 0; k < 8; ++k) q[k] = trunc_codes(vsubq_f32(blk.v[k], mv), id, half, hi);
    int8x16_t b[2];
    narrow_codes(q, b);
    out[i].d = to_half(d);
    out[i].m = to_half(min);
    if constexpr (requires { out[i].qh; }) store_high_bits(b, out[i].qh);
    store_nibbles(b, out[i].qs);
  }
}

// ---------------------------------------------------------------- IQ4 code look-up

// The nearest code (ggml's best_index_int8) by bucket (kernels/common/iq4_buckets.hpp),
// sixteen values at a time in bytes: TBL finds each bucket's lower code, then its
// doubled upper threshold (an integer) as two byte halves, which floor(2v) is compared
// with (v >= t exactly when floor(2v) >= 2t, 2t being an integer).
class Iq4Lookup {
 public:
  typedef float Trials __attribute__((vector_size(64)));  // four registers: one TBL of codes

  Iq4Lookup()
      : lo_code_{vld1q_u8(kIq4Buckets.lo_code), vld1q_u8(kIq4Buckets.lo_code + 16)},
        thr_lo_(vld1q_u8(kIq4Buckets.twice_thr_lo)),
        thr_hi_(vld1q_u8(kIq4Buckets.twice_thr_hi)),
        values_(vld1q_s8(kIq4nlValues)) {}

  __attribute__((always_inline)) Trials splat(float v) const {
    const float32x4_t h[4] = {vdupq_n_f32(v), vdupq_n_f32(v), vdupq_n_f32(v), vdupq_n_f32(v)};
    Trials t;
    std::memcpy(&t, h, sizeof t);
    return t;
  }
  __attribute__((always_inline)) Trials value(Trials t) const {
    float32x4_t v[4];
    std::memcpy(v, &t, sizeof t);
    const int8x16_t q = vqtbl1q_s8(values_, codes(v));
    const int16x8_t q0 = vmovl_s8(vget_low_s8(q)), q1 = vmovl_high_s8(q);
    const float32x4_t r[4] = {vcvtq_f32_s32(vmovl_s16(vget_low_s16(q0))), vcvtq_f32_s32(vmovl_high_s16(q0)),
                              vcvtq_f32_s32(vmovl_s16(vget_low_s16(q1))), vcvtq_f32_s32(vmovl_high_s16(q1))};
    std::memcpy(&t, r, sizeof t);
    return t;
  }
  void pack(const float* x, float id, uint8_t* qs) const {
    const float32x4_t idv = vdupq_n_f32(id), lim = vdupq_n_f32(kIq4BucketLimit), nlim = vnegq_f32(lim);
    float32x4_t v[8];
    for (int k = 0; k < 8; ++k) v[k] = vminq_f32(vmaxq_f32(vmulq_f32(idv, vld1q_f32(x + 4 * k)), nlim), lim);
    vst1q_u8(qs, vorrq_u8(codes(v), vshlq_n_u8(codes(v + 4), 4)));
  }

 private:
  // The codes of 16 values with |v| <= kIq4BucketLimit.
  uint8x16_t codes(const float32x4_t* v) const {
    const float32x4_t scale = vdupq_n_f32(1.0f / kIq4BucketWidth);
    const float32x4_t shift = vdupq_n_f32(-kIq4BucketStart / kIq4BucketWidth);
    int32x4_t b[4], f[4];
    for (int k = 0; k < 4; ++k) {
      b[k] = vcvtq_s32_f32(vaddq_f32(vmulq_f32(v[k], scale), shift));
      f[k] = vcvtmq_s32_f32(vaddq_f32(v[k], v[k]));  // floor(2v): 2v is exact
    }
    const int16x8_t b0 = vcombine_s16(vmovn_s32(b[0]), vmovn_s32(b[1]));
    const int16x8_t b1 = vcombine_s16(vmovn_s32(b[2]), vmovn_s32(b[3]));
    const uint8x16_t bucket = vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(b0), vmovn_s16(b1)));
    const uint8x16_t lo = vqtbl2q_u8(lo_code_, bucket);
    const uint8x16_t tl = vqtbl1q_u8(thr_lo_, lo), th = vqtbl1q_u8(thr_hi_, lo);
    const int16x8_t thr0 = vreinterpretq_s16_u8(vzip1q_u8(tl, th)), thr1 = vreinterpretq_s16_u8(vzip2q_u8(tl, th));
    const int16x8_t f0 = vcombine_s16(vmovn_s32(f[0]), vmovn_s32(f[1]));
    const int16x8_t f1 = vcombine_s16(vmovn_s32(f[2]), vmovn_s32(f[3]));
    const uint8x16_t up = vcombine_u8(vmovn_u16(vcgeq_s16(f0, thr0)), vmovn_u16(vcgeq_s16(f1, thr1)));
    return vsubq_u8(lo, up);  // up lanes are 0xff: one code higher
  }

  uint8x16x2_t lo_code_;
  uint8x16_t thr_lo_, thr_hi_;
  int8x16_t values_;
};

}  // namespace

void quantize_row_q4_0_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q4_0_fast__scalar(x, y, n, importance);
  sym_row(x, static_cast<block_q4_0*>(y), n, 8);
}

void quantize_row_q5_0_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q5_0_fast__scalar(x, y, n, importance);
  sym_row(x, static_cast<block_q5_0*>(y), n, 16);
}

void quantize_row_q4_1_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q4_1_fast__scalar(x, y, n, importance);
  asym_row(x, static_cast<block_q4_1*>(y), n, 15);
}

void quantize_row_q5_1_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_q5_1_fast__scalar(x, y, n, importance);
  asym_row(x, static_cast<block_q5_1*>(y), n, 31);
}

void quantize_row_q8_0_fast__neon(const float* x, void* y, int64_t n, const float*) {
  auto* out = static_cast<block_q8_0*>(y);
  const float32x4_t lim = vdupq_n_f32(127.0f), nlim = vdupq_n_f32(-127.0f);
  for (int64_t i = 0; i < n / QK; ++i, x += QK) {
    const Block32 blk(x);
    float32x4_t a[8];
    for (int k = 0; k < 8; ++k) a[k] = vabsq_f32(blk.v[k]);
    const float d = max_of(a) / 127.0f;
    const float32x4_t id = vdupq_n_f32(finite_inverse(d));
    int32x4_t q[8];
    for (int k = 0; k < 8; ++k) q[k] = vcvtaq_s32_f32(vmaxq_f32(vminq_f32(vmulq_f32(blk.v[k], id), lim), nlim));
    int8x16_t b[2];
    narrow_codes(q, b);
    out[i].d = to_half(d);
    vst1q_s8(out[i].qs, b[0]);
    vst1q_s8(out[i].qs + 16, b[1]);
  }
}

void quantize_row_iq4_nl_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_iq4_nl_fast__scalar(x, y, n, importance);
  iq4_nl_fast_row<Iq4Lookup>(x, y, n);
}

void quantize_row_iq4_xs_fast__neon(const float* x, void* y, int64_t n, const float* importance) {
  if (importance) return quantize_row_iq4_xs_fast__scalar(x, y, n, importance);
  iq4_xs_fast_row<Iq4Lookup>(x, y, n);
}

}  // namespace lowbit::kernels
