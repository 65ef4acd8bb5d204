#pragma once
// The GSQ x Q8_0 GEMV family: y = W xq on GSQ's packed codes, activations in ggml's
// Q8_0 blocks.
//   key         GsqPackedLayout (every bit width, group, scheme, with or without g_idx)
//   comparison  relative_to_magnitude, tolerance 1e-5, against the float64 product of
//               decode_value's weights (gsq/group_fit.hpp) and the dequantized
//               activations d * q: the activation quantization error is the caller's
//               choice and not the kernel's, so it is not part of the tolerance. The
//               integer sums are exact in every variant; the tolerance covers float32
//               accumulation of the per-block terms.
//   inputs      gsq_cases.hpp, less the shapes whose rows are not whole Q8_0 blocks;
//               the activations are quantized by the scalar Q8_0 activation reference
//               and placed at the same alignment as the case's arrays.
//   splits      bit-identical y whatever row ranges the variant is called on.
#include <cmath>
#include <cstring>

#include "families/gsq_cases.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"
#include "lowbit/gsq/group_fit.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/gsq_gemv_q8.hpp"

namespace lowbit::kernel_families {

struct GsqGemvQ8Family {
  using Fn = GsqGemvQ8Fn;
  using Key = GsqPackedLayout;
  using Variant = GsqGemvQ8Kernel;
  static constexpr const char* name = "gsq_gemv_q8";
  static constexpr Comparison comparison = Comparison::relative_to_magnitude;
  static constexpr double tolerance = 1e-5;
  static const KernelTable<Fn, Key>& table() { return gsq_gemv_q8_kernels(); }

  static std::string check(const Variant& v) {
    return for_each_gsq_case([&](const GsqCase& t) -> std::string {
      const GsqResult& q = *t.q;
      const int64_t rows = q.rows, cols = q.cols;
      if (cols % 32 != 0) return {};
      OffsetBuffer xbuf(static_cast<size_t>(cols / 32) * sizeof(block_q8_0),
                        reinterpret_cast<uintptr_t>(t.x) % 64);
      activation_kernels().reference(Format::Q8_0).fn(t.x, xbuf.data(), cols);
      const auto* xq = reinterpret_cast<const block_q8_0*>(xbuf.data());
      std::vector<float> first;
      for (const std::vector<int64_t>& split : gsq_row_splits(rows)) {
        OffsetBuffer out(static_cast<size_t>(rows) * 4, kUnalignedShift);
        float* y = out.floats();
        for (int64_t r = 0; r < rows; ++r) y[r] = std::nanf("");
        for (size_t i = 0; i + 1 < split.size(); ++i) v.fn(t.m, xq, y, split[i], split[i + 1]);
        if (first.empty()) {
          first.assign(y, y + rows);
          for (int64_t r = 0; r < rows; ++r) {
            double want = 0, magnitude = 0;
            for (int64_t c = 0; c < cols; ++c) {
              const double wq = decode_value(q.config, q.params(r, q.group_of(c)), q.code(r, c));
              const double x = static_cast<double>(fp16_to_fp32(xq[c / 32].d)) * xq[c / 32].qs[c % 32];
              want += wq * x;
              magnitude += std::fabs(wq * x);
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
