#include "lowbit/kernels/quantize.hpp"

#include <atomic>
#include <cmath>
#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit {
namespace {

std::string shape(int64_t rows, int64_t cols) {
  return std::to_string(rows) + " x " + std::to_string(cols);
}

// Rows per parallel task: enough elements that scheduling costs nothing.
int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(cols, 1)); }

void check_shape(const FormatTraits& t, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0)
    throw Error(std::string(t.name) + ": negative matrix shape " + shape(rows, cols));
  (void)row_bytes(t.format, cols);  // throws for a ragged row length
}

// Finds the first non-finite element in row-major order, whatever the thread count.
void check_finite(const FormatTraits& t, ConstMatrixView<float> src) {
  std::atomic<int64_t> first_bad{INT64_MAX};
  parallel_for(src.rows, row_grain(src.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = src.row(r);
      for (int64_t c = 0; c < src.cols; ++c) {
        if (!std::isfinite(row[c])) {
          int64_t idx = r * src.cols + c, cur = first_bad.load();
          while (idx < cur && !first_bad.compare_exchange_weak(cur, idx)) {}
          break;
        }
      }
    }
  });
  const int64_t bad = first_bad.load();
  if (bad != INT64_MAX) {
    const int64_t r = bad / src.cols, c = bad % src.cols;
    throw Error(std::string(t.name) + " quantize: input element [" + std::to_string(r) + ", " +
                std::to_string(c) + "] is " + std::to_string(src(r, c)) +
                "; NaN and Inf cannot be represented by block scales");
  }
}

void check_importance(const FormatTraits& t, int64_t cols, std::span<const float> importance) {
  if (importance.empty()) return;
  if (static_cast<int64_t>(importance.size()) != cols)
    throw Error(std::string(t.name) + " quantize: importance vector has " +
                std::to_string(importance.size()) + " entries, expected one per column (" +
                std::to_string(cols) + ")");
  for (size_t i = 0; i < importance.size(); ++i)
    if (!std::isfinite(importance[i]) || importance[i] < 0.0f)
      throw Error(std::string(t.name) + " quantize: importance[" + std::to_string(i) + "] = " +
                  std::to_string(importance[i]) + " must be finite and non-negative");
}

}  // namespace

size_t quantized_size(Format f, int64_t rows, int64_t cols) {
  const FormatTraits& t = traits(f);
  check_shape(t, rows, cols);
  return static_cast<size_t>(rows) * row_bytes(f, cols);
}

void quantize(Format f, ConstMatrixView<float> src, std::span<std::byte> dst,
              std::span<const float> importance) {
  const FormatTraits& t = traits(f);
  check_shape(t, src.rows, src.cols);
  if (src.stride < src.cols)
    throw Error(std::string(t.name) + " quantize: row stride " + std::to_string(src.stride) +
                " is smaller than the row length " + std::to_string(src.cols));
  const size_t need = quantized_size(f, src.rows, src.cols);
  if (src.size() > 0 && src.data == nullptr)
    throw Error(std::string(t.name) + " quantize: source of shape " + shape(src.rows, src.cols) + " is null");
  if (need > 0 && dst.data() == nullptr)
    throw Error(std::string(t.name) + " quantize: destination buffer is null");
  if (dst.size() < need)
    throw Error(std::string(t.name) + " quantize: destination holds " + std::to_string(dst.size()) +
                " bytes, a " + shape(src.rows, src.cols) + " matrix needs " + std::to_string(need));
  check_importance(t, src.cols, importance);
  check_finite(t, src);

  const QuantizeRowFn fn = select_quantize_kernel(f).fn;
  const size_t rb = row_bytes(f, src.cols);
  const float* imp = importance.empty() ? nullptr : importance.data();
  parallel_for(src.rows, row_grain(src.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(src.row(r), dst.data() + r * rb, src.cols, imp);
  });
}

void dequantize(Format f, std::span<const std::byte> src, MatrixView<float> dst) {
  const FormatTraits& t = traits(f);
  check_shape(t, dst.rows, dst.cols);
  if (dst.stride < dst.cols)
    throw Error(std::string(t.name) + " dequantize: row stride " + std::to_string(dst.stride) +
                " is smaller than the row length " + std::to_string(dst.cols));
  const size_t need = quantized_size(f, dst.rows, dst.cols);
  if (need > 0 && src.data() == nullptr)
    throw Error(std::string(t.name) + " dequantize: source buffer is null");
  if (dst.size() > 0 && dst.data == nullptr)
    throw Error(std::string(t.name) + " dequantize: destination of shape " + shape(dst.rows, dst.cols) + " is null");
  if (src.size() < need)
    throw Error(std::string(t.name) + " dequantize: source holds " + std::to_string(src.size()) +
                " bytes, a " + shape(dst.rows, dst.cols) + " matrix needs " + std::to_string(need));

  const DequantizeRowFn fn = select_dequantize_kernel(f).fn;
  const size_t rb = row_bytes(f, dst.cols);
  parallel_for(dst.rows, row_grain(dst.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(src.data() + r * rb, dst.row(r), dst.cols);
  });
}

}  // namespace lowbit
