#pragma once
// The GSQ dequantize kernel family: decodes GSQ's packed codes (AutoGPTQ layout,
// GsqMatrixRef) to float32, every weight as gsq/group_fit.hpp's decode_value computes
// it, so every variant writes the scalar reference's bytes.
#include <cstdint>

#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/kernel_table.hpp"

namespace lowbit {

// out[r * ld + c] = W[r, c] for rows [r0, r1) and every column c.
using GsqDequantizeFn = void (*)(const GsqMatrixRef& m, float* out, int64_t ld, int64_t r0, int64_t r1);

using GsqDequantizeKernel = KernelVariant<GsqDequantizeFn, GsqPackedLayout>;
const KernelTable<GsqDequantizeFn, GsqPackedLayout>& gsq_dequantize_kernels();

}  // namespace lowbit
