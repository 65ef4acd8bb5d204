// Scalar GEMV on GSQ's packed codes: the reference every faster variant must match.
#include "common/packed_codes.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {

void gsq_gemv__scalar(const GsqMatrixRef& m, const float* x, float* y, int64_t r0, int64_t r1) {
  const int64_t groups = m.cols / m.group;
  for (int64_t r = r0; r < r1; ++r) {
    const uint32_t* words = m.qweight + r * m.words_per_row;
    double acc = 0;
    if (m.g_idx) {  // act-order layout: groups scattered over the columns
      for (int64_t c = 0; c < m.cols; ++c) {
        const int64_t g = r * groups + m.g_idx[c];
        const double q = packed_code(words, m.bits, c);
        acc += (m.mins ? m.scales[g] * q + m.mins[g] : m.scales[g] * (q - m.zeros[g])) * x[c];
      }
      y[r] = static_cast<float>(acc);
      continue;
    }
    for (int64_t g = 0; g < groups; ++g) {
      const float scale = m.scales[r * groups + g];
      // Sum codes against x, then apply the group's affine map once: sum s*(q - z)*x
      // = s * (sum q*x - z * sum x), and s*q + min likewise.
      double qx = 0, sx = 0;
      for (int64_t c = g * m.group; c < (g + 1) * m.group; ++c) {
        qx += static_cast<double>(packed_code(words, m.bits, c)) * x[c];
        sx += x[c];
      }
      acc += m.mins ? scale * qx + m.mins[r * groups + g] * sx
                    : scale * (qx - m.zeros[r * groups + g] * sx);
    }
    y[r] = static_cast<float>(acc);
  }
}

}  // namespace lowbit::kernels
