// Packed GEMM with the Armv8.2 dot-product instructions (kernels/cpu/arm/
// packed_gemm_tiles.hpp): a 16-byte load holds four panel rows' four levels of one
// column group, and one SDOT by lane (vdotq_laneq_s32) multiplies them by that
// group's four activation codes and adds into the rows' int32 sums: 32 SDOTs per
// block and activation row, where plain NEON needs four instructions for each.
#include "cpu/arm/dotprod/target.hpp"  // first: checks this file's compile flags

#include <utility>

#include "cpu/arm/packed_gemm_tiles.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

struct DotprodSums {
  template <int kBatch>
  static void block(const PackedPanelBlock& p, const PackedActivationBlock* a, int64_t stride,
                    int32x4_t isum[][4]) {
    int8x16x2_t codes[kBatch];
    for (int b = 0; b < kBatch; ++b) {
      codes[b] = arm_packed::signed_codes(a[b * stride]);
      for (int i = 0; i < 4; ++i) isum[b][i] = vdupq_n_s32(0);
    }
    // The lane operand must be a constant: the eight groups are unrolled.
    [&]<int... G>(std::integer_sequence<int, G...>) {
      (
          [&] {
            for (int i = 0; i < 4; ++i) {
              const int8x16_t w = vld1q_s8(p.codes[G][4 * i]);
              for (int b = 0; b < kBatch; ++b) isum[b][i] = vdotq_laneq_s32(isum[b][i], w, codes[b].val[G / 4], G % 4);
            }
          }(),
          ...);
    }(std::make_integer_sequence<int, 8>{});
  }
};

}  // namespace

void packed_gemm__dotprod(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks,
                          int64_t batch, float* y, int64_t ldy, int rows) {
  arm_packed::packed_gemm<DotprodSums>(panel, acts, blocks, batch, y, ldy, rows);
}

}  // namespace lowbit::kernels
