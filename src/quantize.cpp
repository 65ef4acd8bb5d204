#include "lowbit/formats/quantize.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <limits>
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

// The range format f can represent: its largest stored scale (the fp16 maximum
// 65504 for every block format but Q8_K's fp32 scale) times the largest level
// magnitude, times the largest sub-block scale for the K-quants and IQ4_XS; formats
// with a stored minimum reach further up than down (the minimum is one fp16 value,
// or dmin times a 6-bit code). Inputs outside could only be clipped: quantize refuses
// them rather than write blocks whose error is the value itself.
struct Range {
  double lowest, highest;
};
Range representable(Format f) {
  constexpr double h = 65504.0, inf = std::numeric_limits<double>::infinity();
  auto sym = [](double m) { return Range{-m, m}; };
  switch (f) {
    case Format::F16: return sym(std::nextafter(65520.0, 0.0));  // 65520 and above round to Inf
    // BF16's largest finite value plus half an ulp (bits 0x7f7f8000) rounds to Inf.
    case Format::BF16: return sym(std::nextafter(double(std::bit_cast<float>(0x7f7f8000u)), 0.0));
    case Format::Q4_0: return sym(h * 8);                  // d * l, l in -8..7, d of either sign
    case Format::Q4_1: return {-h, h * 15 + h};            // d * q + m, q in 0..15
    case Format::Q5_0: return sym(h * 16);
    case Format::Q5_1: return {-h, h * 31 + h};
    case Format::Q8_0:
    case Format::Q8_1: return sym(h * 128);
    case Format::Q2_K: return {-h * 15, h * 15 * 3};      // (d * sc) * q - dmin * m, sc, m <= 15, q <= 3
    case Format::Q3_K: return sym(h * 32 * 4);            // (d * (sc - 32)) * q, q in -4..3
    case Format::Q4_K: return {-h * 63, h * 63 * 15};     // 6-bit scales and mins, q <= 15
    case Format::Q5_K: return {-h * 63, h * 63 * 31};
    case Format::Q6_K: return sym(h * 128 * 32);          // int8 sub-block scales, q in -32..31
    case Format::IQ4_NL: return sym(h * 127);             // code book values within +-127
    case Format::IQ4_XS: return sym(h * 32 * 127);        // 6-bit signed sub-block scales
    default: return {-inf, inf};                          // F32, Q8_K (fp32 scale)
  }
}

// Names the first element in row-major order that f cannot represent.
void check_representable(const FormatTraits& t, ConstMatrixView<float> src) {
  const Range range = representable(t.format);
  if (std::isinf(range.highest)) return;
  const auto outside = [&](float v) { return double(v) < range.lowest || double(v) > range.highest; };
  std::atomic<int64_t> first_row{src.rows};
  parallel_for(src.rows, row_grain(src.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1 && r < first_row.load(std::memory_order_relaxed); ++r) {
      const float* row = src.row(r);
      for (int64_t c = 0; c < src.cols; ++c)
        if (outside(row[c])) {
          int64_t seen = first_row.load();
          while (r < seen && !first_row.compare_exchange_weak(seen, r)) {
          }
          break;
        }
    }
  });
  const int64_t r = first_row.load();
  if (r == src.rows) return;
  const float* row = src.row(r);
  int64_t c = 0;
  while (!outside(row[c])) ++c;
  char text[96];
  std::snprintf(text, sizeof text, "] = %g is outside the range [%g, %g] ", double(row[c]), range.lowest,
                range.highest);
  throw Error(std::string(t.name) + " quantize: input element [" + std::to_string(r) + ", " + std::to_string(c) +
              text + std::string(t.name) + " can represent; it would be clipped. Scale the tensor or keep it in "
              "F32, BF16 or Q8_K");
}

// Whether every element is finite and inside the range f can represent, in one pass
// of SSE2 min/max (the baseline of every x86-64 CPU) instead of the two element-by-
// element scans, which took twice as long as the `fast` quantizers themselves. Only
// when it says no do the scans run, to name the first offending element.
bool all_finite_and_representable(const FormatTraits& t, ConstMatrixView<float> src) {
  const Range range = representable(t.format);
  std::atomic<bool> ok{true};
  parallel_for(src.rows, row_grain(src.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1 && ok.load(std::memory_order_relaxed); ++r) {
      const float* row = src.row(r);
      float lo = row[0], hi = row[0];
      bool bad = false;  // x * 0 is NaN exactly for NaN and +-Inf
      int64_t c = 0;
#if defined(__SSE2__)
      const __m128 zero = _mm_setzero_ps();
      __m128 vlo = _mm_set1_ps(lo), vhi = vlo, vbad = zero;
      for (; c + 4 <= src.cols; c += 4) {
        const __m128 v = _mm_loadu_ps(row + c);
        vlo = _mm_min_ps(vlo, v);
        vhi = _mm_max_ps(vhi, v);
        vbad = _mm_or_ps(vbad, _mm_cmpneq_ps(_mm_mul_ps(v, zero), zero));
      }
      alignas(16) float l4[4], h4[4];
      _mm_store_ps(l4, vlo);
      _mm_store_ps(h4, vhi);
      for (int k = 0; k < 4; ++k) {
        lo = std::min(lo, l4[k]);
        hi = std::max(hi, h4[k]);
      }
      bad = _mm_movemask_ps(vbad) != 0;
#endif
      for (; c < src.cols; ++c) {
        lo = std::min(lo, row[c]);
        hi = std::max(hi, row[c]);
        bad |= row[c] * 0.0f != 0.0f;
      }
      if (bad || !(double(lo) >= range.lowest && double(hi) <= range.highest))
        ok.store(false, std::memory_order_relaxed);
    }
  });
  return ok.load();
}

}  // namespace

size_t quantized_size(Format f, int64_t rows, int64_t cols) {
  const FormatTraits& t = traits(f);
  check_shape(t, rows, cols);
  size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(rows), row_bytes(f, cols), &bytes))
    throw Error(std::string(t.name) + ": a " + shape(rows, cols) + " matrix needs more bytes than size_t can count");
  return bytes;
}

void quantize(Format f, ConstMatrixView<float> src, std::span<std::byte> dst,
              std::span<const float> importance, QuantizeEffort effort) {
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
  if (src.rows == 0 || src.cols == 0) return;  // nothing to write, however many empty rows
  if (!all_finite_and_representable(t, src)) {
    check_finite(t, src);
    check_representable(t, src);
  }

  const QuantizeRowFn fn = select_quantize_kernel(f, effort).fn;
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
  if (dst.rows == 0 || dst.cols == 0) return;

  const DequantizeRowFn fn = select_dequantize_kernel(f).fn;
  const size_t rb = row_bytes(f, dst.cols);
  parallel_for(dst.rows, row_grain(dst.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(src.data() + r * rb, dst.row(r), dst.cols);
  });
}

}  // namespace lowbit
