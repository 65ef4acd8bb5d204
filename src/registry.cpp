// The dispatch tables, filled from the kernel lists (kernels/lists/*.inc).
#include "lowbit/kernels/registry.hpp"

#include "lists/declarations.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/dot_rows.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/packed_matrix.hpp"
#include "lowbit/kernels/gsq_dequantize.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/gsq_gemv_q8.hpp"
#include "lowbit/kernels/gsq_search.hpp"

namespace lowbit {
namespace {

constexpr QuantizeKernel kQuantize[] = {
#define LOWBIT_QUANTIZER(format, effort, set, priority, fn) \
  {QuantizeKey{Format::format, QuantizeEffort::effort}, isa::set, priority, #fn ":" #effort, &kernels::fn},
#include "lists/quantize.inc"
#undef LOWBIT_QUANTIZER
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

constexpr DotRowsKernel kDotRows[] = {
#define LOWBIT_KERNEL(key, set, priority, fn) {Format::key, isa::set, priority, #fn, &kernels::fn},
#include "lists/dot_rows.inc"
#undef LOWBIT_KERNEL
};

constexpr PackedGemmKernel kPackedGemm[] = {
#define LOWBIT_KERNEL(key, set, priority, fn) {key, isa::set, priority, #fn, &kernels::fn},
#include "lists/packed_gemm.inc"
#undef LOWBIT_KERNEL
};

constexpr GsqDequantizeKernel kGsqDequantize[] = {
#define LOWBIT_KERNEL(key, set, priority, fn) {key, isa::set, priority, #fn, &kernels::fn},
#include "lists/gsq_dequantize.inc"
#undef LOWBIT_KERNEL
};

constexpr GsqGemvQ8Kernel kGsqGemvQ8[] = {
#define LOWBIT_KERNEL(key, set, priority, fn) {key, isa::set, priority, #fn, &kernels::fn},
#include "lists/gsq_gemv_q8.inc"
#undef LOWBIT_KERNEL
};

constexpr GsqSearchKernel kGsqSearch[] = {
#define LOWBIT_KERNEL(key, set, priority, fn) {key, isa::set, priority, #fn, &kernels::fn},
#include "lists/gsq_search.inc"
#undef LOWBIT_KERNEL
};

constexpr KernelTable<QuantizeRowFn, QuantizeKey> kQuantizeTable{"quantize", kQuantize};
constexpr KernelTable<DequantizeRowFn, Format> kDequantizeTable{"dequantize", kDequantize};
constexpr KernelTable<QuantizeActivationsFn, Format> kActivationTable{"quantize_activations", kActivations};
constexpr KernelTable<GsqGemvFn, GsqPackedLayout> kGsqGemvTable{"gsq_gemv", kGsqGemv};
constexpr KernelTable<DotFn, Format> kDotTable{"dot", kDot};
constexpr KernelTable<DotRowsFn, Format> kDotRowsTable{"dot_rows", kDotRows};
constexpr KernelTable<PackedGemmFn, PackedGemmKey> kPackedGemmTable{"packed_gemm", kPackedGemm};
constexpr KernelTable<GsqDequantizeFn, GsqPackedLayout> kGsqDequantizeTable{"gsq_dequantize", kGsqDequantize};
constexpr KernelTable<GsqGemvQ8Fn, GsqPackedLayout> kGsqGemvQ8Table{"gsq_gemv_q8", kGsqGemvQ8};
constexpr KernelTable<GsqSearchFn, GsqSearchKey> kGsqSearchTable{"gsq_search", kGsqSearch};

}  // namespace

const KernelTable<QuantizeRowFn, QuantizeKey>& quantize_kernels() { return kQuantizeTable; }
const KernelTable<DequantizeRowFn, Format>& dequantize_kernels() { return kDequantizeTable; }
const KernelTable<QuantizeActivationsFn, Format>& activation_kernels() { return kActivationTable; }
const KernelTable<GsqGemvFn, GsqPackedLayout>& gsq_gemv_kernels() { return kGsqGemvTable; }
const KernelTable<DotFn, Format>& dot_kernels() { return kDotTable; }
const KernelTable<DotRowsFn, Format>& dot_rows_kernels() { return kDotRowsTable; }

GemvKernel select_gemv_kernel(Format f) {
  const DotKernel& dot = kDotTable.select(f);
  GemvKernel k{nullptr, dot.fn, dot.name};
  // A multi-row kernel below the dot's ISA level (the scalar one under a SIMD dot)
  // would be slower than the dot it repeats.
  int best = dot.priority - 1;
  for (const DotRowsKernel& v : kDotRowsTable.variants())
    if (v.key == f && v.runnable() && v.priority > best) {
      best = v.priority;
      k = {v.fn, dot.fn, v.name};
    }
  return k;
}
const KernelTable<PackedGemmFn, PackedGemmKey>& packed_gemm_kernels() { return kPackedGemmTable; }

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
const KernelTable<GsqDequantizeFn, GsqPackedLayout>& gsq_dequantize_kernels() { return kGsqDequantizeTable; }
const KernelTable<GsqGemvQ8Fn, GsqPackedLayout>& gsq_gemv_q8_kernels() { return kGsqGemvQ8Table; }
const KernelTable<GsqSearchFn, GsqSearchKey>& gsq_search_kernels() { return kGsqSearchTable; }

const QuantizeKernel& select_quantize_kernel(Format f, QuantizeEffort effort) {
  return kQuantizeTable.select(QuantizeKey{f, effort});
}
const DequantizeKernel& select_dequantize_kernel(Format f) { return kDequantizeTable.select(f); }

}  // namespace lowbit
