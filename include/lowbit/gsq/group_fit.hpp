#pragma once
// Fitting one group's parameters and coding values with them: the piece GSQ and
// GPTQ share. GPTQ fits a group on the weights as updated so far, then codes one
// column at a time with the same parameters.
#include <algorithm>
#include <cstdint>

#include "lowbit/gsq/config.hpp"

namespace lowbit {

struct GroupParams {
  float scale = 0.0f;  // already rounded to the configured storage
  int32_t zero = 0;    // integer zero (2^(b-1) for symmetric); unused for asymmetric_float
  float min = 0.0f;    // asymmetric_float only, rounded to the storage type
};

// Fits parameters to n values x[i * stride] with optional weights w[i * wstride]
// (null = all ones). Deterministic; never returns a non-finite scale.
GroupParams fit_group(const GsqConfig& cfg, const float* x, int64_t n, int64_t stride = 1,
                      const float* w = nullptr, int64_t wstride = 1);

namespace detail {
// Round half to even without calling nearbyint, so loops vectorise on plain SSE2:
// adding 1.5 * 2^23 pushes the fraction out under round-to-nearest-even. Valid for
// |v| < 2^22; the clamp first is harmless because codes never exceed 255.
inline float round_even(float v) {
  v = std::min(std::max(v, -4096.0f), 4096.0f);  // min/max, not clamp: they vectorise
  const float magic = 12582912.0f;
  return (v + magic) - magic;  // not folded: lowbit never builds with -ffast-math
}
}  // namespace detail

// The unsigned code of value x under p (round half to even, clamped to [0, 2^b-1]).
// Inline: GPTQ calls it once per weight.
inline uint32_t encode_value(const GsqConfig& c, const GroupParams& p, float x) {
  const float maxq = static_cast<float>((1 << c.bits) - 1);
  if (p.scale == 0.0f) return c.scheme == GsqScheme::asymmetric_float ? 0u : static_cast<uint32_t>(p.zero);
  const float t = c.scheme == GsqScheme::asymmetric_float ? detail::round_even((x - p.min) / p.scale)
                                                          : detail::round_even(x / p.scale) + static_cast<float>(p.zero);
  return static_cast<uint32_t>(std::min(std::max(t, 0.0f), maxq));
}

// The value code q decodes to under p.
inline float decode_value(const GsqConfig& c, const GroupParams& p, uint32_t q) {
  if (c.scheme == GsqScheme::asymmetric_float) return p.scale * static_cast<float>(q) + p.min;
  return p.scale * static_cast<float>(static_cast<int32_t>(q) - p.zero);
}

// Rounds a scale or minimum to the configured storage type.
float round_to_storage(ScaleStorage s, float v);

}  // namespace lowbit
