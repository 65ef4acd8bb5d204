#pragma once
// The multi-row dot family: one activation row against several consecutive weight
// rows, the inner loop of a GEMV. It exists for the formats whose per-row dot spends
// much of its time on work that depends only on the activations (the 32-element
// formats: each Q8_0 / Q8_1 block's offset sum and fp16 scale): a multi-row kernel
// prepares that once for a group of rows and rearranges the activation codes so the
// weight codes need fewer instructions per block (docs/kernels.md).
//
// Contract: y[r] is bit for bit what the dot variant of the same ISA returns for row r
// (lowbit/kernels/dot.hpp), whatever `rows` is. So a GEMV's bytes do not depend on how
// rows are grouped or split over threads, and the dot family's float64 tolerance
// covers this family too. Formats without a multi-row kernel on an ISA run that
// ISA's dot once per row (select_gemv_kernel).
#include <cstddef>
#include <cstdint>

#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/kernel_table.hpp"

namespace lowbit {

// y[r] = sum over n elements of (row r of w) * a, for r in [0, rows); row r starts
// row_bytes after row r - 1. a is one activation row in the partner format.
using DotRowsFn = void (*)(const void* w, size_t row_bytes, const void* a, int64_t n, int64_t rows, float* y);
using DotRowsKernel = KernelVariant<DotRowsFn, Format>;  // key: the weight format
const KernelTable<DotRowsFn, Format>& dot_rows_kernels();

// What a GEMV over weights in `f` runs on this CPU: the multi-row kernel when one is
// dispatched at the dot's own ISA level or above (rows != nullptr), else the dispatched
// dot once per row. `name` is the variant that does the work.
struct GemvKernel {
  DotRowsFn rows = nullptr;
  DotFn dot = nullptr;
  const char* name = nullptr;
};
GemvKernel select_gemv_kernel(Format f);

}  // namespace lowbit
