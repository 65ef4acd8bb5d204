// Scalar reference kernels for the upper K-quants: Q4_K, Q5_K, Q6_K and Q8_K.
//
// Dequantization reproduces ggml's dequantize_row_* bit for bit (same float
// operations in the same order; this file is built with -ffp-contract=off).
//
// Quantization minimises the true objective, sum_i w_i (x_i - decoded_i)^2, where
// w is the importance vector (llama.cpp imatrix) or 1. Q4_K, Q5_K and Q6_K (whose
// searches live in kquants_search.hpp, shared with the SIMD variants) work in
// three stages:
//  1. each sub-block gets a continuous fit (scale, and min for Q4_K/Q5_K) from a
//     few trial grids, each refitted by weighted least squares and the best then
//     polished by Lloyd iterations (re-round the codes, refit);
//  2. the super-block scales (fp16) and the integer sub-block scales are chosen by
//     alternating least squares on a quadratic model of each sub-block's error,
//     from several starting points; every candidate is then scored by its real
//     error after all rounding, with each element's code re-picked for the
//     decoded scales;
//  3. a local search moves each sub-block's integer scale (and min) by +-1 while
//     the real error drops, then the super-block scales are refitted by least
//     squares with the codes fixed, and the local search runs again if that won.
// Q8_K (fp32 scale, one per 256) runs Lloyd steps from a few scales around
// ggml's absmax scale and keeps the best.
// Everything is deterministic: fixed candidate lists and fixed summation order.
#include "cpu/reference/kquants_search.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

#include "common/kquant_scales.hpp"
#include "cpu/reference/ggml_candidate.hpp"
#include "cpu/reference/scalar_math.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {


// ---------------------------------------------------------------- Q8_K
// x = d*q with fp32 d and q in [-127, 127] (ggml's range, which its dot kernels
// rely on); bsums[k] = sum of q over elements 16k..16k+15.

// Codes for scale d and their weighted squared error.
float q8_codes(const float* x, const float* w, float d, int8_t* q) {
  float e[QK_K];
  const float inv = 1.0f / d;
  for (int i = 0; i < QK_K; ++i) {
    const float v = clampf(round_even(x[i] * inv), -127.0f, 127.0f);
    q[i] = static_cast<int8_t>(v);
    const float r = d * v - x[i];
    e[i] = w[i] * r * r;
  }
  return tree_sum<QK_K>(e);
}

void quantize_q8_K_block(const float* x, const float* w, block_q8_K& b) {
  float amax = 0;
  for (int i = 0; i < QK_K; ++i) amax = std::max(amax, std::fabs(x[i]));
  if (amax < kTiny) {
    std::memset(&b, 0, sizeof b);
    return;
  }
  // ggml's absmax scale (the first candidate, always kept unless beaten), then
  // scales a little above and below it; each is refined by Lloyd steps (weighted
  // least-squares scale for its codes, re-round), which from these nearby starts
  // settle in different optima, and the best real error wins.
  int8_t q[QK_K];
  float best_d = amax / 127.0f;
  float best_err = INFINITY;
  bool have = false;
  for (float start : {1.0f, 1.01f, 1.02f, 1.03f, 0.995f, 0.99f}) {
    float d = amax / 127.0f * start;
    for (int it = 0; it < 3; ++it) {
      const float err = q8_codes(x, w, d, q);
      if (!have || err < best_err) {
        have = true;
        best_err = err;
        best_d = d;
        std::memcpy(b.qs, q, QK_K);
      }
      float wxq[QK_K], wq2[QK_K];
      for (int i = 0; i < QK_K; ++i) {
        wxq[i] = w[i] * x[i] * q[i];
        wq2[i] = w[i] * static_cast<float>(q[i]) * q[i];
      }
      const float den = tree_sum<QK_K>(wq2);
      if (!(den > 0)) break;
      d = tree_sum<QK_K>(wxq) / den;
      if (!(d > 0)) break;
    }
  }
  b.d = best_d;
  for (int k = 0; k < QK_K / 16; ++k) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += b.qs[16 * k + i];
    b.bsums[k] = static_cast<int16_t>(sum);
  }
}

}  // namespace

void quantize_row_q4_K__scalar(const float* x, void* y, int64_t n, const float* importance) {
  quantize_affine_row<15>(x, n, importance, store_q4_K, y, sizeof(block_q4_K));
  keep_ggml_where_better(Format::Q4_K, x, y, n, importance, sizeof(block_q4_K));
}

void quantize_row_q5_K__scalar(const float* x, void* y, int64_t n, const float* importance) {
  quantize_affine_row<31>(x, n, importance, store_q5_K, y, sizeof(block_q5_K));
  keep_ggml_where_better(Format::Q5_K, x, y, n, importance, sizeof(block_q5_K));
}

void quantize_row_q6_K__scalar(const float* x, void* y, int64_t n, const float* importance) {
  quantize_q6_K_row(x, y, n, importance);
  keep_ggml_where_better(Format::Q6_K, x, y, n, importance, sizeof(block_q6_K));
}

void quantize_row_q8_K__scalar(const float* x, void* y, int64_t n, const float* importance) {
  float w[QK_K];
  auto* out = static_cast<block_q8_K*>(y);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    normalized_importance<QK_K>(importance ? importance + i * QK_K : nullptr, w);
    quantize_q8_K_block(x + i * QK_K, w, out[i]);
  }
}

void dequantize_row_q4_K__scalar(const void* vx, float* y, int64_t n) {
  const auto* blocks = static_cast<const block_q4_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q4_K& b = blocks[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const uint8_t* q = b.qs;
    for (int j = 0; j < QK_K / 32; j += 2) {
      uint8_t sc, m;
      get_scale_min_k4(j, b.scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      get_scale_min_k4(j + 1, b.scales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
    }
  }
}

void dequantize_row_q5_K__scalar(const void* vx, float* y, int64_t n) {
  const auto* blocks = static_cast<const block_q5_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q5_K& b = blocks[i];
    const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
    const uint8_t* ql = b.qs;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < QK_K / 32; j += 2) {
      uint8_t sc, m;
      get_scale_min_k4(j, b.scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      get_scale_min_k4(j + 1, b.scales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (b.qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (b.qh[l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

void dequantize_row_q6_K__scalar(const void* vx, float* y, int64_t n) {
  const auto* blocks = static_cast<const block_q6_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const block_q6_K& b = blocks[i];
    const float d = fp16_to_fp32(b.d);
    const uint8_t* ql = b.ql;
    const uint8_t* qh = b.qh;
    const int8_t* sc = b.scales;
    for (int j = 0; j < QK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void dequantize_row_q8_K__scalar(const void* vx, float* y, int64_t n) {
  const auto* blocks = static_cast<const block_q8_K*>(vx);
  for (int64_t i = 0; i < n / QK_K; ++i)
    for (int j = 0; j < QK_K; ++j) *y++ = blocks[i].d * blocks[i].qs[j];
}

}  // namespace lowbit::kernels
