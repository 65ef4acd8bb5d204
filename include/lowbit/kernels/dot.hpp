#pragma once
// The dot-product family: one weight row in a GGML block format times one activation
// row in that format's partner, the building block of GEMV (token generation) and
// of the small-batch GEMM. Partners follow ggml's vec_dot_type:
//   Q4_0, Q5_0, Q8_0, IQ4_NL      x Q8_0
//   Q4_1, Q5_1                    x Q8_1 (its s = d * sum(q) carries the min term)
//   Q2_K..Q6_K, IQ4_XS            x Q8_K (its bsums carry the min terms)
//   F32, F16, BF16                x F32 (plain floats; ggml rounds them to the weight type, lowbit does not)
// Within a block every variant computes the same exact integer sums; only the float
// accumulation across blocks differs between variants (docs/kernels.md gives the
// tolerance the tests hold them to).
#include <cstdint>

#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/kernel_table.hpp"

namespace lowbit {

// sum over n elements (a multiple of the weight format's block) of w[i] * a[i].
using DotFn = float (*)(const void* w, const void* a, int64_t n);
using DotKernel = KernelVariant<DotFn, Format>;  // key: the weight format
const KernelTable<DotFn, Format>& dot_kernels();

// The activation format a weight format's dot product takes (F32 for the float
// formats). Throws Error for a format with no dot product (Q8_1, Q8_K: activation
// formats only).
Format dot_activation_format(Format weights);

}  // namespace lowbit
