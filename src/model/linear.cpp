#include "model/linear.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "gptq/blas.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit::detail {
namespace {

// Rows of W decoded per task: small enough that a tile (<= 64 x 16384 floats) stays in
// L2 next to the activations, large enough that the GEMM call is not all overhead.
constexpr int64_t kTileRows = 64;

}  // namespace

void linear(const LinearWeight& w, ConstMatrixView<float> x, MatrixView<float> y) {
  if (x.cols != w.cols || y.cols != w.rows || x.rows != y.rows)
    throw Error("linear " + w.name + ": weight [" + std::to_string(w.rows) + " x " + std::to_string(w.cols) +
                "], input [" + std::to_string(x.rows) + " x " + std::to_string(x.cols) + "], output [" +
                std::to_string(y.rows) + " x " + std::to_string(y.cols) + "] do not fit");
  if (x.rows == 0 || w.rows == 0) return;
  const DequantizeRowFn decode = select_dequantize_kernel(w.format).fn;
  const size_t rb = row_bytes(w.format, w.cols);
  blas::ThreadScope one(1);  // parallel over tiles instead: the same sums at any thread count
  const int64_t tiles = (w.rows + kTileRows - 1) / kTileRows;
  parallel_for(tiles, 1, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> buf;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * kTileRows;
      const int64_t n = std::min(kTileRows, w.rows - r0);
      buf.resize(static_cast<size_t>(n * w.cols));
      for (int64_t r = 0; r < n; ++r) decode(w.data.data() + (r0 + r) * rb, buf.data() + r * w.cols, w.cols);
      cblas_sgemm(LowbitRowMajor, LowbitNoTrans, LowbitTrans, static_cast<int>(x.rows), static_cast<int>(n),
                  static_cast<int>(w.cols), 1.0f, x.data, static_cast<int>(x.stride), buf.data(),
                  static_cast<int>(w.cols), 0.0f, y.data + r0, static_cast<int>(y.stride));
    }
  });
}

void weight_row(const LinearWeight& w, int64_t r, float* out) {
  if (r < 0 || r >= w.rows)
    throw Error(w.name + ": row " + std::to_string(r) + " is outside [0, " + std::to_string(w.rows) + ")");
  const size_t rb = row_bytes(w.format, w.cols);
  select_dequantize_kernel(w.format).fn(w.data.data() + r * rb, out, w.cols);
}

}  // namespace lowbit::detail
