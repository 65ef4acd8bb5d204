#pragma once
// The row-kernel families over the GGML block formats, and their dispatch tables.
// Each family's list (kernels/lists/<family>.inc) fills its table; tests and
// benchmarks walk the same tables (docs/kernels.md).
#include <cstdint>

#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/kernel_table.hpp"

namespace lowbit {

// Quantizes n elements (a multiple of the block size) of one row. `importance` is
// null or holds n non-negative per-column weights (llama.cpp imatrix semantics).
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n, const float* importance);
// Decodes n elements of one row.
using DequantizeRowFn = void (*)(const void* x, float* y, int64_t n);

using QuantizeKernel = KernelVariant<QuantizeRowFn, Format>;
using DequantizeKernel = KernelVariant<DequantizeRowFn, Format>;

const KernelTable<QuantizeRowFn, Format>& quantize_kernels();
const KernelTable<DequantizeRowFn, Format>& dequantize_kernels();

// Shorthands for quantize_kernels().select(f) and dequantize_kernels().select(f).
const QuantizeKernel& select_quantize_kernel(Format f);
const DequantizeKernel& select_dequantize_kernel(Format f);

// The key's name in messages and test names ("Q4_K").
std::string kernel_key_name(Format f);

}  // namespace lowbit
