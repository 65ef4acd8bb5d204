#pragma once
// The dot products of the AArch64 folders, written once over the one instruction that
// differs between them: a 16-lane int8 dot into four int32 lanes (`Ops::dot`), which
// kernels/cpu/arm/neon/ builds from SMULL + SADALP and kernels/cpu/arm/dotprod/ from
// SDOT. Included only by those folders' dot.cpp, after their target.hpp; everything
// here has internal linkage, so each folder gets its own copy compiled with its flags.
//
// Each block's integer sum is exact (the int32 lanes cannot overflow: at most 256
// products of at most 127 * 128, times scales below 64), and the float terms are
// formed and accumulated exactly as the scalar references do (kernels/cpu/reference/
// dot.cpp), block by block; the float formats sum products of 16 elements in float
// lanes and carry the running sum in float64.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/kquant_scales.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {
namespace arm_dot {

// The sum of all lanes of a + b (two accumulators keep two dependency chains).
inline int hsum(int32x4_t a) { return vaddvq_s32(a); }

// 32 nibble codes (elements 0..15 low nibbles, 16..31 high) as two int8 vectors.
inline void nibbles(const uint8_t* qs, int8x16_t& lo, int8x16_t& hi) {
  const uint8x16_t b = vld1q_u8(qs);
  lo = vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0f)));
  hi = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
}

// Q5's 32 five-bit codes: the nibbles plus bit e of the little-endian u32 qh as bit 4.
inline void five_bit(const uint8_t* qs, const uint8_t* qh, int8x16_t& lo, int8x16_t& hi) {
  nibbles(qs, lo, hi);
  uint32_t h;
  std::memcpy(&h, qh, 4);
  const uint8x8_t hb = vreinterpret_u8_u32(vdup_n_u32(h));
  const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ULL));
  const uint8x16_t sixteen = vdupq_n_u8(16);
  const uint8x16_t s0 = vtstq_u8(vcombine_u8(vdup_lane_u8(hb, 0), vdup_lane_u8(hb, 1)), bit);
  const uint8x16_t s1 = vtstq_u8(vcombine_u8(vdup_lane_u8(hb, 2), vdup_lane_u8(hb, 3)), bit);
  lo = vorrq_s8(lo, vreinterpretq_s8_u8(vandq_u8(s0, sixteen)));
  hi = vorrq_s8(hi, vreinterpretq_s8_u8(vandq_u8(s1, sixteen)));
}

// The 16 two-bit codes of Q2_K / Q3_K sub-block j: element e sits in bits
// 2*((e % 128) / 32) of qs[32 * (e / 128) + e % 32].
inline int8x16_t two_bit(const uint8_t* qs, int j) {
  const uint8x16_t b = vld1q_u8(qs + 32 * (j / 8) + 16 * (j % 2));
  const int8x16_t shift = vdupq_n_s8(static_cast<int8_t>(-2 * ((j % 8) / 2)));
  return vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b, shift), vdupq_n_u8(3)));
}

// ---------------------------------------------------------------- 32-element formats x Q8_0 / Q8_1

// Integer sum of one 32-element block: codes (lo: elements 0..15, hi: 16..31) times
// the activation codes.
template <class Ops>
inline int block_isum(int8x16_t lo, int8x16_t hi, const int8_t* a) {
  return hsum(Ops::dot(Ops::dot(vdupq_n_s32(0), lo, vld1q_s8(a)), hi, vld1q_s8(a + 16)));
}

// The six formats' signed codes of one block (lo: elements 0..15, hi: 16..31), and
// whether the block has a min (Q4_1 / Q5_1, against Q8_1's s).
struct Q4_0Codes {
  using W = block_q4_0;
  using A = block_q8_0;
  static constexpr bool kMin = false;
  static void codes(const W& b, int8x16_t& lo, int8x16_t& hi) {
    nibbles(b.qs, lo, hi);
    lo = vsubq_s8(lo, vdupq_n_s8(8));
    hi = vsubq_s8(hi, vdupq_n_s8(8));
  }
};
struct Q4_1Codes {
  using W = block_q4_1;
  using A = block_q8_1;
  static constexpr bool kMin = true;
  static void codes(const W& b, int8x16_t& lo, int8x16_t& hi) { nibbles(b.qs, lo, hi); }
};
struct Q5_0Codes {
  using W = block_q5_0;
  using A = block_q8_0;
  static constexpr bool kMin = false;
  static void codes(const W& b, int8x16_t& lo, int8x16_t& hi) {
    five_bit(b.qs, b.qh, lo, hi);
    lo = vsubq_s8(lo, vdupq_n_s8(16));
    hi = vsubq_s8(hi, vdupq_n_s8(16));
  }
};
struct Q5_1Codes {
  using W = block_q5_1;
  using A = block_q8_1;
  static constexpr bool kMin = true;
  static void codes(const W& b, int8x16_t& lo, int8x16_t& hi) { five_bit(b.qs, b.qh, lo, hi); }
};
struct Q8_0Codes {
  using W = block_q8_0;
  using A = block_q8_0;
  static constexpr bool kMin = false;
  static void codes(const W& b, int8x16_t& lo, int8x16_t& hi) {
    lo = vld1q_s8(b.qs);
    hi = vld1q_s8(b.qs + 16);
  }
};
struct Iq4NlCodes {
  using W = block_iq4_nl;
  using A = block_q8_0;
  static constexpr bool kMin = false;
  static void codes(const W& b, int8x16_t& lo, int8x16_t& hi) {
    const int8x16_t book = vld1q_s8(kIq4nlValues);
    nibbles(b.qs, lo, hi);
    lo = vqtbl1q_s8(book, vreinterpretq_u8_s8(lo));
    hi = vqtbl1q_s8(book, vreinterpretq_u8_s8(hi));
  }
};

// One row: sum over the blocks, in block order, of (d_w d_a) * isum [+ m_w s_a], as
// the scalar reference forms and adds them.
template <class Ops, class F>
float dot32(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const typename F::W*>(vw);
  const auto* a = static_cast<const typename F::A*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
    int8x16_t lo, hi;
    F::codes(w[i], lo, hi);
    const int isum = block_isum<Ops>(lo, hi, a[i].qs);
    if constexpr (F::kMin)
      sum += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(isum) +
             fp16_to_fp32(w[i].m) * fp16_to_fp32(a[i].s);
    else
      sum += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(isum);
  }
  return sum;
}

// Four fp16 fields, one from each of four rows' block i, as a float vector (exact, as
// fp16_to_fp32 is).
template <class W, class Field>
inline float32x4_t halves4(const W* const w[4], int64_t i, Field field) {
  const uint16_t h[4] = {field(w[0][i]), field(w[1][i]), field(w[2][i]), field(w[3][i])};
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}

// The multi-row family (lowbit/kernels/dot_rows.hpp): four rows at a time in the
// lanes of a float vector. Lane r runs row r's float operations of dot32 in the same
// order (the block terms, in block order, into one running sum), so y[r] is bit for bit
// dot32's; the four rows share the activation loads and scale conversions, reduce
// their int32 lanes with two pairwise adds instead of four across-vector sums, and
// replace one serial float chain by four independent ones. Rows left over (rows % 4)
// run dot32.
template <class Ops, class F>
void rows32(const void* vw, size_t row_bytes, const void* va, int64_t n, int64_t rows, float* y) {
  using W = typename F::W;
  const auto* a = static_cast<const typename F::A*>(va);
  const auto row = [&](int64_t r) {
    return reinterpret_cast<const W*>(static_cast<const std::byte*>(vw) + static_cast<size_t>(r) * row_bytes);
  };
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const W* const w[4] = {row(r), row(r + 1), row(r + 2), row(r + 3)};
    float32x4_t sum = vdupq_n_f32(0);
    for (int64_t i = 0; i < n / QK_LEGACY; ++i) {
      const int8x16_t a0 = vld1q_s8(a[i].qs), a1 = vld1q_s8(a[i].qs + 16);
      int32x4_t p[4];
      for (int k = 0; k < 4; ++k) {
        int8x16_t lo, hi;
        F::codes(w[k][i], lo, hi);
        p[k] = Ops::dot(Ops::dot(vdupq_n_s32(0), lo, a0), hi, a1);
      }
      const int32x4_t isum = vpaddq_s32(vpaddq_s32(p[0], p[1]), vpaddq_s32(p[2], p[3]));
      const float32x4_t dw = halves4(w, i, [](const W& b) { return b.d; });
      float32x4_t term = vmulq_f32(vmulq_n_f32(dw, fp16_to_fp32(a[i].d)), vcvtq_f32_s32(isum));
      if constexpr (F::kMin)
        term = vaddq_f32(term, vmulq_n_f32(halves4(w, i, [](const W& b) { return b.m; }), fp16_to_fp32(a[i].s)));
      sum = vaddq_f32(sum, term);
    }
    vst1q_f32(y + r, sum);
  }
  for (; r < rows; ++r) y[r] = dot32<Ops, F>(row(r), va, n);
}

// ---------------------------------------------------------------- super-blocks x Q8_K

// sum_j m[j] * bsums[j] over Q8_K's sixteen 16-element sums, m as 16 bytes.
inline int bsum_dot16(const uint8x16_t m, const int16_t* bsums) {
  const int16x8_t m0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m)));
  const int16x8_t m1 = vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(m)));
  const int16x8_t b0 = vld1q_s16(bsums), b1 = vld1q_s16(bsums + 8);
  int32x4_t acc = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
  acc = vmlal_s16(acc, vget_high_s16(m0), vget_high_s16(b0));
  acc = vmlal_s16(acc, vget_low_s16(m1), vget_low_s16(b1));
  acc = vmlal_s16(acc, vget_high_s16(m1), vget_high_s16(b1));
  return hsum(acc);
}

// sum over sixteen 16-element sub-blocks of scale[j] * (codes_j . a_j); the per
// sub-block sums go into one vector of 16 lanes' worth, four at a time.
template <class Ops, class Codes>
inline int isum16(const int8_t* a, const int32_t* scale, Codes codes) {
  int32x4_t acc = vdupq_n_s32(0);
  for (int j = 0; j < 16; j += 4) {
    int32x4_t p[4];
    for (int k = 0; k < 4; ++k) p[k] = Ops::dot(vdupq_n_s32(0), codes(j + k), vld1q_s8(a + 16 * (j + k)));
    // Lane k of the pairwise sums is sub-block j + k's code sum.
    const int32x4_t s = vpaddq_s32(vpaddq_s32(p[0], p[1]), vpaddq_s32(p[2], p[3]));
    acc = vmlaq_s32(acc, s, vld1q_s32(scale + j));
  }
  return hsum(acc);
}

template <class Ops>
float q2_K(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q2_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const uint8x16_t sc_m = vld1q_u8(w[i].scales);
    alignas(16) int32_t sc[16];
    const uint8x16_t s8 = vandq_u8(sc_m, vdupq_n_u8(0x0f));
    const uint16x8_t s16lo = vmovl_u8(vget_low_u8(s8)), s16hi = vmovl_u8(vget_high_u8(s8));
    vst1q_s32(sc + 0, vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(s16lo))));
    vst1q_s32(sc + 4, vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(s16lo))));
    vst1q_s32(sc + 8, vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(s16hi))));
    vst1q_s32(sc + 12, vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(s16hi))));
    const uint8_t* qs = w[i].qs;
    const int isum = isum16<Ops>(a[i].qs, sc, [qs](int j) { return two_bit(qs, j); });
    const int mins = bsum_dot16(vshrq_n_u8(sc_m, 4), a[i].bsums);
    const float dall = a[i].d * fp16_to_fp32(w[i].d), dmin = a[i].d * fp16_to_fp32(w[i].dmin);
    sum += dall * static_cast<float>(isum) - dmin * static_cast<float>(mins);
  }
  return sum;
}

template <class Ops>
float q3_K(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q3_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    alignas(16) int32_t sc[16];
    for (int j = 0; j < 16; ++j) {
      const int lo = (w[i].scales[j % 8] >> (j < 8 ? 0 : 4)) & 0xF;
      const int hi = (w[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
      sc[j] = (lo | hi << 4) - 32;
    }
    const uint8_t* qs = w[i].qs;
    const uint8_t* hmask = w[i].hmask;
    const int isum = isum16<Ops>(a[i].qs, sc, [qs, hmask](int j) {
      // Element e's high bit is bit e / 32 of hmask[e % 32]; a clear bit subtracts 4.
      const uint8x16_t set = vtstq_u8(vld1q_u8(hmask + 16 * (j % 2)), vdupq_n_u8(static_cast<uint8_t>(1u << (j / 2))));
      return vsubq_s8(two_bit(qs, j), vbicq_s8(vdupq_n_s8(4), vreinterpretq_s8_u8(set)));
    });
    sum += (a[i].d * fp16_to_fp32(w[i].d)) * static_cast<float>(isum);
  }
  return sum;
}

template <class Ops>
float q6_K(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_q6_K*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    alignas(16) int32_t sc[16];
    const int8x16_t s8 = vld1q_s8(w[i].scales);
    const int16x8_t s16lo = vmovl_s8(vget_low_s8(s8)), s16hi = vmovl_s8(vget_high_s8(s8));
    vst1q_s32(sc + 0, vmovl_s16(vget_low_s16(s16lo)));
    vst1q_s32(sc + 4, vmovl_s16(vget_high_s16(s16lo)));
    vst1q_s32(sc + 8, vmovl_s16(vget_low_s16(s16hi)));
    vst1q_s32(sc + 12, vmovl_s16(vget_high_s16(s16hi)));
    const uint8_t* ql = w[i].ql;
    const uint8_t* qh = w[i].qh;
    // Sub-block j holds elements 16j..16j+15 = 128h + 32k + l with h = j / 8,
    // k = (j % 8) / 2, l = 16 (j % 2) + 0..15: the nibble (k >= 2: high) of
    // ql[64h + 32(k % 2) + l], two high bits at 2k of qh[32h + l], minus 32.
    const int isum = isum16<Ops>(a[i].qs, sc, [ql, qh](int j) {
      const int h = j / 8, k = (j % 8) / 2, l = 16 * (j % 2);
      const uint8x16_t lb = vld1q_u8(ql + 64 * h + 32 * (k % 2) + l);
      const uint8x16_t low = k >= 2 ? vshrq_n_u8(lb, 4) : vandq_u8(lb, vdupq_n_u8(0x0f));
      const uint8x16_t hb = vld1q_u8(qh + 32 * h + l);
      const uint8x16_t high = vandq_u8(vshlq_u8(hb, vdupq_n_s8(static_cast<int8_t>(-2 * k))), vdupq_n_u8(3));
      return vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low, vshlq_n_u8(high, 4))), vdupq_n_s8(32));
    });
    sum += (a[i].d * fp16_to_fp32(w[i].d)) * static_cast<float>(isum);
  }
  return sum;
}

// Q4_K / Q5_K: eight 32-element sub-blocks with 6-bit scales and mins; sub-blocks 2k
// and 2k + 1 share qs[32k..32k + 31] (low nibbles, then high ones); Q5_K's fifth bit
// of sub-block j's element l is bit j of qh[l].
template <class Ops, bool kFifthBit, class Block>
float k4_family(const Block* w, const block_q8_K* a, int64_t blocks) {
  float sum = 0;
  for (int64_t i = 0; i < blocks; ++i) {
    const int8_t* aq = a[i].qs;
    int32x4_t acc = vdupq_n_s32(0);
    alignas(16) int32_t sc[8];
    uint8_t mins[16] = {};
    for (int j = 0; j < 8; ++j) {
      uint8_t s, m;
      get_scale_min_k4(j, w[i].scales, s, m);
      sc[j] = s;
      mins[2 * j] = m;  // paired with the two 16-element bsums of sub-block j
      mins[2 * j + 1] = m;
    }
    int32x4_t p[8];
    for (int k = 0; k < 4; ++k) {
      const uint8x16_t b0 = vld1q_u8(w[i].qs + 32 * k), b1 = vld1q_u8(w[i].qs + 32 * k + 16);
      uint8x16_t lo0 = vandq_u8(b0, vdupq_n_u8(0x0f)), lo1 = vandq_u8(b1, vdupq_n_u8(0x0f));
      uint8x16_t hi0 = vshrq_n_u8(b0, 4), hi1 = vshrq_n_u8(b1, 4);
      if constexpr (kFifthBit) {
        const uint8x16_t h0 = vld1q_u8(w[i].qh), h1 = vld1q_u8(w[i].qh + 16), sixteen = vdupq_n_u8(16);
        const uint8x16_t u1 = vdupq_n_u8(static_cast<uint8_t>(1u << (2 * k)));
        const uint8x16_t u2 = vdupq_n_u8(static_cast<uint8_t>(2u << (2 * k)));
        lo0 = vorrq_u8(lo0, vandq_u8(vtstq_u8(h0, u1), sixteen));
        lo1 = vorrq_u8(lo1, vandq_u8(vtstq_u8(h1, u1), sixteen));
        hi0 = vorrq_u8(hi0, vandq_u8(vtstq_u8(h0, u2), sixteen));
        hi1 = vorrq_u8(hi1, vandq_u8(vtstq_u8(h1, u2), sixteen));
      }
      const int8_t* a0 = aq + 64 * k;
      p[2 * k] = Ops::dot(Ops::dot(vdupq_n_s32(0), vreinterpretq_s8_u8(lo0), vld1q_s8(a0)),
                          vreinterpretq_s8_u8(lo1), vld1q_s8(a0 + 16));
      p[2 * k + 1] = Ops::dot(Ops::dot(vdupq_n_s32(0), vreinterpretq_s8_u8(hi0), vld1q_s8(a0 + 32)),
                              vreinterpretq_s8_u8(hi1), vld1q_s8(a0 + 48));
    }
    for (int j = 0; j < 8; j += 4) {
      const int32x4_t s = vpaddq_s32(vpaddq_s32(p[j], p[j + 1]), vpaddq_s32(p[j + 2], p[j + 3]));
      acc = vmlaq_s32(acc, s, vld1q_s32(sc + j));
    }
    const int isum = hsum(acc);
    const int min_sum = bsum_dot16(vld1q_u8(mins), a[i].bsums);
    const float dall = a[i].d * fp16_to_fp32(w[i].d), dmin = a[i].d * fp16_to_fp32(w[i].dmin);
    sum += dall * static_cast<float>(isum) - dmin * static_cast<float>(min_sum);
  }
  return sum;
}

template <class Ops>
float q4_K(const void* vw, const void* va, int64_t n) {
  return k4_family<Ops, false>(static_cast<const block_q4_K*>(vw), static_cast<const block_q8_K*>(va), n / QK_K);
}

template <class Ops>
float q5_K(const void* vw, const void* va, int64_t n) {
  return k4_family<Ops, true>(static_cast<const block_q5_K*>(vw), static_cast<const block_q8_K*>(va), n / QK_K);
}

template <class Ops>
float iq4_xs(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const block_iq4_xs*>(vw);
  const auto* a = static_cast<const block_q8_K*>(va);
  const int8x16_t book = vld1q_s8(kIq4nlValues);
  float sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    alignas(16) int32_t sc[8];
    for (int j = 0; j < 8; ++j)
      sc[j] = (((w[i].scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((w[i].scales_h >> (2 * j)) & 3) << 4)) - 32;
    int32x4_t p[8];
    for (int j = 0; j < 8; ++j) {
      int8x16_t lo, hi;
      nibbles(w[i].qs + 16 * j, lo, hi);
      p[j] = Ops::dot(Ops::dot(vdupq_n_s32(0), vqtbl1q_s8(book, vreinterpretq_u8_s8(lo)), vld1q_s8(a[i].qs + 32 * j)),
                      vqtbl1q_s8(book, vreinterpretq_u8_s8(hi)), vld1q_s8(a[i].qs + 32 * j + 16));
    }
    int32x4_t acc = vdupq_n_s32(0);
    for (int j = 0; j < 8; j += 4) {
      const int32x4_t s = vpaddq_s32(vpaddq_s32(p[j], p[j + 1]), vpaddq_s32(p[j + 2], p[j + 3]));
      acc = vmlaq_s32(acc, s, vld1q_s32(sc + j));
    }
    sum += (a[i].d * fp16_to_fp32(w[i].d)) * static_cast<float>(hsum(acc));
  }
  return sum;
}

// ---------------------------------------------------------------- float formats x F32

// Sixteen products per step in float lanes (each exact to one rounding), summed four
// deep, then carried in float64 so the error does not grow with the row length.
// load4(i): weights i..i+3 as floats; at(i): weight i.
template <class Load4, class At>
float float_dot(const float* a, int64_t n, Load4 load4, At at) {
  float64x2_t acc0 = vdupq_n_f64(0.0), acc1 = vdupq_n_f64(0.0);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    float32x4_t s = vmulq_f32(load4(i), vld1q_f32(a + i));
    s = vaddq_f32(s, vmulq_f32(load4(i + 4), vld1q_f32(a + i + 4)));
    s = vaddq_f32(s, vmulq_f32(load4(i + 8), vld1q_f32(a + i + 8)));
    s = vaddq_f32(s, vmulq_f32(load4(i + 12), vld1q_f32(a + i + 12)));
    acc0 = vaddq_f64(acc0, vcvt_f64_f32(vget_low_f32(s)));
    acc1 = vaddq_f64(acc1, vcvt_high_f64_f32(s));
  }
  double sum = vaddvq_f64(vaddq_f64(acc0, acc1));
  for (; i < n; ++i) sum += double(at(i)) * a[i];
  return static_cast<float>(sum);
}

inline float f32(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const float*>(vw);
  return float_dot(static_cast<const float*>(va), n, [w](int64_t i) { return vld1q_f32(w + i); },
                   [w](int64_t i) { return w[i]; });
}

// FCVTL is exact for every finite half (a NaN stays a NaN, quieted: the dot is NaN
// either way).
inline float f16(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  return float_dot(
      static_cast<const float*>(va), n,
      [w](int64_t i) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + i))); },
      [w](int64_t i) { return fp16_to_fp32(w[i]); });
}

inline float bf16(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  return float_dot(
      static_cast<const float*>(va), n,
      [w](int64_t i) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(w + i), 16)); },
      [w](int64_t i) { return bf16_to_fp32(w[i]); });
}

}  // namespace arm_dot
}  // namespace
}  // namespace lowbit::kernels

// The six 32-element formats' entry points of one folder (declared by lists/dot.inc and
// lists/dot_rows.inc): dot_<w>_<a>__<isa> (arm_dot::dot32) and dot_rows_<w>_<a>__<isa>
// (arm_dot::rows32), Ops being the folder's 16-lane int8 dot.
#define LOWBIT_ARM_DOT32_PAIR(wa, Codes, isa, Ops)                                                          \
  float dot_##wa##__##isa(const void* w, const void* a, int64_t n) {                                        \
    return arm_dot::dot32<Ops, arm_dot::Codes>(w, a, n);                                                    \
  }                                                                                                         \
  void dot_rows_##wa##__##isa(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y) { \
    arm_dot::rows32<Ops, arm_dot::Codes>(w, row_bytes, a, n, rows, y);                                      \
  }
#define LOWBIT_ARM_DOT32_ENTRY_POINTS(isa, Ops)             \
  LOWBIT_ARM_DOT32_PAIR(q4_0_q8_0, Q4_0Codes, isa, Ops)     \
  LOWBIT_ARM_DOT32_PAIR(q4_1_q8_1, Q4_1Codes, isa, Ops)     \
  LOWBIT_ARM_DOT32_PAIR(q5_0_q8_0, Q5_0Codes, isa, Ops)     \
  LOWBIT_ARM_DOT32_PAIR(q5_1_q8_1, Q5_1Codes, isa, Ops)     \
  LOWBIT_ARM_DOT32_PAIR(q8_0_q8_0, Q8_0Codes, isa, Ops)     \
  LOWBIT_ARM_DOT32_PAIR(iq4_nl_q8_0, Iq4NlCodes, isa, Ops)
