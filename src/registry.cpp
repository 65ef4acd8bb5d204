#include "lowbit/kernels/registry.hpp"

#include <string>

#include "cpu/reference/reference.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"

namespace lowbit {
namespace {

const QuantizeKernel kQuantizeKernels[] = {
#define LOWBIT_QUANTIZE_KERNEL(format, isa, fn) {Format::format, Isa::isa, #fn, &kernels::fn},
#include "cpu/quantize.inc"
#undef LOWBIT_QUANTIZE_KERNEL
};

const DequantizeKernel kDequantizeKernels[] = {
#define LOWBIT_DEQUANTIZE_KERNEL(format, isa, fn) {Format::format, Isa::isa, #fn, &kernels::fn},
#include "cpu/dequantize.inc"
#undef LOWBIT_DEQUANTIZE_KERNEL
};

const GsqGemvKernel kGsqGemvKernels[] = {
#define LOWBIT_GSQ_GEMV_KERNEL(isa, fn) {Isa::isa, #fn, &kernels::fn},
#include "cpu/gsq_gemv.inc"
#undef LOWBIT_GSQ_GEMV_KERNEL
};

bool usable(Isa isa) {
  const auto ceiling = forced_isa();
  return cpu_supports(isa) && (!ceiling || static_cast<int>(isa) <= static_cast<int>(*ceiling));
}

// The table lists variants from the most portable up, so the last usable one wins.
template <class Kernel>
const Kernel& select(std::span<const Kernel> table, Format f, const char* family) {
  const Kernel* best = nullptr;
  for (const Kernel& k : table)
    if (k.format == f && usable(k.isa)) best = &k;
  if (!best)
    throw Error(std::string("no ") + family + " kernel for format " + std::string(traits(f).name));
  return *best;
}

}  // namespace

std::span<const QuantizeKernel> quantize_kernels() { return kQuantizeKernels; }
std::span<const DequantizeKernel> dequantize_kernels() { return kDequantizeKernels; }

const QuantizeKernel& select_quantize_kernel(Format f) {
  return select(quantize_kernels(), f, "quantize");
}
const DequantizeKernel& select_dequantize_kernel(Format f) {
  return select(dequantize_kernels(), f, "dequantize");
}

std::span<const GsqGemvKernel> gsq_gemv_kernels() { return kGsqGemvKernels; }

const GsqGemvKernel& select_gsq_gemv_kernel() {
  const GsqGemvKernel* best = nullptr;
  for (const GsqGemvKernel& k : kGsqGemvKernels)
    if (usable(k.isa)) best = &k;
  return *best;  // the scalar entry is always usable
}

}  // namespace lowbit
