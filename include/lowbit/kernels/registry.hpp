#pragma once
// The dispatch tables. Each kernel family has one list (kernels/cpu/*.inc) that
// fills these tables; tests and benchmarks walk the same tables, so no variant
// can exist without being checked against the scalar reference.
#include <cstdint>
#include <span>

#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/isa.hpp"

namespace lowbit {

// Quantizes n elements (a multiple of the block size) of one row. `importance`
// is null or holds n non-negative per-column weights (llama.cpp imatrix semantics).
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n, const float* importance);
// Decodes n elements of one row.
using DequantizeRowFn = void (*)(const void* x, float* y, int64_t n);

struct QuantizeKernel {
  Format format;
  Isa isa;
  const char* name;  // e.g. "quantize_q4_K__scalar"
  QuantizeRowFn fn;
};

struct DequantizeKernel {
  Format format;
  Isa isa;
  const char* name;
  DequantizeRowFn fn;
};

std::span<const QuantizeKernel> quantize_kernels();
std::span<const DequantizeKernel> dequantize_kernels();

// The best variant this CPU supports (respecting force_isa). Throws Error when the
// format has no kernel of that family.
const QuantizeKernel& select_quantize_kernel(Format f);
const DequantizeKernel& select_dequantize_kernel(Format f);

}  // namespace lowbit
