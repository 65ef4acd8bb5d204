#pragma once
// Scalar reference kernels: the ground truth every SIMD and CUDA variant is
// tested against. Signatures match QuantizeRowFn / DequantizeRowFn.
#include <cstdint>

namespace lowbit::kernels {

#define LOWBIT_QUANTIZE_KERNEL(format, isa, fn) \
  void fn(const float* x, void* y, int64_t n, const float* importance);
#include "cpu/quantize.inc"
#undef LOWBIT_QUANTIZE_KERNEL

#define LOWBIT_DEQUANTIZE_KERNEL(format, isa, fn) void fn(const void* x, float* y, int64_t n);
#include "cpu/dequantize.inc"
#undef LOWBIT_DEQUANTIZE_KERNEL

}  // namespace lowbit::kernels

namespace lowbit {
struct GsqMatrixRef;
}
namespace lowbit::kernels {
#define LOWBIT_GSQ_GEMV_KERNEL(isa, fn) \
  void fn(const GsqMatrixRef& m, const float* x, float* y, int64_t r0, int64_t r1);
#include "cpu/gsq_gemv.inc"
#undef LOWBIT_GSQ_GEMV_KERNEL
}  // namespace lowbit::kernels
