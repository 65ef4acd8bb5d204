#pragma once
// Declares every function the kernel lists name, with its family's function type,
// for the dispatch tables (src/registry.cpp) and the files that define them.
#include <type_traits>

#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/dot_rows.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/packed_matrix.hpp"
#include "lowbit/kernels/gsq_dequantize.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/gsq_gemv_q8.hpp"
#include "lowbit/kernels/gsq_search.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit::kernels {

#define LOWBIT_QUANTIZER(format, effort, isa, priority, fn) std::remove_pointer_t<QuantizeRowFn> fn;
#include "lists/quantize.inc"
#undef LOWBIT_QUANTIZER

#define LOWBIT_KERNEL(key, isa, priority, fn) std::remove_pointer_t<DequantizeRowFn> fn;
#include "lists/dequantize.inc"
#undef LOWBIT_KERNEL

#define LOWBIT_KERNEL(key, isa, priority, fn) std::remove_pointer_t<QuantizeActivationsFn> fn;
#include "lists/activations.inc"
#undef LOWBIT_KERNEL

#define LOWBIT_KERNEL(key, isa, priority, fn) std::remove_pointer_t<GsqGemvFn> fn;
#include "lists/gsq_gemv.inc"
#undef LOWBIT_KERNEL

#define LOWBIT_KERNEL(key, isa, priority, fn) std::remove_pointer_t<DotFn> fn;
#include "lists/dot.inc"
#undef LOWBIT_KERNEL

#define LOWBIT_KERNEL(key, isa, priority, fn) std::remove_pointer_t<DotRowsFn> fn;
#include "lists/dot_rows.inc"
#undef LOWBIT_KERNEL

#define LOWBIT_KERNEL(key, isa, priority, fn) std::remove_pointer_t<PackedGemmFn> fn;
#include "lists/packed_gemm.inc"
#undef LOWBIT_KERNEL

#define LOWBIT_KERNEL(key, isa, priority, fn) std::remove_pointer_t<GsqDequantizeFn> fn;
#include "lists/gsq_dequantize.inc"
#undef LOWBIT_KERNEL

#define LOWBIT_KERNEL(key, isa, priority, fn) std::remove_pointer_t<GsqGemvQ8Fn> fn;
#include "lists/gsq_gemv_q8.inc"
#undef LOWBIT_KERNEL

#define LOWBIT_KERNEL(key, isa, priority, fn) std::remove_pointer_t<GsqSearchFn> fn;
#include "lists/gsq_search.inc"
#undef LOWBIT_KERNEL

}  // namespace lowbit::kernels
