// Packed GEMM with the Armv8.6 int8 matrix multiply (FEAT_I8MM; kernels/cpu/arm/
// packed_gemm_tiles.hpp): SMMLA multiplies a 2 x 8 int8 tile by an 8 x 2 one into a
// 2 x 2 int32 tile, here two activation rows by two panel rows over eight columns,
// 32 products per instruction where SDOT gives 16. The panel stores four columns per
// group, so the eight-column row pairs SMMLA wants are two groups' 16-byte loads
// interleaved by 32-bit words (ZIP1/ZIP2), made once per block for both activation
// rows. A single activation row is paired with itself.
#include "cpu/arm/i8mm/target.hpp"  // first: checks this file's compile flags

#include "cpu/arm/packed_gemm_tiles.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

struct I8mmSums {
  template <int kBatch>
  static void block(const PackedPanelBlock& p, const PackedActivationBlock* a, int64_t stride,
                    int32x4_t isum[][4]) {
    static_assert(kBatch == 1 || kBatch == 2);
    const PackedActivationBlock& a0 = a[0];
    const PackedActivationBlock& a1 = a[(kBatch - 1) * stride];
    const uint8x16_t flip = vdupq_n_u8(0x80);
    int32x4_t tile[8];  // row pair j: [a0 . row 2j, a0 . row 2j+1, a1 . row 2j, a1 . row 2j+1]
    for (int j = 0; j < 8; ++j) tile[j] = vdupq_n_s32(0);
    for (int c = 0; c < 4; ++c) {  // columns 8c..8c+7: groups 2c and 2c+1
      const int8x16_t acts =
          vreinterpretq_s8_u8(veorq_u8(vcombine_u8(vld1_u8(a0.q + 8 * c), vld1_u8(a1.q + 8 * c)), flip));
      for (int i = 0; i < 4; ++i) {  // rows 4i..4i+3
        const int32x4_t left = vreinterpretq_s32_s8(vld1q_s8(p.codes[2 * c][4 * i]));
        const int32x4_t right = vreinterpretq_s32_s8(vld1q_s8(p.codes[2 * c + 1][4 * i]));
        tile[2 * i] = vmmlaq_s32(tile[2 * i], acts, vreinterpretq_s8_s32(vzip1q_s32(left, right)));
        tile[2 * i + 1] = vmmlaq_s32(tile[2 * i + 1], acts, vreinterpretq_s8_s32(vzip2q_s32(left, right)));
      }
    }
    // Each tile's low half is a0's two rows, its high half a1's.
    for (int i = 0; i < 4; ++i) {
      const int64x2_t pair01 = vreinterpretq_s64_s32(tile[2 * i]), pair23 = vreinterpretq_s64_s32(tile[2 * i + 1]);
      isum[0][i] = vreinterpretq_s32_s64(vzip1q_s64(pair01, pair23));
      if constexpr (kBatch == 2) isum[1][i] = vreinterpretq_s32_s64(vzip2q_s64(pair01, pair23));
    }
  }
};

}  // namespace

void packed_gemm__i8mm(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks,
                       int64_t batch, float* y, int64_t ldy, int rows) {
  arm_packed::packed_gemm<I8mmSums>(panel, acts, blocks, batch, y, ldy, rows);
}

}  // namespace lowbit::kernels
