#pragma once
// The packed GEMM of the AArch64 folders, written once over the part that differs:
// how a block's exact integer sums (16 panel rows x one or two activation rows) are
// reached, `Sums::block<kBatch>`, which kernels/cpu/arm/neon/ builds from SMULL +
// SADALP, kernels/cpu/arm/dotprod/ from SDOT by lane and kernels/cpu/arm/i8mm/ from
// SMMLA. Included only by those folders' packed_gemm.cpp, after their target.hpp;
// everything here has internal linkage, so each folder gets its own copy compiled
// with its flags.
//
// The activations are used as signed codes q - 128 (the stored byte with its top bit
// flipped), so no -128 * sum(levels) bias is needed; the int32 sums are exact (32
// products of at most 128 * 128). After each block the scalar reference's fused
// multiply-adds run per lane in its order, the offset's only where it is not zero,
// so the result equals packed_gemm__scalar bit for bit.
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "cpu/packed_panels.hpp"
#include "lowbit/kernels/packed_matrix.hpp"

namespace lowbit::kernels {
namespace {
namespace arm_packed {

// Activation rows per tile: two keeps the integer sums, the float sums and one
// block's weights in the 32 vector registers, and is SMMLA's natural pair.
constexpr int kMaxBatch = 2;

// One block's 32 activation codes as signed bytes: codes 0..15 and 16..31.
inline int8x16x2_t signed_codes(const PackedActivationBlock& a) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  return {{vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a.q), flip)),
           vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a.q + 16), flip))}};
}

// Panel rows x kBatch activation rows; acts[b * blocks + k] is row b's block k.
template <class Sums, int kBatch>
void panel_times_batch(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks, float* y,
                       int64_t ldy, int rows) {
  float32x4_t acc[kBatch][4];
  for (int b = 0; b < kBatch; ++b)
    for (int i = 0; i < 4; ++i) acc[b][i] = vdupq_n_f32(0);
  for (int64_t k = 0; k < blocks; ++k) {
    const PackedPanelBlock& p = panel[k];
    int32x4_t isum[kBatch][4];  // [activation row][rows 4i..4i+3]
    Sums::template block<kBatch>(p, acts + k, blocks, isum);
    for (int i = 0; i < 4; ++i) {
      const float32x4_t scale = vld1q_f32(p.scale + 4 * i), offset = vld1q_f32(p.offset + 4 * i);
      // offset != 0, NaN included (the reference's `offset != 0`).
      const uint32x4_t has_offset = vmvnq_u32(vceqq_f32(offset, vdupq_n_f32(0)));
      const bool any_offset = vmaxvq_u32(has_offset) != 0;
      for (int b = 0; b < kBatch; ++b) {
        const PackedActivationBlock& a = acts[b * blocks + k];
        acc[b][i] = vfmaq_f32(acc[b][i], vmulq_f32(scale, vdupq_n_f32(a.d)), vcvtq_f32_s32(isum[b][i]));
        // A zero offset's fma is skipped, as in the reference.
        if (any_offset) acc[b][i] = vbslq_f32(has_offset, vfmaq_f32(acc[b][i], offset, vdupq_n_f32(a.dsum)), acc[b][i]);
      }
    }
  }
  for (int b = 0; b < kBatch; ++b) {
    float lanes[16];
    for (int i = 0; i < 4; ++i) vst1q_f32(lanes + 4 * i, acc[b][i]);
    std::memcpy(y + b * ldy, lanes, sizeof(float) * static_cast<size_t>(rows));
  }
}

template <class Sums>
void packed_gemm(const PackedPanelBlock* panels, const PackedActivationBlock* acts, int64_t blocks, int64_t batch,
                 float* y, int64_t ldy, int all_rows) {
  each_panel(panels, blocks, y, all_rows, [&](const PackedPanelBlock* panel, float* out, int rows) {
    int64_t b = 0;
    for (; b + kMaxBatch <= batch; b += kMaxBatch)
      panel_times_batch<Sums, kMaxBatch>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows);
    for (; b < batch; ++b) panel_times_batch<Sums, 1>(panel, acts + b * blocks, blocks, out + b * ldy, ldy, rows);
  });
}

}  // namespace arm_packed
}  // namespace
}  // namespace lowbit::kernels
