#pragma once
// The GSQ GEMV family: y = W x on GSQ's packed codes (AutoGPTQ layout).
//   key         GsqPackedLayout (every bit width, group, scheme, with or without g_idx)
//   comparison  relative_to_magnitude, tolerance 1e-5: |y_r - want_r| <= 1e-5 *
//               sum_c |W[r,c] x[c]|, want computed in float64 from decode_value's
//               weights (gsq/group_fit.hpp, the quantizer's own definition). Variants
//               may sum in any order; the scalar reference sums in float64 and lands
//               within about 1e-7, the SIMD variants sum in float32 per group.
//   inputs      gsq_cases.hpp: every bit width, group, scheme, with and without g_idx,
//               odd row counts, partial last words, unaligned arrays.
//   splits      each variant's y must be bit-identical whatever row ranges it is
//               called on (thread-count independence of gsq_gemv).
#include <cmath>
#include <cstring>

#include "families/gsq_cases.hpp"
#include "lowbit/gsq/group_fit.hpp"

namespace lowbit::kernel_families {

struct GsqGemvFamily {
  using Fn = GsqGemvFn;
  using Key = GsqPackedLayout;
  using Variant = GsqGemvKernel;
  static constexpr const char* name = "gsq_gemv";
  static constexpr Comparison comparison = Comparison::relative_to_magnitude;
  static constexpr double tolerance = 1e-5;
  static const KernelTable<Fn, Key>& table() { return gsq_gemv_kernels(); }

  static std::string check(const Variant& v) {
    return for_each_gsq_case([&](const GsqCase& t) -> std::string {
      const GsqResult& q = *t.q;
      const int64_t rows = q.rows, cols = q.cols;
      std::vector<float> first;
      for (const std::vector<int64_t>& split : gsq_row_splits(rows)) {
        OffsetBuffer out(static_cast<size_t>(rows) * 4, kUnalignedShift);
        float* y = out.floats();
        for (int64_t r = 0; r < rows; ++r) y[r] = std::nanf("");
        for (size_t i = 0; i + 1 < split.size(); ++i) v.fn(t.m, t.x, y, split[i], split[i + 1]);
        if (first.empty()) {
          first.assign(y, y + rows);
          for (int64_t r = 0; r < rows; ++r) {
            double want = 0, magnitude = 0;
            for (int64_t c = 0; c < cols; ++c) {
              const double wq = decode_value(q.config, q.params(r, q.group_of(c)), q.code(r, c));
              want += wq * t.x[c];
              magnitude += std::fabs(wq * t.x[c]);
            }
            if (!(std::fabs(y[r] - want) <= tolerance * magnitude))
              return t.name + ", row " + std::to_string(r) + ": float64 " + std::to_string(want) + ", variant " +
                     std::to_string(y[r]);
          }
        } else if (std::memcmp(first.data(), y, static_cast<size_t>(rows) * 4) != 0) {
          return t.name + ": y differs when the rows are split into " + std::to_string(split.size() - 1) + " calls";
        }
      }
      return {};
    });
  }
};

}  // namespace lowbit::kernel_families
