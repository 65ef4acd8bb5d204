#pragma once
// The runtime's one matrix-product entry point: y = x W^T for a weight stored in any
// lowbit format, through lowbit::matmul (the dot-product kernels for small batches,
// decoded 64-row panels and SGEMM for large ones, or the path the caller forces).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "lowbit/core/matrix_view.hpp"
#include "lowbit/formats/format.hpp"
#include "lowbit/kernels/matmul.hpp"

namespace lowbit::detail {

struct LinearWeight {
  std::string name;                 // the GGUF tensor ("blk.0.attn_q.weight")
  Format format = Format::F32;
  std::span<const std::byte> data;  // rows x cols in `format`, rows back to back
  int64_t rows = 0;                 // out_features
  int64_t cols = 0;                 // in_features (ne0)
};

// y[t, o] = sum_i x[t, i] * W[o, i] for x [T x cols] and y [T x rows]. The result
// does not depend on the thread count (lowbit::matmul's guarantee).
void linear(const LinearWeight& w, ConstMatrixView<float> x, MatrixView<float> y, MatmulPath path);

// Row `r` of W as float32 (embedding lookup).
void weight_row(const LinearWeight& w, int64_t r, float* out);

}  // namespace lowbit::detail
