#include "lowbit/kernels/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/checks.hpp"
#include "gptq/blas.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/formats/quantize.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/dot_rows.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit {
namespace {

// Weight rows one dequant-path task decodes and multiplies: 64 rows of 4096 f32 are
// 1 MiB, about what an L2 holds next to the activations.
constexpr int64_t kPanelRows = 64;
// Weight rows the dot path hands a multi-row kernel at a time: 16 rows of 4096
// Q4_0 weights are 36 KiB, which stay in L2 while a small batch passes over them.
constexpr int64_t kDotRowTile = 16;

void check_arguments(Format f, std::span<const std::byte> weights, int64_t rows, int64_t cols,
                     ConstMatrixView<float> x, MatrixView<float> y, const std::string& what) {
  dot_activation_format(f);  // throws for the activation-only formats
  if (rows < 0 || cols < 0) throw Error(what + "negative shape " + detail::dims(rows, cols));
  const size_t need = quantized_size(f, rows, cols);  // checks the row length against the block
  if (weights.size() < need)
    throw Error(what + "weight buffer holds " + std::to_string(weights.size()) + " bytes, a " +
                detail::dims(rows, cols) + " matrix needs " + std::to_string(need));
  if (x.cols != cols)
    throw Error(what + "activations have " + std::to_string(x.cols) + " columns, the weights " + std::to_string(cols));
  if (y.rows != x.rows || y.cols != rows)
    throw Error(what + "output is " + detail::dims(y.rows, y.cols) + ", expected " + detail::dims(x.rows, rows) +
                " (batch x weight rows)");
  if (x.stride < x.cols || y.stride < y.cols)
    throw Error(what + "a row stride (activations " + std::to_string(x.stride) + ", output " +
                std::to_string(y.stride) + ") is smaller than its row length");
  if (x.rows < 0) throw Error(what + "negative batch " + std::to_string(x.rows));
  if (rows > 0 && cols > 0 && x.rows > 0 && (weights.data() == nullptr || x.data == nullptr || y.data == nullptr))
    throw Error(what + "a buffer is null");
}

void matmul_dot(Format f, const std::byte* w, int64_t rows, int64_t cols, ConstMatrixView<float> x,
                MatrixView<float> y) {
  const Format af = dot_activation_format(f);
  const GemvKernel kernel = select_gemv_kernel(f);
  const size_t wrow = row_bytes(f, cols);
  std::vector<std::byte> quantized;
  const std::byte* a = nullptr;
  size_t arow = 0;
  if (af == Format::F32) {
    detail::check_finite(x, "matmul: activation ", "NaN and Inf have no product");
    a = reinterpret_cast<const std::byte*>(x.data);
    arow = static_cast<size_t>(x.stride) * sizeof(float);
  } else {
    arow = row_bytes(af, cols);
    quantized.resize(arow * static_cast<size_t>(x.rows));
    quantize_activations(af, x, quantized);
    a = quantized.data();
  }
  // Each task owns whole weight rows; every output is one dot of fixed operands (a
  // multi-row kernel returns each row's dot bit for bit, however rows are grouped).
  parallel_for(rows, detail::row_grain(cols * x.rows), [&](int64_t r0, int64_t r1) {
    if (kernel.rows != nullptr) {
      for (int64_t t = r0; t < r1; t += kDotRowTile)
        for (int64_t b = 0; b < x.rows; ++b)
          kernel.rows(w + t * wrow, wrow, a + b * arow, cols, std::min(kDotRowTile, r1 - t), &y(b, t));
      return;
    }
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t b = 0; b < x.rows; ++b) y(b, r) = kernel.dot(w + r * wrow, a + b * arow, cols);
  });
}

void matmul_dequant(Format f, const std::byte* w, int64_t rows, int64_t cols, ConstMatrixView<float> x,
                    MatrixView<float> y) {
  detail::check_finite(x, "matmul: activation ", "NaN and Inf have no product");
  const DequantizeRowFn decode = dequantize_kernels().select(f).fn;
  const size_t wrow = row_bytes(f, cols);
  const int64_t panels = (rows + kPanelRows - 1) / kPanelRows;
  blas::ThreadScope one_blas_thread(1);  // the panels are the parallelism
  parallel_for(panels, 1, [&](int64_t p0, int64_t p1) {
    std::vector<float> panel(static_cast<size_t>(kPanelRows * cols));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t r0 = p * kPanelRows, n = std::min(kPanelRows, rows - r0);
      for (int64_t r = 0; r < n; ++r) decode(w + (r0 + r) * wrow, panel.data() + r * cols, cols);
      cblas_sgemm(LowbitRowMajor, LowbitNoTrans, LowbitTrans, static_cast<int>(x.rows), static_cast<int>(n),
                  static_cast<int>(cols), 1.0f, x.data, static_cast<int>(x.stride), panel.data(),
                  static_cast<int>(cols), 0.0f, y.data + r0, static_cast<int>(y.stride));
    }
  });
}

}  // namespace

void matmul(Format f, std::span<const std::byte> weights, int64_t rows, int64_t cols, ConstMatrixView<float> x,
            MatrixView<float> y, const MatmulOptions& options) {
  const std::string what = std::string(traits(f).name) + " matmul: ";
  check_arguments(f, weights, rows, cols, x, y, what);
  if (rows == 0 || x.rows == 0) return;
  if (cols == 0) {
    for (int64_t b = 0; b < y.rows; ++b) std::fill(y.row(b), y.row(b) + y.cols, 0.0f);
    return;
  }
  constexpr int64_t kIntMax = 2147483647;
  const bool dot = options.path == MatmulPath::dot ||
                   (options.path == MatmulPath::automatic && x.rows <= kMatmulDotMaxBatch);
  if (!dot && (cols > kIntMax || x.rows > kIntMax || x.stride > kIntMax || y.stride > kIntMax))
    throw Error(what + "the dequant path's BLAS takes 32-bit sizes: " + detail::dims(x.rows, cols) + " is too large");
  if (dot)
    matmul_dot(f, weights.data(), rows, cols, x, y);
  else
    matmul_dequant(f, weights.data(), rows, cols, x, y);
}

void gemv(Format f, std::span<const std::byte> weights, int64_t rows, int64_t cols, std::span<const float> x,
          std::span<float> y) {
  const std::string what = std::string(traits(f).name) + " gemv: ";
  if (static_cast<int64_t>(x.size()) != cols)
    throw Error(what + "x has " + std::to_string(x.size()) + " elements, the weights " + std::to_string(cols) +
                " columns");
  if (static_cast<int64_t>(y.size()) != rows)
    throw Error(what + "y has " + std::to_string(y.size()) + " elements, the weights " + std::to_string(rows) + " rows");
  matmul(f, weights, rows, cols, ConstMatrixView<float>(x.data(), 1, cols), MatrixView<float>(y.data(), 1, rows),
         {MatmulPath::dot});
}

}  // namespace lowbit
