#pragma once
// ggml's own block searches for the 32-element weight formats and IQ4_NL / IQ4_XS
// (ggml-quants.c: quantize_row_q*_ref, make_qx_quants, make_qkx3_quants,
// quantize_row_iq4_nl_impl), written once in lowbit's terms. They serve three users:
//   - the `fast` effort, which runs exactly ggml's algorithm (legacy_fast.cpp);
//   - the `default` and `best` searches (legacy.cpp, iq4.cpp), which put ggml's choice
//     among their candidates so that no block comes out worse than ggml's;
//   - the SIMD variants of `fast`, whose importance path calls the reference.
// Sums over a block run element by element in ggml's order: that is what makes the
// bytes ggml's, and a SIMD version keeps it by putting trial scales, not elements, in
// its lanes. Compiled once (legacy_fast.cpp), without FMA contraction.
#include <cstdint>
#include <cstring>

#include "cpu/reference/scalar_math.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels::ggml_search {

// ggml's nearest_int: round half to even through the float mantissa, read back as
// ggml does (so a NaN or Inf gives ggml's answer, not an arbitrary one).
int nearest_int(float v);

// The first element of largest magnitude, with its sign (0 for an all-zero block).
float signed_absmax(const float* x, int n);

// sum(x^2) / n over a row, in order: the sigma^2 of ggml's legacy imatrix weights.
float row_sigma2(const float* x, int64_t n);

// ggml's imatrix weights imp_j * sqrt(sigma2 + x_j^2) for n elements, with the
// importance first scaled by a power of two (unit_scaled_weights: the same decisions,
// no underflow). Returns false, writing nothing, when every importance is zero: ggml's
// search would then divide by zero, so such a block is quantized as without importance.
bool imatrix_weights(const float* x, const float* importance, float sigma2, int n, float* w);

// make_qx_quants(32, nmax, x, L, rmse_type 1, w): the float scale, L[j] in [0, 2 nmax).
float make_qx(const float* x, const float* w, int nmax, int8_t* L);

// make_qkx3_quants(32, nmax, x, w, L, .., -0.9, 0.05, 36, false): the float scale;
// *m is the block's minimum as ggml stores it (the value of level 0, never above 0).
float make_qkx3(const float* x, const float* w, int nmax, uint8_t* L, float* m);

// best_index_int8 over the IQ4_NL code book (ties go to the upper value).
int iq4_index(float v);

// One 32-element sub-block's scale in quantize_row_iq4_nl_impl (ntry = 7): ggml's
// starting scale and 15 trials, each refitted by least squares with weights w.
// 0 for a block below ggml's GROUP_MAX_EPS, and where no weight is positive.
float iq4_scale(const float* x, const float* w);

// ggml's weights for IQ4_NL / IQ4_XS over one super-block of n elements (32 or 256):
// x^2 without importance, else imp_j * sqrt(2 sum(x^2) / n + x_j^2) per 32-element
// sub-block (a sub-block with no positive importance falls back to x^2).
void iq4_weights(const float* x, const float* importance, int n, float* w);

// ggml's IQ4_XS super-block choice from the eight sub-block scales: d (as a float,
// before its fp16 rounding) and the signed 6-bit sub-block scales ls[ib] in [-32, 31].
float iq4_xs_super(const float* scales, int* ls);

namespace {
// One IQ4_XS block as ggml writes it from its eight sub-block scales: the super-block
// scale, the 6-bit sub-block scales, and each sub-block's codes, which
// pack(sub-block values, inverse scale, 16 bytes) packs as nibbles (the scalar table
// or a SIMD look-up: the same codes).
template <class Pack>
void write_iq4_xs_block(const float* x, const float* scales, block_iq4_xs& b, const Pack& pack) {
  constexpr int kSub = QK_K / QK_LEGACY;
  int ls[kSub];
  const float d = iq4_xs_super(scales, ls);
  std::memset(&b, 0, sizeof b);
  b.d = to_half(d);
  uint16_t scales_h = 0;
  for (int ib = 0; ib < kSub; ++ib) {
    const float dl = d * static_cast<float>(ls[ib]);
    pack(x + ib * QK_LEGACY, dl != 0.0f ? 1.0f / dl : 0.0f, b.qs + ib * (QK_LEGACY / 2));
    const int l = ls[ib] + 32;
    b.scales_l[ib / 2] |= static_cast<uint8_t>((l & 0x0f) << (4 * (ib % 2)));
    scales_h |= static_cast<uint16_t>(((l >> 4) & 3) << (2 * ib));
  }
  b.scales_h = scales_h;
}
}  // namespace

}  // namespace lowbit::kernels::ggml_search
