#pragma once
// Private helpers shared by the quantizers (lowbit::quantize, GSQ, GPTQ) and the model
// code: one wording for each kind of bad input, one way to write a shape, one rule
// for how many rows a parallel task gets. Not installed; include as "common/checks.hpp".
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_view.hpp"
#include "lowbit/core/parallel.hpp"

namespace lowbit::detail {

// "rows x cols", as messages write a matrix shape.
inline std::string dims(int64_t rows, int64_t cols) { return std::to_string(rows) + " x " + std::to_string(cols); }

// "[4096, 11008]", as messages and tools write a tensor shape (any rank).
inline std::string shape_list(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}
inline std::string shape_list(std::initializer_list<int64_t> shape) {
  return shape_list(std::span<const int64_t>(shape.begin(), shape.size()));
}

// Work units one parallel task should hold so that scheduling costs nothing.
inline constexpr int64_t kParallelGrain = 65536;

// Rows per parallel task for rows of `cols` elements, each element costing about
// `cost` units (1 for a format's quantizer; more for a costlier search). Depends
// only on the shape, never on the thread count, so results do not either.
inline int64_t row_grain(int64_t cols, int64_t cost = 1) {
  return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, cols * std::max<int64_t>(1, cost)));
}

// An importance vector (one weight per input column) of the wrong length:
// Error(where + "importance vector has N entries, expected one per column (C)").
// An empty vector means "none" and passes.
inline void check_importance_size(std::string_view where, std::span<const float> importance, int64_t cols) {
  if (importance.empty() || static_cast<int64_t>(importance.size()) == cols) return;
  throw Error(std::string(where) + "importance vector has " + std::to_string(importance.size()) +
              " entries, expected one per column (" + std::to_string(cols) + ")");
}

// A negative, NaN or infinite importance: Error(where + "importance[i] = v must be
// finite and non-negative"), the first such entry named.
inline void check_importance_values(std::string_view where, std::span<const float> importance) {
  for (size_t i = 0; i < importance.size(); ++i)
    if (!std::isfinite(importance[i]) || importance[i] < 0.0f)
      throw Error(std::string(where) + "importance[" + std::to_string(i) + "] = " + std::to_string(importance[i]) +
                  " must be finite and non-negative");
}

inline void check_importance(std::string_view where, std::span<const float> importance, int64_t cols) {
  check_importance_size(where, importance, cols);
  check_importance_values(where, importance);
}

// The first NaN or +-Inf element of m in row-major order, whatever the thread count
// (rows are scanned in parallel), or nullopt when every element is finite.
inline std::optional<std::pair<int64_t, int64_t>> find_non_finite(ConstMatrixView<float> m) {
  if (m.rows <= 0 || m.cols <= 0) return std::nullopt;
  std::atomic<int64_t> first_bad{INT64_MAX};
  parallel_for(m.rows, row_grain(m.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = m.row(r);
      for (int64_t c = 0; c < m.cols; ++c) {
        if (!std::isfinite(row[c])) {
          int64_t idx = r * m.cols + c, cur = first_bad.load();
          while (idx < cur && !first_bad.compare_exchange_weak(cur, idx)) {}
          break;
        }
      }
    }
  });
  const int64_t bad = first_bad.load();
  if (bad == INT64_MAX) return std::nullopt;
  return std::pair{bad / m.cols, bad % m.cols};
}

// Throws Error(prefix + "[r, c] is v; " + reason) for the first non-finite element,
// e.g. prefix "Q4_K quantize: input element ", reason "NaN and Inf cannot be ...".
inline void check_finite(ConstMatrixView<float> m, std::string_view prefix, std::string_view reason) {
  if (const auto bad = find_non_finite(m)) {
    const auto [r, c] = *bad;
    throw Error(std::string(prefix) + "[" + std::to_string(r) + ", " + std::to_string(c) + "] is " +
                std::to_string(m(r, c)) + "; " + std::string(reason));
  }
}

}  // namespace lowbit::detail
