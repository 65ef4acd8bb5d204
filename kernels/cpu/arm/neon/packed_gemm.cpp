// NEON packed GEMM (kernels/cpu/arm/packed_gemm_tiles.hpp) on plain ARMv8.0 Advanced
// SIMD: a 16-byte load holds four panel rows' four levels of one column group; SMULL
// and SMULL2 multiply them by the group's four activation codes (broadcast) into
// int16 (at most 128 * 128, exact) and SADALP adds the pairs into int32. After the
// block's eight groups, ADDP joins each row's two pair sums. Cores with SDOT or SMMLA
// run kernels/cpu/arm/dotprod/ or kernels/cpu/arm/i8mm/ instead.
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include "cpu/arm/packed_gemm_tiles.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

struct NeonSums {
  template <int kBatch>
  static void block(const PackedPanelBlock& p, const PackedActivationBlock* a, int64_t stride,
                    int32x4_t isum[][4]) {
    int32x4_t lo[kBatch][4], hi[kBatch][4];  // pair sums of rows 4i, 4i+1 and of rows 4i+2, 4i+3
    for (int b = 0; b < kBatch; ++b)
      for (int i = 0; i < 4; ++i) lo[b][i] = hi[b][i] = vdupq_n_s32(0);
    for (int g = 0; g < 8; ++g) {
      int8x16_t group[kBatch];
      for (int b = 0; b < kBatch; ++b) {
        uint32_t four;
        std::memcpy(&four, a[b * stride].q + 4 * g, 4);
        group[b] = vreinterpretq_s8_u32(veorq_u32(vdupq_n_u32(four), vdupq_n_u32(0x80808080u)));
      }
      for (int i = 0; i < 4; ++i) {
        const int8x16_t w = vld1q_s8(p.codes[g][4 * i]);
        for (int b = 0; b < kBatch; ++b) {
          lo[b][i] = vpadalq_s16(lo[b][i], vmull_s8(vget_low_s8(w), vget_low_s8(group[b])));
          hi[b][i] = vpadalq_s16(hi[b][i], vmull_high_s8(w, group[b]));
        }
      }
    }
    for (int b = 0; b < kBatch; ++b)
      for (int i = 0; i < 4; ++i) isum[b][i] = vpaddq_s32(lo[b][i], hi[b][i]);
  }
};

}  // namespace

void packed_gemm__neon(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks,
                       int64_t batch, float* y, int64_t ldy, int rows) {
  arm_packed::packed_gemm<NeonSums>(panel, acts, blocks, batch, y, ldy, rows);
}

}  // namespace lowbit::kernels
