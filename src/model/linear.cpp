#include "model/linear.hpp"

#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit::detail {

void linear(const LinearWeight& w, ConstMatrixView<float> x, MatrixView<float> y, MatmulPath path) {
  if (x.cols != w.cols || y.cols != w.rows || x.rows != y.rows)
    throw Error("linear " + w.name + ": weight [" + std::to_string(w.rows) + " x " + std::to_string(w.cols) +
                "], input [" + std::to_string(x.rows) + " x " + std::to_string(x.cols) + "], output [" +
                std::to_string(y.rows) + " x " + std::to_string(y.cols) + "] do not fit");
  try {
    matmul(w.format, w.data, w.rows, w.cols, x, y, {path});
  } catch (const Error& e) {
    throw Error("linear " + w.name + ": " + e.what());
  }
}

void weight_row(const LinearWeight& w, int64_t r, float* out) {
  if (r < 0 || r >= w.rows)
    throw Error(w.name + ": row " + std::to_string(r) + " is outside [0, " + std::to_string(w.rows) + ")");
  const size_t rb = row_bytes(w.format, w.cols);
  select_dequantize_kernel(w.format).fn(w.data.data() + r * rb, out, w.cols);
}

}  // namespace lowbit::detail
