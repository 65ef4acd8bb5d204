#pragma once
// The row-kernel families over the GGML block formats, and their dispatch tables.
// Each family's list (kernels/lists/<family>.inc) fills its table; tests and
// benchmarks walk the same tables (docs/kernels.md).
#include <cstdint>

#include "lowbit/formats/effort.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/kernel_table.hpp"

namespace lowbit {

// Quantizes n elements (a multiple of the block size) of one row. `importance` is
// null or holds n non-negative per-column weights (llama.cpp imatrix semantics).
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n, const float* importance);
// Decodes n elements of one row.
using DequantizeRowFn = void (*)(const void* x, float* y, int64_t n);

// A quantizer is chosen by format and effort; every (format, effort) pair has a
// scalar reference and its SIMD variants write the reference's bytes. A Format alone
// means the default effort.
struct QuantizeKey {
  Format format;
  QuantizeEffort effort = QuantizeEffort::standard;
  constexpr QuantizeKey(Format f, QuantizeEffort e = QuantizeEffort::standard) : format(f), effort(e) {}
  constexpr bool operator==(const QuantizeKey&) const = default;
};

using QuantizeKernel = KernelVariant<QuantizeRowFn, QuantizeKey>;
using DequantizeKernel = KernelVariant<DequantizeRowFn, Format>;

const KernelTable<QuantizeRowFn, QuantizeKey>& quantize_kernels();
const KernelTable<DequantizeRowFn, Format>& dequantize_kernels();

// Shorthands for quantize_kernels().select({f, effort}) and dequantize_kernels().select(f).
const QuantizeKernel& select_quantize_kernel(Format f, QuantizeEffort effort = QuantizeEffort::standard);
const DequantizeKernel& select_dequantize_kernel(Format f);

// The key's name in messages and test names ("Q4_K", "Q4_K fast").
std::string kernel_key_name(Format f);
std::string kernel_key_name(QuantizeKey k);

}  // namespace lowbit
