#pragma once
// Scalar pieces of ggml's K-quant algorithm (kquants_ggml.cpp) that the SIMD
// variants of the `fast` effort share: they run per super-block on a handful of
// values, where lanes would not pay. Internal linkage, like scalar_math.hpp: each
// file gets its own copy, compiled without FMA contraction, so all agree bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/kquant_scales.hpp"
#include "cpu/reference/scalar_math.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// Below this a group counts as all zero (ggml's GROUP_MAX_EPS).
constexpr float kGroupEps = 1e-15f;

// Round half to even through the float's mantissa, read back with the integer mask
// ggml uses: defined for NaN and Inf too (it then returns garbage, never traps).
inline int nearest(float v) {
  const float t = v + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &t, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

// nearest() of v clamped to [lo, hi]: ggml's clamp after rounding, for every
// argument it handles (|v| < 2^22), and still defined beyond, where ggml's
// rounding would return garbage. SIMD variants clamp the float and round the same way.
inline int nearest_in(float v, int lo, int hi) {
  return nearest(clampf(v, static_cast<float>(lo), static_cast<float>(hi)));
}

inline uint16_t to_fp16(float v) { return fp32_to_fp16(clampf(v, -kHalfMax, kHalfMax)); }

// Non-negative values x ≈ s*L, L in [0, nmax], weights qw: the best of nine trial
// scales by weighted squared error, then up to five passes moving single integers
// where the least-squares gain grows. Returns s (ggml's make_qp_quants).
float fit_positive(int n, int nmax, const float* x, uint8_t* L, const float* qw) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max < kGroupEps) {
    std::fill(L, L + n, uint8_t{0});
    return 0.0f;
  }
  const auto fn = static_cast<float>(nmax);
  float iscale = fn / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nearest(iscale * x[i]));
  const float scale = 1 / iscale;
  float best_mse = 0;
  for (int i = 0; i < n; ++i) {
    const float diff = x[i] - scale * static_cast<float>(L[i]);
    best_mse += qw[i] * diff * diff;
  }
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + fn) / max;
    const float scale_is = 1 / iscale_is;
    float mse = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::min(nmax, nearest(iscale_is * x[i]));
      const float diff = x[i] - scale_is * static_cast<float>(l);
      mse += qw[i] * diff * diff;
    }
    if (mse < best_mse) {
      best_mse = mse;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest(iscale * x[i]));
    L[i] = static_cast<uint8_t>(l);
    sumlx += qw[i] * x[i] * static_cast<float>(l);
    suml2 += qw[i] * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = qw[i];
      float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
      float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
      if (slx > 0 && sl2 > 0) {
        const int nl = std::min(nmax, nearest(x[i] * sl2 / slx));
        if (nl != L[i]) {
          slx += w * x[i] * static_cast<float>(nl);
          sl2 += w * static_cast<float>(nl) * static_cast<float>(nl);
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<uint8_t>(nl);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// The block's importance scaled by a power of two (unit_scaled_weights), or null
// when there is none or it is all zero.
const float* block_weights(const float* importance, float* buf) {
  return importance != nullptr && unit_scaled_weights(importance, QK_K, buf) ? buf : nullptr;
}

// Q4_K / Q5_K: the fp16 super-block scales and the 6-bit sub-block scales and mins
// from the eight sub-block fits. Without importance (sw null) the integers are the
// fits rounded against the largest; with it, ggml's weighted search (fit_positive,
// weighted by each sub-block's total weight sw).
void affine_k_scales(const float* scales, const float* mins, const float* sw, uint16_t& d_bits,
                     uint16_t& dmin_bits, uint8_t* packed) {
  uint8_t ls[8], lm[8];
  if (sw == nullptr) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    for (int j = 0; j < 8; ++j) {
      ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest(inv_scale * scales[j])));
      lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest(inv_min * mins[j])));
    }
    d_bits = to_fp16(max_scale / 63.0f);
    dmin_bits = to_fp16(max_min / 63.0f);
  } else {
    d_bits = to_fp16(fit_positive(8, 63, scales, ls, sw));
    dmin_bits = to_fp16(fit_positive(8, 63, mins, lm, sw));
  }
  put_scale_min_k4(ls, lm, packed);
}

}  // namespace
}  // namespace lowbit::kernels
