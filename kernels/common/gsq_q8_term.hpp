#pragma once
// The float part of GSQ x Q8_0 GEMV for one 32-column block of contiguous groups
// (kernels/cpu/reference/gsq_gemv_q8.cpp): from the block's exact integer sums
// I = sum q * xq and X = sum xq, its contribution in float64,
//   w = s (q - z):   s * d * (I - z X)     (I - z X exact in 64-bit integers)
//   w = s q + min:   d * (s I + min X)
// with g the block's group and d its activation scale. The reference and the
// variants that compute I exactly add these terms in block order, so their y is the
// reference's, bit for bit. Internal linkage: each including file compiles its own
// copy with its own ISA flags.
#include <cstdint>

#include "lowbit/kernels/gsq_gemv.hpp"

namespace lowbit::kernels {
namespace {

inline double gsq_q8_block_term(const GsqMatrixRef& m, int64_t g, double d, int64_t qx, int64_t xs) {
  return m.mins ? d * (static_cast<double>(m.scales[g]) * qx + static_cast<double>(m.mins[g]) * xs)
                : static_cast<double>(m.scales[g]) * d * static_cast<double>(qx - m.zeros[g] * xs);
}

}  // namespace
}  // namespace lowbit::kernels
