// The dispatch tables, filled from the kernel lists (kernels/lists/*.inc).
#include "lowbit/kernels/registry.hpp"

#include "lists/declarations.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"

namespace lowbit {
namespace {

constexpr QuantizeKernel kQuantize[] = {
#define LOWBIT_KERNEL(key, set, priority, fn) {Format::key, isa::set, priority, #fn, &kernels::fn},
#include "lists/quantize.inc"
#undef LOWBIT_KERNEL
};

constexpr DequantizeKernel kDequantize[] = {
#define LOWBIT_KERNEL(key, set, priority, fn) {Format::key, isa::set, priority, #fn, &kernels::fn},
#include "lists/dequantize.inc"
#undef LOWBIT_KERNEL
};

constexpr ActivationKernel kActivations[] = {
#define LOWBIT_KERNEL(key, set, priority, fn) {Format::key, isa::set, priority, #fn, &kernels::fn},
#include "lists/activations.inc"
#undef LOWBIT_KERNEL
};

constexpr GsqGemvKernel kGsqGemv[] = {
#define LOWBIT_KERNEL(key, set, priority, fn) {key, isa::set, priority, #fn, &kernels::fn},
#include "lists/gsq_gemv.inc"
#undef LOWBIT_KERNEL
};

constexpr DotKernel kDot[] = {
#define LOWBIT_KERNEL(key, set, priority, fn) {Format::key, isa::set, priority, #fn, &kernels::fn},
#include "lists/dot.inc"
#undef LOWBIT_KERNEL
};

constexpr KernelTable<QuantizeRowFn, Format> kQuantizeTable{"quantize", kQuantize};
constexpr KernelTable<DequantizeRowFn, Format> kDequantizeTable{"dequantize", kDequantize};
constexpr KernelTable<QuantizeActivationsFn, Format> kActivationTable{"quantize_activations", kActivations};
constexpr KernelTable<GsqGemvFn, GsqPackedLayout> kGsqGemvTable{"gsq_gemv", kGsqGemv};
constexpr KernelTable<DotFn, Format> kDotTable{"dot", kDot};

}  // namespace

const KernelTable<QuantizeRowFn, Format>& quantize_kernels() { return kQuantizeTable; }
const KernelTable<DequantizeRowFn, Format>& dequantize_kernels() { return kDequantizeTable; }
const KernelTable<QuantizeActivationsFn, Format>& activation_kernels() { return kActivationTable; }
const KernelTable<GsqGemvFn, GsqPackedLayout>& gsq_gemv_kernels() { return kGsqGemvTable; }
const KernelTable<DotFn, Format>& dot_kernels() { return kDotTable; }

Format dot_activation_format(Format weights) {
  switch (weights) {
    case Format::F32: case Format::F16: case Format::BF16: return Format::F32;
    case Format::Q4_0: case Format::Q5_0: case Format::Q8_0: case Format::IQ4_NL: return Format::Q8_0;
    case Format::Q4_1: case Format::Q5_1: return Format::Q8_1;
    case Format::Q2_K: case Format::Q3_K: case Format::Q4_K: case Format::Q5_K: case Format::Q6_K:
    case Format::IQ4_XS: return Format::Q8_K;
    case Format::Q8_1: case Format::Q8_K: break;
  }
  throw Error(std::string(traits(weights).name) + " is an activation format: it has no dot product as weights");
}

const QuantizeKernel& select_quantize_kernel(Format f) { return kQuantizeTable.select(f); }
const DequantizeKernel& select_dequantize_kernel(Format f) { return kDequantizeTable.select(f); }

}  // namespace lowbit
