#include "lowbit/formats/quantize.hpp"

#include <string>

#include "common/checks.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit {
namespace {

using detail::dims;
using detail::row_grain;

std::string shape(int64_t rows, int64_t cols) { return dims(rows, cols); }

void check_shape(const FormatTraits& t, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0)
    throw Error(std::string(t.name) + ": negative matrix shape " + shape(rows, cols));
  (void)row_bytes(t.format, cols);  // throws for a ragged row length
}

// Names the first non-finite element in row-major order, whatever the thread count.
void check_finite(const FormatTraits& t, ConstMatrixView<float> src) {
  detail::check_finite(src, std::string(t.name) + " quantize: input element ",
                       "NaN and Inf cannot be represented by block scales");
}

void check_importance(const FormatTraits& t, int64_t cols, std::span<const float> importance) {
  detail::check_importance(std::string(t.name) + " quantize: ", importance, cols);
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
