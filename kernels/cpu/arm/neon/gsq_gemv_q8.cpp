// GSQ x Q8_0 GEMV, NEON: y = W xq with the activations in ggml's Q8_0 blocks.
//
// The activations are widened once per call to int32 (eight 4-lane vectors per
// 32-column block) with each block's scale and code sum. Contiguous groups (no g_idx):
// per block, the codes come out of their words four at a time (gsq_codes.hpp) and
// multiply-accumulate against the widened activations in int32 — exact, as
// |code| <= 255, |xq| <= 127 and a block has 32 of them — then the block's float
// term is the reference's own formula in float64 (s d (I - z X), or d (s I + min X)),
// summed over blocks in order: the same arithmetic as the scalar reference. Act-order
// layouts (g_idx) change groups inside a block; they decode each weight with its
// column's parameters and add w d xq in float64, in the reference's order. A row's
// arithmetic depends on nothing but the row: the same y at any thread count.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <arm_neon.h>

#include <vector>

#include "cpu/arm/neon/gsq_codes.hpp"
#include "common/gsq_q8_term.hpp"
#include "cpu/gsq_q8_rows.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

struct BlockX {
  int32x4_t q[8];  // codes 4v .. 4v+3 in q[v]
  double d = 0;    // the block's scale
  int64_t sum = 0; // the sum of its 32 codes
};

void widen(const block_q8_0* x, int64_t blocks, std::vector<BlockX>& out) {
  out.resize(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b) {
    BlockX& o = out[static_cast<size_t>(b)];
    const int8x16_t lo = vld1q_s8(x[b].qs), hi = vld1q_s8(x[b].qs + 16);
    const int16x8_t h[4] = {vmovl_s8(vget_low_s8(lo)), vmovl_s8(vget_high_s8(lo)), vmovl_s8(vget_low_s8(hi)),
                            vmovl_s8(vget_high_s8(hi))};
    int32x4_t s = vdupq_n_s32(0);
    for (int i = 0; i < 4; ++i) {
      o.q[2 * i] = vmovl_s16(vget_low_s16(h[i]));
      o.q[2 * i + 1] = vmovl_s16(vget_high_s16(h[i]));
      s = vaddq_s32(s, vaddq_s32(o.q[2 * i], o.q[2 * i + 1]));
    }
    o.sum = vaddvq_s32(s);
    o.d = fp16_to_fp32(x[b].d);
  }
}

template <int B>
double row_grouped(const GsqMatrixRef& m, const std::vector<BlockX>& xb, int64_t r) {
  const int64_t groups = m.cols / m.group;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  double acc = 0;
  for (size_t b = 0; b < xb.size(); ++b) {
    const BlockX& x = xb[b];
    const uint8x16x2_t chunk = gsq_chunk<B>(row, m.words_per_row, static_cast<int64_t>(b));
    int32x4_t p = vdupq_n_s32(0);
    for (int v = 0; v < 8; ++v) p = vmlaq_s32(p, vreinterpretq_s32_u32(gsq_codes4<B>(chunk, v)), x.q[v]);
    const int64_t qx = vaddvq_s32(p);
    const int64_t g = r * groups + 32 * static_cast<int64_t>(b) / m.group;
    acc += gsq_q8_block_term(m, g, x.d, qx, x.sum);
  }
  return acc;
}

template <int B>
double row_gidx(const GsqMatrixRef& m, const std::vector<BlockX>& xb, int64_t r) {
  const int64_t groups = m.cols / m.group;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  double acc = 0;
  for (size_t b = 0; b < xb.size(); ++b) {
    const BlockX& x = xb[b];
    const uint8x16x2_t chunk = gsq_chunk<B>(row, m.words_per_row, static_cast<int64_t>(b));
    for (int v = 0; v < 8; ++v) {
      alignas(16) uint32_t code[4];
      alignas(16) int32_t xq[4];
      vst1q_u32(code, gsq_codes4<B>(chunk, v));
      vst1q_s32(xq, x.q[v]);
      for (int l = 0; l < 4; ++l) {
        const int64_t c = 32 * static_cast<int64_t>(b) + 4 * v + l, g = r * groups + m.g_idx[c];
        const float w = m.mins ? m.scales[g] * static_cast<float>(code[l]) + m.mins[g]
                               : m.scales[g] * static_cast<float>(static_cast<int32_t>(code[l]) - m.zeros[g]);
        acc += static_cast<double>(w) * x.d * xq[l];
      }
    }
  }
  return acc;
}

}  // namespace

void gsq_gemv_q8__neon(const GsqMatrixRef& m, const void* xq, float* y, int64_t r0, int64_t r1) {
  gsq_q8_rows<BlockX>(m, xq, y, r0, r1, widen, [&](auto width, const std::vector<BlockX>& xb, int64_t r) {
    constexpr int B = decltype(width)::value;
    return m.g_idx ? row_gidx<B>(m, xb, r) : row_grouped<B>(m, xb, r);
  });
}

}  // namespace lowbit::kernels
