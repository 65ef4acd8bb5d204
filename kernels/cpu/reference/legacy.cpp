// The 32-element "legacy" formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1, byte for
// byte as ggml lays them out (ggml-common.h):
//   Q4_0  x = d * (q - 8),        q in [0, 15], element j in the low nibble of qs[j],
//                                   element j+16 in the high nibble
//   Q4_1  x = d * q + m,          q in [0, 15], same nibble order
//   Q5_0  x = d * (q - 16),       q in [0, 31]: low 4 bits as in Q4_0, 5th bit of
//                                   element j in bit j of the little-endian u32 qh
//   Q5_1  x = d * q + m,          q in [0, 31], same packing as Q5_0
//   Q8_0  x = d * q,              q int8
//   Q8_1  x = d * q,              q int8, s = d * sum(q) (used by dot products
//                                   against Q4_1/Q5_1, whose m multiplies the sum)
// d, m and s are fp16.
//
// The quantizers' search (lowbit's candidate scales, ggml's choice among them) lives in
// legacy_search.hpp, shared with the SIMD variants.
//
// Dequantizers use ggml's float operation order (q*d, then + m) so they agree with
// ggml bit for bit; this file is compiled without FMA contraction.
#include "cpu/reference/legacy_search.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lists/declarations.hpp"
#include "common/nibbles.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {

// ---------------------------------------------------------------- Q4_0

void quantize_row_q4_0__scalar(const float* x, void* y, int64_t n, const float* importance) {
  sym_row<block_q4_0>(x, y, n, importance, kQ4_0Search, store_q4_0);
}
void quantize_row_q4_0_best__scalar(const float* x, void* y, int64_t n, const float* importance) {
  sym_row<block_q4_0>(x, y, n, importance, kQ4_0SearchBest, store_q4_0);
}

void dequantize_row_q4_0__scalar(const void* x, float* y, int64_t n) {
  const auto* in = blocks<block_q4_0>(x);
  for (int64_t i = 0; i < n / QK; ++i) {
    const float d = fp16_to_fp32(in[i].d);
    for (int j = 0; j < QK / 2; ++j) {
      y[i * QK + j] = static_cast<float>((in[i].qs[j] & 0x0f) - 8) * d;
      y[i * QK + j + QK / 2] = static_cast<float>((in[i].qs[j] >> 4) - 8) * d;
    }
  }
}

// ---------------------------------------------------------------- Q4_1

void quantize_row_q4_1__scalar(const float* x, void* y, int64_t n, const float* importance) {
  asym_row<block_q4_1>(x, y, n, importance, 15, store_q4_1, kAsymDefault);
}
void quantize_row_q4_1_best__scalar(const float* x, void* y, int64_t n, const float* importance) {
  asym_row<block_q4_1>(x, y, n, importance, 15, store_q4_1, kAsymBest);
}

void dequantize_row_q4_1__scalar(const void* x, float* y, int64_t n) {
  const auto* in = blocks<block_q4_1>(x);
  for (int64_t i = 0; i < n / QK; ++i) {
    const float d = fp16_to_fp32(in[i].d);
    const float m = fp16_to_fp32(in[i].m);
    for (int j = 0; j < QK / 2; ++j) {
      y[i * QK + j] = static_cast<float>(in[i].qs[j] & 0x0f) * d + m;
      y[i * QK + j + QK / 2] = static_cast<float>(in[i].qs[j] >> 4) * d + m;
    }
  }
}

// ---------------------------------------------------------------- Q5_0

void quantize_row_q5_0__scalar(const float* x, void* y, int64_t n, const float* importance) {
  sym_row<block_q5_0>(x, y, n, importance, kQ5_0Search, store_q5_0);
}
void quantize_row_q5_0_best__scalar(const float* x, void* y, int64_t n, const float* importance) {
  sym_row<block_q5_0>(x, y, n, importance, kQ5_0SearchBest, store_q5_0);
}

void dequantize_row_q5_0__scalar(const void* x, float* y, int64_t n) {
  const auto* in = blocks<block_q5_0>(x);
  for (int64_t i = 0; i < n / QK; ++i) {
    const float d = fp16_to_fp32(in[i].d);
    const uint32_t qh = load_u32(in[i].qh);
    for (int j = 0; j < QK / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + QK / 2)) & 1u) << 4;
      y[i * QK + j] = static_cast<float>(((in[i].qs[j] & 0x0f) | h0) - 16) * d;
      y[i * QK + j + QK / 2] = static_cast<float>(((in[i].qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

// ---------------------------------------------------------------- Q5_1

void quantize_row_q5_1__scalar(const float* x, void* y, int64_t n, const float* importance) {
  asym_row<block_q5_1>(x, y, n, importance, 31, store_q5_1, kAsymDefault);
}
void quantize_row_q5_1_best__scalar(const float* x, void* y, int64_t n, const float* importance) {
  asym_row<block_q5_1>(x, y, n, importance, 31, store_q5_1, kAsymBest);
}

void dequantize_row_q5_1__scalar(const void* x, float* y, int64_t n) {
  const auto* in = blocks<block_q5_1>(x);
  for (int64_t i = 0; i < n / QK; ++i) {
    const float d = fp16_to_fp32(in[i].d);
    const float m = fp16_to_fp32(in[i].m);
    const uint32_t qh = load_u32(in[i].qh);
    for (int j = 0; j < QK / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + QK / 2)) & 1u) << 4;
      y[i * QK + j] = static_cast<float>((in[i].qs[j] & 0x0f) | h0) * d + m;
      y[i * QK + j + QK / 2] = static_cast<float>((in[i].qs[j] >> 4) | h1) * d + m;
    }
  }
}

// ---------------------------------------------------------------- Q8_0 / Q8_1

void quantize_row_q8_0__scalar(const float* x, void* y, int64_t n, const float* importance) {
  sym_row<block_q8_0>(x, y, n, importance, kQ8Search, store_q8_0);
}

void dequantize_row_q8_0__scalar(const void* x, float* y, int64_t n) {
  const auto* in = blocks<block_q8_0>(x);
  for (int64_t i = 0; i < n / QK; ++i) {
    const float d = fp16_to_fp32(in[i].d);
    for (int j = 0; j < QK; ++j) y[i * QK + j] = static_cast<float>(in[i].qs[j]) * d;
  }
}

void quantize_row_q8_1__scalar(const float* x, void* y, int64_t n, const float* importance) {
  sym_row<block_q8_1>(x, y, n, importance, kQ8Search, store_q8_1);
}

void dequantize_row_q8_1__scalar(const void* x, float* y, int64_t n) {
  const auto* in = blocks<block_q8_1>(x);
  for (int64_t i = 0; i < n / QK; ++i) {
    const float d = fp16_to_fp32(in[i].d);
    for (int j = 0; j < QK; ++j) y[i * QK + j] = static_cast<float>(in[i].qs[j]) * d;
  }
}

}  // namespace lowbit::kernels
