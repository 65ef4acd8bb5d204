#include "lowbit/core/metrics.hpp"

#include <cmath>
#include <string>

#include "lowbit/core/error.hpp"

namespace lowbit {

double relative_rmse(ConstMatrixView<float> ref, ConstMatrixView<float> approx,
                     std::span<const float> importance) {
  if (ref.rows != approx.rows || ref.cols != approx.cols)
    throw Error("relative_rmse: shapes differ (" + std::to_string(ref.rows) + " x " +
                std::to_string(ref.cols) + " vs " + std::to_string(approx.rows) + " x " +
                std::to_string(approx.cols) + ")");
  if (!importance.empty() && static_cast<int64_t>(importance.size()) != ref.cols)
    throw Error("relative_rmse: importance has " + std::to_string(importance.size()) +
                " entries for " + std::to_string(ref.cols) + " columns");
  double num = 0, den = 0;
  for (int64_t r = 0; r < ref.rows; ++r) {
    const float* a = ref.row(r);
    const float* b = approx.row(r);
    for (int64_t c = 0; c < ref.cols; ++c) {
      const double wgt = importance.empty() ? 1.0 : importance[c];
      const double d = static_cast<double>(a[c]) - b[c];
      num += wgt * d * d;
      den += wgt * static_cast<double>(a[c]) * a[c];
    }
  }
  return den > 0 ? std::sqrt(num / den) : (num > 0 ? INFINITY : 0.0);
}

}  // namespace lowbit
