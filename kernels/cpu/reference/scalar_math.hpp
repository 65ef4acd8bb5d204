#pragma once
// Small float helpers the scalar reference quantizers share. Internal linkage: these
// files are the ground truth and must not pick up a copy compiled with SIMD flags.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "lowbit/core/half.hpp"

namespace lowbit::kernels {
namespace {

// The largest finite fp16: block scales saturate here instead of overflowing to Inf.
constexpr float kHalfMax = 65504.0f;

// fp16 bits of v, saturated to the largest finite half so that a huge block gets
// a usable (if clipped) scale instead of an infinite one.
inline uint16_t to_half(float v) { return fp32_to_fp16(std::clamp(v, -kHalfMax, kHalfMax)); }

// 1/d as ggml computes a block's inverse scale, but finite: a subnormal d gives the
// largest float instead of Inf, so no NaN reaches a float-to-integer conversion.
inline float finite_inverse(float d) {
  if (d == 0.0f) return 0.0f;
  const float id = 1.0f / d;
  return std::fabs(id) <= FLT_MAX ? id : std::copysign(FLT_MAX, id);
}

// Round to nearest, ties to even, for |v| < 2^22 under the default rounding mode:
// adding 1.5 * 2^23 pushes the fraction out of the mantissa. Unlike nearbyintf it is
// two additions, so loops around it vectorise (also with GCC vector types, where the
// same expression rounds every lane). It is monotone, so clamping its result to an
// integer range equals rounding the clamped value.
constexpr float kRoundingConstant = 12582912.0f;  // 1.5 * 2^23
template <class T>
inline T round_even(T v) {
  return (v + kRoundingConstant) - kRoundingConstant;
}

// The integer n of t = kRoundingConstant + n (|n| <= 2^21), read from t's mantissa
// bits: branch-free and vectorisable on plain SSE2, where a float-to-int conversion
// would be a second instruction per element.
inline int int_above_rounding_constant(float t) {
  int32_t i;
  std::memcpy(&i, &t, sizeof i);
  return i - 0x4B400000;
}

// round_even read back as an integer (for |v| <= 2^21).
inline int round_even_to_int(float v) { return int_above_rounding_constant(v + kRoundingConstant); }

// std::clamp's nested conditional keeps GCC from vectorising; min(max()) maps to
// minps/maxps.
inline float clampf(float v, float lo, float hi) { return std::min(std::max(v, lo), hi); }

// The largest of 0 and v[0..n) (of |v[i]| when `magnitude`), for finite v. Eight
// running maxima let the loop vectorise; max is exact, so no order changes it.
inline float max_of(const float* v, int n, bool magnitude) {
  float m[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) {
      const float a = magnitude ? std::fabs(v[i + k]) : v[i + k];
      m[k] = a > m[k] ? a : m[k];
    }
  for (; i < n; ++i) m[0] = std::max(m[0], magnitude ? std::fabs(v[i]) : v[i]);
  return std::max(std::max(std::max(m[0], m[1]), std::max(m[2], m[3])),
                  std::max(std::max(m[4], m[5]), std::max(m[6], m[7])));
}

// ldexp(v, e) for one e and many v: a multiplication by 2^e where that is a normal
// float, which rounds exactly as ldexp does (once, to nearest even, only where the
// result is subnormal or overflows), without a libm call per value.
struct PowerOfTwo {
  int e = 0;
  bool normal = true;  // 2^e is a normal float
  float factor = 1.0f;
  PowerOfTwo() = default;
  explicit PowerOfTwo(int e_) : e(e_), normal(e_ > -126 && e_ < 126), factor(normal ? std::ldexp(1.0f, e_) : 1.0f) {}
  float operator()(float v) const { return normal ? v * factor : std::ldexp(v, e); }
};

// out[j] = ldexp(in[j], -e) for n values (PowerOfTwo, the test hoisted out of the loop).
inline void scale_by_power_of_two(const float* in, int n, int e, float* out) {
  const PowerOfTwo s(-e);
  if (s.normal) {
    for (int j = 0; j < n; ++j) out[j] = in[j] * s.factor;
  } else {
    for (int j = 0; j < n; ++j) out[j] = std::ldexp(in[j], -e);
  }
}

// Copies n non-negative importance weights scaled by one power of two so that the
// largest lies in [0.5, 1), and returns whether any weight is positive. Weighted
// objectives are invariant to a common factor, and a power of two changes no
// rounding, so normal inputs give the same decisions as unscaled ones; subnormal
// weights (whose weighted errors would underflow to zero and make every candidate
// tie) and huge ones (whose sums would overflow) become well-scaled.
inline bool unit_scaled_weights(const float* importance, int n, float* w) {
  const float wmax = max_of(importance, n, false);
  if (!(wmax > 0.0f)) return false;
  scale_by_power_of_two(importance, n, std::ilogb(wmax) + 1, w);
  return true;
}

}  // namespace
}  // namespace lowbit::kernels
