#pragma once
// Fitting one group's parameters and coding values with them: the piece GSQ and
// GPTQ share. GPTQ fits a group on the weights as updated so far, then codes one
// column at a time with the same parameters.
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

// The unsigned code of value x under p (round half to even, clamped to [0, 2^b-1]).
uint32_t encode_value(const GsqConfig& cfg, const GroupParams& p, float x);
// The value code q decodes to under p.
float decode_value(const GsqConfig& cfg, const GroupParams& p, uint32_t q);

// Rounds a scale or minimum to the configured storage type.
float round_to_storage(ScaleStorage s, float v);

}  // namespace lowbit
