// Scalar decoder of GSQ's packed codes: the reference every faster variant must match
// byte for byte. Each weight is computed as decode_value (gsq/group_fit.hpp) does,
// with the same float operations in the same order (no FMA: -ffp-contract=off).
#include "common/packed_codes.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {

void gsq_dequantize__scalar(const GsqMatrixRef& m, float* out, int64_t ld, int64_t r0, int64_t r1) {
  const int64_t groups = m.cols / m.group;
  for (int64_t r = r0; r < r1; ++r) {
    const uint32_t* words = m.qweight + r * m.words_per_row;
    float* o = out + r * ld;
    for (int64_t c = 0; c < m.cols; ++c) {
      const int64_t g = r * groups + (m.g_idx ? m.g_idx[c] : c / m.group);
      const uint32_t q = packed_code(words, m.bits, c);
      o[c] = m.mins ? m.scales[g] * static_cast<float>(q) + m.mins[g]
                    : m.scales[g] * static_cast<float>(static_cast<int32_t>(q) - m.zeros[g]);
    }
  }
}

}  // namespace lowbit::kernels
