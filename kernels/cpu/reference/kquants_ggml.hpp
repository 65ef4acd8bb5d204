#pragma once
// Scalar pieces of ggml's K-quant algorithm (kquants_ggml.cpp) that the SIMD
// variants of the `fast` effort share: they run per super-block on a handful of
// values, where lanes would not pay. Internal linkage, like scalar_math.hpp: each
// file gets its own copy, compiled without FMA contraction, so all agree bit for bit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/kquant_codes.hpp"
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
inline float fit_positive(int n, int nmax, const float* x, uint8_t* L, const float* qw) {
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
inline const float* block_weights(const float* importance, float* buf) {
  return importance != nullptr && unit_scaled_weights(importance, QK_K, buf) ? buf : nullptr;
}

// Q4_K / Q5_K: the fp16 super-block scales and the 6-bit sub-block scales and mins
// from the eight sub-block fits. Without importance (sw null) the integers are the
// fits rounded against the largest; with it, ggml's weighted search (fit_positive,
// weighted by each sub-block's total weight sw).
inline void affine_k_scales(const float* scales, const float* mins, const float* sw, uint16_t& d_bits,
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

// Symmetric fit x ≈ s*(L - nmax), L in [0, 2*nmax), weights qw or x^2, from the
// scale that puts the largest |x| on -nmax and 18 neighbours (nmax +- 0.1k steps),
// each scored by its least-squares gain sum(wxl)^2 / sum(wl^2). Returns s.
inline float fit_symmetric(int n, int nmax, const float* x, int8_t* L, const float* qw) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  const auto fn = static_cast<float>(nmax);
  float iscale = -fn / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_in(iscale * x[i], -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = qw ? qw[i] : x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(fn + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = nearest_in(iscale * x[i], -nmax, nmax - 1);
      const float w = qw ? qw[i] : x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<int8_t>(nmax + nearest_in(iscale * x[i], -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

inline float sum_squares(const float* x, int n) {
  float s = 0;
  for (int l = 0; l < n; ++l) s += x[l] * x[l];
  return s;
}

// Bits 2k..2k+1 of qs[32h + l] hold element 128h + 32k + l (Q2_K, Q3_K).
inline void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < QK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] =
          static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// Q2_K after the sub-block fits: 4-bit scales and mins (rounded against the largest,
// or with importance (sw non-null) ggml's weighted search), then every code
// re-rounded for its decoded scale; L holds the fits' codes for sub-blocks whose
// decoded scale is zero.
inline void q2_K_finish(const float* x, const float* scales, const float* mins, const float* sw, uint8_t* L,
                 block_q2_K& y) {
  if (sw == nullptr) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
      const float iscale = 15.0f / max_scale;
      for (int j = 0; j < 16; ++j) y.scales[j] = static_cast<uint8_t>(nearest(iscale * scales[j]));
      y.d = to_fp16(max_scale / 15.0f);
    } else {
      std::fill(y.scales, y.scales + 16, uint8_t{0});
      y.d = to_fp16(0.0f);
    }
    if (max_min > 0) {
      const float iscale = 15.0f / max_min;
      for (int j = 0; j < 16; ++j) y.scales[j] = static_cast<uint8_t>(y.scales[j] | (nearest(iscale * mins[j]) << 4));
      y.dmin = to_fp16(max_min / 15.0f);
    } else {
      y.dmin = to_fp16(0.0f);
    }
  } else {
    uint8_t Ls[16], Lm[16];
    const float dm = fit_positive(16, 15, scales, Ls, sw);
    const float mm = fit_positive(16, 15, mins, Lm, sw);
    y.d = to_fp16(dm);
    y.dmin = to_fp16(mm);
    for (int j = 0; j < 16; ++j) y.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
  }
  const float d_all = fp16_to_fp32(y.d), m_all = fp16_to_fp32(y.dmin);
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * static_cast<float>(y.scales[j] & 0xF);
    if (d == 0.0f) continue;
    const float dm = m_all * static_cast<float>(y.scales[j] >> 4);
    for (int i = 0; i < 16; ++i) L[16 * j + i] = static_cast<uint8_t>(nearest_in((x[16 * j + i] + dm) / d, 0, 3));
  }
  pack_2bit(L, y.qs);
}

// Q3_K after the sub-block fits: 6-bit scales (rounded against the largest, or
// with importance (sw non-null) ggml's weighted symmetric fit), then every code
// re-rounded; L holds the fits' codes (0..7) for sub-blocks whose scale is zero.
inline void q3_K_finish(const float* x, const float* scales, const float* sw, int8_t* L, block_q3_K& y) {
  std::memset(y.scales, 0, sizeof y.scales);
  // Scale j (stored + 32, 0..63): low nibble in scales[j % 8] (high half for j >= 8),
  // top two bits at 2*(j/4) of scales[8 + j % 4].
  auto put_scale = [&](int j, int l) {
    y.scales[j % 8] = static_cast<uint8_t>(y.scales[j % 8] | ((l & 0xF) << (j < 8 ? 0 : 4)));
    y.scales[8 + j % 4] = static_cast<uint8_t>(y.scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
  };
  if (sw == nullptr) {
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
      const float a = std::fabs(scales[j]);
      if (a > amax) {
        amax = a;
        max_scale = scales[j];
      }
    }
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const auto l = static_cast<int8_t>(nearest(iscale * scales[j]));
        put_scale(j, std::max(-32, std::min(31, int{l})) + 32);
      }
      y.d = to_fp16(1 / iscale);
    } else {
      y.d = to_fp16(0.0f);
    }
  } else {
    int8_t Ls[16];
    const float d_block = fit_symmetric(16, 32, scales, Ls, sw);
    for (int j = 0; j < 16; ++j) put_scale(j, Ls[j]);
    y.d = to_fp16(d_block);
  }
  const float d_all = fp16_to_fp32(y.d);
  for (int j = 0; j < 16; ++j) {
    const int lo = (y.scales[j % 8] >> (j < 8 ? 0 : 4)) & 0xF;
    const int hi = (y.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    const float d = d_all * static_cast<float>((lo | hi << 4) - 32);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<int8_t>(nearest_in(x[16 * j + i] / d, -4, 3) + 4);
  }
  // hmask bit e / 32 of byte e % 32 is set when code e has no -4 offset.
  std::memset(y.hmask, 0, sizeof y.hmask);
  uint8_t low[QK_K];
  for (int e = 0; e < QK_K; ++e) {
    if (L[e] > 3) y.hmask[e % 32] = static_cast<uint8_t>(y.hmask[e % 32] | (1u << (e / 32)));
    low[e] = static_cast<uint8_t>(L[e] > 3 ? L[e] - 4 : L[e]);
  }
  pack_2bit(low, y.qs);
}

// Q6_K after the sub-block fits: int8 scales rounded against the largest, every
// code re-rounded; L holds the fits' codes (0..63) for sub-blocks whose scale is zero.
inline void q6_K_finish(const float* x, const float* scales, int8_t* L, block_q6_K& y) {
  float max_scale = 0, max_abs = 0;
  for (int j = 0; j < 16; ++j) {
    const float a = std::fabs(scales[j]);
    if (a > max_abs) {
      max_abs = a;
      max_scale = scales[j];
    }
  }
  if (max_abs < kGroupEps) {
    std::memset(&y, 0, sizeof y);
    return;
  }
  const float iscale = -128.0f / max_scale;
  y.d = to_fp16(1 / iscale);
  for (int j = 0; j < 16; ++j) y.scales[j] = static_cast<int8_t>(std::min(127, nearest(iscale * scales[j])));
  const float d_all = fp16_to_fp32(y.d);
  for (int j = 0; j < 16; ++j) {
    const float d = d_all * static_cast<float>(y.scales[j]);
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<int8_t>(nearest_in(x[16 * j + i] / d, -32, 31) + 32);
  }
  for (int j = 0; j < QK_K; j += 128) {
    uint8_t* ql = y.ql + j / 2;
    uint8_t* qh = y.qh + j / 4;
    for (int l = 0; l < 32; ++l) {
      const auto q = [&](int k) { return static_cast<uint8_t>(L[j + l + 32 * k]); };
      ql[l] = static_cast<uint8_t>((q(0) & 0xF) | ((q(2) & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q(1) & 0xF) | ((q(3) & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((q(0) >> 4) | ((q(1) >> 4) << 2) | ((q(2) >> 4) << 4) | ((q(3) >> 4) << 6));
    }
  }
}

}  // namespace
}  // namespace lowbit::kernels
