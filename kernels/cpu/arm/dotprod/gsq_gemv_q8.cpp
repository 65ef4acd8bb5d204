// GSQ x Q8_0 GEMV with the Armv8.2 dot-product instructions: the NEON kernel's
// arithmetic (kernels/cpu/arm/neon/gsq_gemv_q8.cpp) with each 32-column block's
// integer sum as two SDOTs on bytes. Codes (0 .. 2^B - 1, B <= 8) do not fit int8, so
// each is taken as code - 128 (its top bit flipped) and 128 * X is added back, X the
// block's activation code sum: the same exact integer, so the same y as the NEON
// variant, bit for bit. Act-order layouts (g_idx) change groups inside a block and
// run the NEON kernel.
#include "cpu/arm/dotprod/target.hpp"  // first: checks this file's compile flags

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
  int8x16_t q[2];  // codes 0..15 and 16..31
  double d = 0;    // the block's scale
  int64_t sum = 0; // the sum of its 32 codes
};

void load_blocks(const block_q8_0* x, int64_t blocks, std::vector<BlockX>& out) {
  out.resize(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b) {
    BlockX& o = out[static_cast<size_t>(b)];
    o.q[0] = vld1q_s8(x[b].qs);
    o.q[1] = vld1q_s8(x[b].qs + 16);
    o.sum = vaddlvq_s16(vaddq_s16(vpaddlq_s8(o.q[0]), vpaddlq_s8(o.q[1])));
    o.d = fp16_to_fp32(x[b].d);
  }
}

// Codes 16h .. 16h+15 of a chunk as bytes, offset by -128.
template <int B>
int8x16_t offset_codes16(const uint8x16x2_t& chunk, int h) {
  const uint16x8_t lo = vcombine_u16(vmovn_u32(gsq_codes4<B>(chunk, 4 * h)), vmovn_u32(gsq_codes4<B>(chunk, 4 * h + 1)));
  const uint16x8_t hi =
      vcombine_u16(vmovn_u32(gsq_codes4<B>(chunk, 4 * h + 2)), vmovn_u32(gsq_codes4<B>(chunk, 4 * h + 3)));
  return vreinterpretq_s8_u8(veorq_u8(vcombine_u8(vmovn_u16(lo), vmovn_u16(hi)), vdupq_n_u8(0x80)));
}

template <int B>
double row_grouped(const GsqMatrixRef& m, const std::vector<BlockX>& xb, int64_t r) {
  const int64_t groups = m.cols / m.group;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  double acc = 0;
  for (size_t b = 0; b < xb.size(); ++b) {
    const BlockX& x = xb[b];
    const uint8x16x2_t chunk = gsq_chunk<B>(row, m.words_per_row, static_cast<int64_t>(b));
    int32x4_t p = vdotq_s32(vdupq_n_s32(0), offset_codes16<B>(chunk, 0), x.q[0]);
    p = vdotq_s32(p, offset_codes16<B>(chunk, 1), x.q[1]);
    const int64_t qx = vaddvq_s32(p) + 128 * x.sum;
    const int64_t g = r * groups + 32 * static_cast<int64_t>(b) / m.group;
    acc += gsq_q8_block_term(m, g, x.d, qx, x.sum);
  }
  return acc;
}

}  // namespace

void gsq_gemv_q8__dotprod(const GsqMatrixRef& m, const void* xq, float* y, int64_t r0, int64_t r1) {
  if (m.g_idx) return gsq_gemv_q8__neon(m, xq, y, r0, r1);
  gsq_q8_rows<BlockX>(m, xq, y, r0, r1, load_blocks, [&](auto width, const std::vector<BlockX>& xb, int64_t r) {
    return row_grouped<decltype(width)::value>(m, xb, r);
  });
}

}  // namespace lowbit::kernels
