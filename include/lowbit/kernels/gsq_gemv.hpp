#pragma once
// The GSQ GEMV kernel family. Kernels see only the packed arrays, never the
// quantizer's settings.
#include <cstdint>
#include <string>

#include "lowbit/kernels/kernel_table.hpp"

namespace lowbit {

struct GsqMatrixRef {
  const uint32_t* qweight;  // rows x words_per_row
  const float* scales;      // rows x groups
  const int32_t* zeros;     // rows x groups (ignored when mins != null)
  const float* mins;        // rows x groups, or null
  const int32_t* g_idx;     // group of each column, or null for column / group
  int bits;
  int64_t rows, cols, group, words_per_row;
};

// y[r] = sum_c W[r, c] x[c] for rows [r0, r1).
using GsqGemvFn = void (*)(const GsqMatrixRef& m, const float* x, float* y, int64_t r0, int64_t r1);

// The family's key: GSQ GEMV variants serve every packed layout (2..8 bits, any
// group, with or without g_idx) and check GsqMatrixRef themselves.
struct GsqPackedLayout {
  bool operator==(const GsqPackedLayout&) const = default;
};
std::string kernel_key_name(GsqPackedLayout);

using GsqGemvKernel = KernelVariant<GsqGemvFn, GsqPackedLayout>;
const KernelTable<GsqGemvFn, GsqPackedLayout>& gsq_gemv_kernels();

}  // namespace lowbit
