#pragma once
// The GSQ x Q8 GEMV kernel family: y = W xq with W in GSQ's packed layouts and the
// activations quantized to ggml's Q8_0 blocks (32 int8 codes and an fp16 scale per
// block; lowbit::quantize_activations(Format::Q8_0, ...) writes them). Products of
// codes are summed in exact integer arithmetic per 32-column block, the form int8 dot
// instructions (AVX-512 VNNI) compute fastest; only the per-block scale products are
// float. Needs cols % 32 == 0 (whole Q8_0 blocks).
#include <cstdint>

#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/kernel_table.hpp"

namespace lowbit {

// y[r] = sum_c W[r, c] * d_b * q_c for rows [r0, r1); xq holds cols / 32 block_q8_0.
using GsqGemvQ8Fn = void (*)(const GsqMatrixRef& m, const void* xq, float* y, int64_t r0, int64_t r1);

using GsqGemvQ8Kernel = KernelVariant<GsqGemvQ8Fn, GsqPackedLayout>;
const KernelTable<GsqGemvQ8Fn, GsqPackedLayout>& gsq_gemv_q8_kernels();

}  // namespace lowbit
