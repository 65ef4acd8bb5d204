#pragma once
// The driver every SIMD GSQ x Q8_0 GEMV shares (kernels/cpu/x86/avx2/, kernels/cpu/arm/
// neon/ and dotprod/): the activation blocks laid out once per call in the variant's
// own form (a thread_local buffer, reused between calls), the code width made a
// compile-time constant, rows r0..r1 one at a time, and the scalar reference for
// widths GsqConfig does not produce. Internal linkage: each including file compiles
// its own copy with its own ISA flags.
//   lay_out(const block_q8_0* x, int64_t blocks, std::vector<BlockX>& out)
//   row(std::integral_constant<int, B>, const std::vector<BlockX>& xb, int64_t r) -> double
#include <cstdint>
#include <vector>

#include "common/gsq_width.hpp"
#include "lists/declarations.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

template <class BlockX, class LayOut, class Row>
void gsq_q8_rows(const GsqMatrixRef& m, const void* xq, float* y, int64_t r0, int64_t r1, LayOut lay_out, Row row) {
  thread_local std::vector<BlockX> xb;
  lay_out(static_cast<const block_q8_0*>(xq), m.cols / 32, xb);
  const bool done = with_gsq_width(m.bits, [&](auto width) {
    for (int64_t r = r0; r < r1; ++r) y[r] = static_cast<float>(row(width, xb, r));
  });
  if (!done) gsq_gemv_q8__scalar(m, xq, y, r0, r1);  // widths GsqConfig does not produce
}

}  // namespace
}  // namespace lowbit::kernels
