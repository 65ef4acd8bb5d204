#pragma once
// A packed GEMM call covers `rows` weight rows: ceil(rows / 16) consecutive 16-row
// panels (panel p's blocks at panel + p * blocks, its outputs at columns 16 p..).
// Variants that work one panel at a time run them through each_panel; the AVX2
// variant instead prepares each activation tile once for all of the call's panels.
#include <algorithm>
#include <cstdint>

#include "lowbit/kernels/packed_matrix.hpp"

namespace lowbit::kernels {
namespace {

constexpr int kPackedPanelRows = 16;

// one(panel, y, panel_rows) for each panel of the call, the last one possibly partial.
template <class OnePanel>
void each_panel(const PackedPanelBlock* panel, int64_t blocks, float* y, int rows, OnePanel one) {
  for (int r0 = 0; r0 < rows; r0 += kPackedPanelRows, panel += blocks)
    one(panel, y + r0, std::min(kPackedPanelRows, rows - r0));
}

}  // namespace
}  // namespace lowbit::kernels
