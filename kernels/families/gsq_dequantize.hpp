#pragma once
// The GSQ dequantize family: GSQ's packed codes (AutoGPTQ layout) to float32.
//   key         GsqPackedLayout (every bit width, group, scheme, with or without g_idx)
//   comparison  exact_bytes against decode_value (gsq/group_fit.hpp), the quantizer's
//               own definition of a weight, evaluated by the test itself element by
//               element (so the scalar reference is checked too, not only compared).
//   inputs      gsq_cases.hpp, written into rows of a wider output (ld > cols) whose
//               padding must stay untouched, over several row splits.
#include <cstring>

#include "families/gsq_cases.hpp"
#include "lowbit/gsq/group_fit.hpp"
#include "lowbit/kernels/gsq_dequantize.hpp"

namespace lowbit::kernel_families {

struct GsqDequantizeFamily {
  using Fn = GsqDequantizeFn;
  using Key = GsqPackedLayout;
  using Variant = GsqDequantizeKernel;
  static constexpr const char* name = "gsq_dequantize";
  static constexpr Comparison comparison = Comparison::exact_bytes;
  static const KernelTable<Fn, Key>& table() { return gsq_dequantize_kernels(); }

  static std::string check(const Variant& v) {
    return for_each_gsq_case([&](const GsqCase& t) -> std::string {
      const GsqResult& q = *t.q;
      const int64_t rows = q.rows, cols = q.cols, ld = cols + 3;
      const float sentinel = -12345.0f;
      for (const std::vector<int64_t>& split : gsq_row_splits(rows)) {
        OffsetBuffer buf(static_cast<size_t>(rows * ld) * 4, kUnalignedShift);
        float* out = buf.floats();
        for (int64_t i = 0; i < rows * ld; ++i) out[i] = sentinel;
        for (size_t i = 0; i + 1 < split.size(); ++i) v.fn(t.m, out, ld, split[i], split[i + 1]);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < cols; ++c) {
            const float want = decode_value(q.config, q.params(r, q.group_of(c)), q.code(r, c));
            if (std::memcmp(&want, &out[r * ld + c], 4) != 0)
              return t.name + ": " + mismatch("split " + std::to_string(split.size() - 1), r * cols + c, want,
                                              out[r * ld + c]);
          }
          for (int64_t c = cols; c < ld; ++c)
            if (out[r * ld + c] != sentinel) return t.name + ": wrote past the row end at row " + std::to_string(r);
        }
      }
      return {};
    });
  }
};

}  // namespace lowbit::kernel_families
