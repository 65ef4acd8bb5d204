// Scalar reference kernels for the 2- and 3-bit K-quants (Q2_K, Q3_K), byte for byte
// GGML's layouts (ggml-common.h) and, for decoding, GGML's float arithmetic
// (dequantize_row_q2_K / dequantize_row_q3_K in ggml-quants.c).
//
// The quantizers' search lives in kquants_low_search.hpp (shared with the SIMD
// variants).
#include "cpu/reference/kquants_low_search.hpp"

#include "cpu/reference/ggml_candidate.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {

void quantize_row_q2_K__scalar(const float* x, void* y, int64_t n, const float* importance) {
  quantize_q2_K_row(x, y, n, importance);
  keep_ggml_where_better(Format::Q2_K, x, y, n, importance, sizeof(block_q2_K));
}

void quantize_row_q2_K_best__scalar(const float* x, void* y, int64_t n, const float* importance) {
  quantize_q2_K_row(x, y, n, importance, kQ2Best);
  keep_ggml_where_better(Format::Q2_K, x, y, n, importance, sizeof(block_q2_K));
}

void dequantize_row_q2_K__scalar(const void* x, float* y, int64_t n) {
  const auto* blocks = static_cast<const block_q2_K*>(x);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const block_q2_K& blk = blocks[b];
    const float d = fp16_to_fp32(blk.d), dmin = fp16_to_fp32(blk.dmin);
    for (int j = 0; j < kNumSub; ++j) {
      // Same operation order as ggml: (d*sc)*q - (dmin*m).
      const float dl = d * static_cast<float>(blk.scales[j] & 0xF);
      const float ml = dmin * static_cast<float>(blk.scales[j] >> 4);
      for (int i = 0; i < kSub; ++i) {
        const int e = kSub * j + i;  // element e: bits 2*((e%128)/32) of qs[32*(e/128) + e%32]
        const int q = (blk.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        *y++ = dl * static_cast<float>(q) - ml;
      }
    }
  }
}

void quantize_row_q3_K__scalar(const float* x, void* y, int64_t n, const float* importance) {
  quantize_q3_K_row(x, y, n, importance);
  keep_ggml_where_better(Format::Q3_K, x, y, n, importance, sizeof(block_q3_K));
}

void dequantize_row_q3_K__scalar(const void* x, float* y, int64_t n) {
  const auto* blocks = static_cast<const block_q3_K*>(x);
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const block_q3_K& blk = blocks[b];
    const float d = fp16_to_fp32(blk.d);
    for (int j = 0; j < kNumSub; ++j) {
      const int lo = (blk.scales[j % 8] >> (j < 8 ? 0 : 4)) & 0xF;
      const int hi = (blk.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
      const float dl = d * static_cast<float>((lo | hi << 4) - 32);
      for (int i = 0; i < kSub; ++i) {
        const int e = kSub * j + i;
        const int low = (blk.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        const int high = (blk.hmask[e % 32] >> (e / 32)) & 1;  // set: no -4 offset
        *y++ = dl * static_cast<float>(low - (high ? 0 : 4));
      }
    }
  }
}

}  // namespace lowbit::kernels
