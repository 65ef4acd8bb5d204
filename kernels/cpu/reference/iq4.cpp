// IQ4_NL and IQ4_XS: 4-bit indices into the non-linear code book kIq4nlValues,
// byte for byte as ggml lays them out (ggml-common.h, dequantize_row_iq4_*):
//   IQ4_NL  32 elements: fp16 d, qs[16] with element j in the low nibble of qs[j]
//           and element j+16 in the high nibble; x = d * kvalues[q].
//   IQ4_XS  256 elements: fp16 d, eight 6-bit sub-block scales ls (low 4 bits in the
//           nibbles of scales_l[ib/2], low nibble first; high 2 bits at bit 2*ib of
//           the little-endian u16 scales_h), qs[128] with each 32-element sub-block
//           packed like one IQ4_NL block; x = (d * (ls - 32)) * kvalues[q].
//
// The quantizers' search (lowbit's trial scales, ggml's choice among them) lives in
// iq4_search.hpp, shared with the SIMD variants.
//
// Dequantizers follow ggml's float operation order; this file is compiled without
// FMA contraction so they agree with ggml bit for bit.
#include "cpu/reference/iq4_search.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lists/declarations.hpp"
#include "common/nibbles.hpp"
#include "cpu/reference/ggml_search.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {

// ---------------------------------------------------------------- IQ4_NL

void quantize_row_iq4_nl__scalar(const float* x, void* y, int64_t n, const float* importance) {
  auto* out = static_cast<block_iq4_nl*>(y);
  float w[QB], gw[QB];
  for (int64_t i = 0; i < n / QB; ++i) {
    const float* xb = x + i * QB;
    objective_weights(importance ? importance + i * QB : nullptr, QB, w);
    const float max = ggml_search::signed_absmax(xb, QB);
    float d = 0.0f;
    if (max != 0.0f) {
      ggml_search::iq4_weights(xb, importance ? importance + i * QB : nullptr, QB, gw);
      d = nl_search(xb, w, max, round_half, ggml_search::iq4_scale(xb, gw));
    }
    store_iq4_nl(xb, d, out[i]);
  }
}

void dequantize_row_iq4_nl__scalar(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_iq4_nl*>(x);
  for (int64_t i = 0; i < n / QB; ++i) {
    const float d = fp16_to_fp32(in[i].d);
    for (int j = 0; j < QB / 2; ++j) {
      y[i * QB + j] = d * kValues[in[i].qs[j] & 0x0f];
      y[i * QB + j + QB / 2] = d * kValues[in[i].qs[j] >> 4];
    }
  }
}

// ---------------------------------------------------------------- IQ4_XS

void quantize_row_iq4_xs__scalar(const float* x, void* y, int64_t n, const float* importance) {
  quantize_iq4_xs_row(x, y, n, importance);
}

void dequantize_row_iq4_xs__scalar(const void* x, float* y, int64_t n) {
  const auto* in = static_cast<const block_iq4_xs*>(x);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = fp16_to_fp32(in[i].d);
    for (int ib = 0; ib < kXsSubs; ++ib) {
      const int ls = ((in[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((in[i].scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const uint8_t* qs = in[i].qs + ib * (QB / 2);
      float* yb = y + i * QK_K + ib * QB;
      for (int j = 0; j < QB / 2; ++j) {
        yb[j] = dl * kValues[qs[j] & 0x0f];
        yb[j + QB / 2] = dl * kValues[qs[j] >> 4];
      }
    }
  }
}

}  // namespace lowbit::kernels
