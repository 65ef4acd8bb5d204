// Scalar references of the K-quants' `fast` effort: ggml's own quantizers
// (ggml-quants.c: quantize_row_q{2..6}_K_ref without an imatrix,
// quantize_row_q{2..6}_K_impl with one), re-derived as the same search with the same
// candidates, weights, float operations and rounding, so that the result is ggml's
// block for block. What each format runs:
//   Q2_K  16-element sub-blocks, affine fit by a sweep of 16 trial scales (weights
//         |x|, absolute-error objective); 4-bit scales and mins by rounding against the
//         largest. With importance: weights imp*sqrt(sigma^2 + x^2), a sweep of 37
//         trial scales on squared error, and the 4-bit integers by a weighted search
//         of their own (make_qp_quants).
//   Q3_K  symmetric 16-element fits with iterative re-rounding (weights x^2); 6-bit
//         scales by rounding. With importance: weights imp*sqrt(sigma^2 + x^2), 19
//         trial scales per sub-block, and the 6-bit scales by the same weighted search.
//   Q4_K, Q5_K  32-element affine fits, 21 (Q4_K) / 16 (Q5_K) trial scales, weights
//         rms + |x|; 6-bit scales and mins by rounding. With importance: weights
//         imp*sqrt(sigma^2 + x^2), 37 trial scales, integers by the weighted search.
//   Q6_K  symmetric 16-element fits over 19 trial scales (weights x^2, or the pure
//         importance); int8 scales by rounding against the largest.
// Every sum runs serially in element order, as ggml's do. A SIMD variant reproduces
// these bytes by putting sub-blocks (or trial scales) in lanes, each lane summing in
// the same order; nothing here sums horizontally.
//
// Two departures, neither of which changes a block that ggml handles normally: the
// importance of each block is first scaled by a power of two so its largest weight
// lies in [0.5, 1) (exact, so normal imatrices give ggml's decisions, while subnormal
// or huge ones neither underflow nor overflow the weighted sums), and a block whose
// importance is all zero is quantized as without importance (ggml's weighted search
// has nothing to minimise there and would emit a zero or NaN scale).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/kquant_scales.hpp"
#include "cpu/reference/kquants_ggml.hpp"
#include "cpu/reference/scalar_math.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// Q3_K's fit without importance: round against the largest |x|, then up to five
// passes that move single codes to where the weighted (x^2) least-squares gain grows.
float fit_q3(const float* x, int8_t* L) {
  constexpr int n = 16, nmax = 4;
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
  const float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_in(iscale * x[i], -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
        const int nl = nearest_in(x[i] * sl2 / slx, -nmax, nmax - 1);
        if (nl != L[i]) {
          slx += w * x[i] * static_cast<float>(nl);
          sl2 += w * static_cast<float>(nl) * static_cast<float>(nl);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(nl);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Affine fit x ≈ s*L - m (L in [0, nmax], m >= 0) over the trial scales
// (rmin + rdelta*k + nmax)/(max - min), k = 0..nstep, each refitted by weighted least
// squares and scored by weighted squared (or, mad, absolute) error against the
// plain min/max grid. Trial codes are rounded in the guarded form of ggml's
// make_qkx3_quants (0 for non-positive or non-finite arguments), which agrees with
// make_qkx2_quants' clamp on every finite one. Returns s and sets *the_min = m.
float fit_affine(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, float rmin,
                 float rdelta, int nstep, bool mad) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max <= min) {
    std::fill(L, L + n, uint8_t{0});
    *the_min = -min;
    return 0.0f;
  }
  const auto fn = static_cast<float>(nmax);
  float iscale = fn / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(nearest_in(iscale * (x[i] - min), 0, nmax));
    float diff = scale * static_cast<float>(L[i]) + min - x[i];
    diff = mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  uint8_t aux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + fn) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const float v = iscale * (x[i] - min);
      const int l = v > 0 ? nearest(std::min(v, fn)) : 0;
      aux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * static_cast<float>(l);
      sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
      sum_xl += w * static_cast<float>(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(aux[i]) + this_min - x[i];
        diff = mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        std::copy(aux, aux + n, L);
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// ggml's weights with an imatrix: imp * sqrt(sigma2 + x^2).
void blend_weights(const float* qw, const float* x, float sigma2, int n, float* w) {
  for (int l = 0; l < n; ++l) w[l] = qw[l] * std::sqrt(sigma2 + x[l] * x[l]);
}

// ---------------------------------------------------------------- Q2_K

void q2_K_block(const float* x, const float* qw, block_q2_K& y) {
  uint8_t L[QK_K];
  float mins[16], scales[16], sw[16];
  float w[16];
  if (qw == nullptr) {
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) w[l] = std::fabs(x[16 * j + l]);
      scales[j] = fit_affine(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
    }
  } else {
    const float sigma2 = sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < 16; ++j) {
      blend_weights(qw + 16 * j, x + 16 * j, sigma2, 16, w);
      sw[j] = 0;
      for (int l = 0; l < 16; ++l) sw[j] += w[l];
      scales[j] = fit_affine(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.9f, 0.05f, 36, false);
    }
  }
  q2_K_finish(x, scales, mins, qw ? sw : nullptr, L, y);
}

// ---------------------------------------------------------------- Q3_K

void q3_K_block(const float* x, const float* qw, block_q3_K& y) {
  int8_t L[QK_K];
  float scales[16], sw[16];
  if (qw == nullptr) {
    for (int j = 0; j < 16; ++j) scales[j] = fit_q3(x + 16 * j, L + 16 * j);
  } else {
    const float sigma2 = 2 * sum_squares(x, QK_K) / QK_K;
    float w[16];
    for (int j = 0; j < 16; ++j) {
      blend_weights(qw + 16 * j, x + 16 * j, sigma2, 16, w);
      sw[j] = 0;
      for (int l = 0; l < 16; ++l) sw[j] += w[l];
      scales[j] = fit_symmetric(16, 4, x + 16 * j, L + 16 * j, w);
    }
  }
  q3_K_finish(x, scales, qw ? sw : nullptr, L, y);
}

// ---------------------------------------------------------------- Q4_K / Q5_K

template <int NMAX>
void affine_k_block(const float* x, const float* qw, uint16_t& d_bits, uint16_t& dmin_bits, uint8_t* packed,
                    uint8_t* L) {
  float mins[8], scales[8], sw[8];
  float w[32];
  if (qw == nullptr) {
    constexpr float rmin = NMAX == 15 ? -1.0f : -0.5f;
    constexpr int nstep = NMAX == 15 ? 20 : 15;
    for (int j = 0; j < 8; ++j) {
      const float av_x = std::sqrt(sum_squares(x + 32 * j, 32) / 32);
      for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] = fit_affine(32, NMAX, x + 32 * j, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep, false);
    }
  } else {
    const float sigma2 = 2 * sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < 8; ++j) {
      blend_weights(qw + 32 * j, x + 32 * j, sigma2, 32, w);
      sw[j] = 0;
      for (int l = 0; l < 32; ++l) sw[j] += w[l];
      scales[j] = fit_affine(32, NMAX, x + 32 * j, w, L + 32 * j, &mins[j], -0.9f, 0.05f, 36, false);
    }
  }
  affine_k_scales(scales, mins, qw ? sw : nullptr, d_bits, dmin_bits, packed);
  const float d_all = fp16_to_fp32(d_bits), m_all = fp16_to_fp32(dmin_bits);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, packed, sc, m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = m_all * static_cast<float>(m);
    for (int i = 0; i < 32; ++i)
      L[32 * j + i] = static_cast<uint8_t>(nearest_in((x[32 * j + i] + dm) / d, 0, NMAX));
  }
}

// ---------------------------------------------------------------- Q6_K

void q6_K_block(const float* x, const float* qw, block_q6_K& y) {
  int8_t L[QK_K];
  float scales[16];
  for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j, qw ? qw + 16 * j : nullptr);
  q6_K_finish(x, scales, L, y);
}

}  // namespace

void quantize_row_q2_K_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_q2_K*>(y);
  float w[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i)
    q2_K_block(x + i * QK_K, block_weights(importance ? importance + i * QK_K : nullptr, w), out[i]);
}

void quantize_row_q3_K_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_q3_K*>(y);
  float w[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i)
    q3_K_block(x + i * QK_K, block_weights(importance ? importance + i * QK_K : nullptr, w), out[i]);
}

void quantize_row_q4_K_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_q4_K*>(y);
  float w[QK_K];
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    block_q4_K& b = out[i];
    affine_k_block<15>(x + i * QK_K, block_weights(importance ? importance + i * QK_K : nullptr, w), b.d, b.dmin,
                       b.scales, L);
    pack_q4_K_codes(L, b.qs);
  }
}

void quantize_row_q5_K_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_q5_K*>(y);
  float w[QK_K];
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    block_q5_K& b = out[i];
    affine_k_block<31>(x + i * QK_K, block_weights(importance ? importance + i * QK_K : nullptr, w), b.d, b.dmin,
                       b.scales, L);
    pack_q5_K_codes(L, b.qs, b.qh);
  }
}

void quantize_row_q6_K_fast__scalar(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_q6_K*>(y);
  float w[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i)
    q6_K_block(x + i * QK_K, block_weights(importance ? importance + i * QK_K : nullptr, w), out[i]);
}

}  // namespace lowbit::kernels
