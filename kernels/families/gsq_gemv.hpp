#pragma once
// The GSQ GEMV family: y = W x on GSQ's packed codes (AutoGPTQ layout).
//   key         GsqPackedLayout (every bit width, group, scheme, with or without g_idx)
//   comparison  relative_to_magnitude, tolerance 1e-5: |y_r - want_r| <= 1e-5 *
//               sum_c |W[r,c] x[c]|, want computed in float64 from gsq_dequantize's
//               weights. Variants may sum in any order; the scalar reference sums in
//               float64 and lands within about 1e-7.
//   inputs      bits 2, 3, 4, 8 x groups 32, 128, per-channel x the three schemes,
//               plus scattered act-order groups (g_idx); one odd row count.
#include <cmath>

#include "families/family.hpp"
#include "lowbit/gsq/quantizer.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"

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
    const int64_t rows = 13, cols = 512;
    const std::vector<float> w = synthetic_weights(rows, cols, 21);
    const std::vector<float> x = synthetic_weights(1, cols, 22, Distribution::gaussian);
    for (int bits : {2, 3, 4, 8})
      for (int group : {32, 128, 0})
        for (GsqScheme scheme : {GsqScheme::symmetric, GsqScheme::asymmetric, GsqScheme::asymmetric_float})
          for (bool act_order : {false, true}) {
            GsqConfig cfg;
            cfg.bits = bits;
            cfg.group_size = group;
            cfg.scheme = scheme;
            cfg.search = ScaleSearch::rtn;
            GsqResult q = gsq_quantize(cfg, {w.data(), rows, cols});
            if (act_order) {  // scatter the groups over the columns, as act-order checkpoints do
              q.g_idx.resize(cols);
              for (int64_t c = 0; c < cols; ++c) q.g_idx[c] = static_cast<int32_t>((c * 7 + c / 5) % q.groups());
            }
            std::vector<float> wq(static_cast<size_t>(rows * cols));
            gsq_dequantize(q, {wq.data(), rows, cols});
            const GsqMatrixRef m{q.qweight.data(), q.scales.data(), q.zeros.data(),
                                 q.mins.empty() ? nullptr : q.mins.data(), q.g_idx.empty() ? nullptr : q.g_idx.data(),
                                 q.config.bits, q.rows, q.cols, q.group(), q.words_per_row()};
            std::vector<float> y(rows, std::nanf(""));
            v.fn(m, x.data(), y.data(), 0, rows);
            for (int64_t r = 0; r < rows; ++r) {
              double want = 0, magnitude = 0;
              for (int64_t c = 0; c < cols; ++c) {
                want += double(wq[r * cols + c]) * x[c];
                magnitude += std::fabs(double(wq[r * cols + c]) * x[c]);
              }
              if (!(std::fabs(y[r] - want) <= tolerance * magnitude))
                return cfg.describe() + (act_order ? " act-order" : "") + ", row " + std::to_string(r) +
                       ": float64 " + std::to_string(want) + ", variant " + std::to_string(y[r]);
            }
          }
    return {};
  }
};

}  // namespace lowbit::kernel_families
