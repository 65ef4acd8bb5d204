// The scalar packed GEMM: each block's integer sum exact, then
// acc = fma(scale * d, isum, acc); acc = fma(offset, dsum, acc) per row and block, in
// block order, the second only where the offset is not zero (adding a zero product
// changes nothing for finite dsum; skipping it is what lets the SIMD variants drop
// the fma for the formats without offsets). The SIMD variants perform exactly these operations per lane, so
// their output equals this one bit for bit.
#include <cmath>

#include "lists/declarations.hpp"

namespace lowbit::kernels {

void packed_gemm__scalar(const PackedPanelBlock* panel, const PackedActivationBlock* acts, int64_t blocks,
                         int64_t batch, float* y, int64_t ldy, int rows) {
  for (int64_t b = 0; b < batch; ++b)
    for (int row = 0; row < rows; ++row) {
      const int r = row % 16;  // the row within its panel
      float acc = 0;
      for (int64_t k = 0; k < blocks; ++k) {
        const PackedPanelBlock& p = panel[(row / 16) * blocks + k];
        const PackedActivationBlock& a = acts[b * blocks + k];
        int32_t isum = 0;
        for (int g = 0; g < 8; ++g)
          for (int j = 0; j < 4; ++j) isum += p.codes[g][r][j] * (static_cast<int32_t>(a.q[4 * g + j]) - 128);
        acc = std::fma(p.scale[r] * a.d, static_cast<float>(isum), acc);
        if (p.offset[r] != 0) acc = std::fma(p.offset[r], a.dsum, acc);
      }
      y[b * ldy + row] = acc;
    }
}

}  // namespace lowbit::kernels
