// Scalar GSQ x Q8_0 GEMV: the reference. Contiguous groups: per 32-column block b,
// the exact integer sums I = sum q * xq and X = sum xq, then
//   w = s (q - z):    s * d_b * (I - z X)      (I - z X exact in 64-bit integers)
//   w = s q + min:    d_b * (s I + min X)
// summed over blocks in float64. Act-order layouts (g_idx) change group inside a
// block, so they sum decoded weights times d_b * xq in float64.
#include "common/packed_codes.hpp"
#include "common/gsq_q8_term.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {

void gsq_gemv_q8__scalar(const GsqMatrixRef& m, const void* xq, float* y, int64_t r0, int64_t r1) {
  const auto* x = static_cast<const block_q8_0*>(xq);
  const int64_t groups = m.cols / m.group, blocks = m.cols / 32;
  for (int64_t r = r0; r < r1; ++r) {
    const uint32_t* words = m.qweight + r * m.words_per_row;
    double acc = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const double d = fp16_to_fp32(x[b].d);
      if (m.g_idx) {
        for (int64_t j = 0; j < 32; ++j) {
          const int64_t c = 32 * b + j, g = r * groups + m.g_idx[c];
          const uint32_t q = packed_code(words, m.bits, c);
          const float w = m.mins ? m.scales[g] * static_cast<float>(q) + m.mins[g]
                                 : m.scales[g] * static_cast<float>(static_cast<int32_t>(q) - m.zeros[g]);
          acc += static_cast<double>(w) * d * x[b].qs[j];
        }
        continue;
      }
      int64_t qx = 0, xs = 0;
      for (int64_t j = 0; j < 32; ++j) {
        qx += static_cast<int64_t>(packed_code(words, m.bits, 32 * b + j)) * x[b].qs[j];
        xs += x[b].qs[j];
      }
      const int64_t g = r * groups + 32 * b / m.group;
      acc += gsq_q8_block_term(m, g, d, qx, xs);
    }
    y[r] = static_cast<float>(acc);
  }
}

}  // namespace lowbit::kernels
