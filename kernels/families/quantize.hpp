#pragma once
// The quantize family: one row of float32 -> a block format, with or without an
// importance vector.
//   key         QuantizeKey (format, effort)
//   comparison  exact_bytes: every variant writes the scalar reference's bytes (the
//               same model file on every machine), with and without importance.
//   inputs      standard_patterns() and code_book_edge_values() (its values only
//               compared between variants), importance from synthetic_importance().
// The scalar references themselves are checked against independent bounds: their
// round trip on unit-scale data stays within 2^-(min(bits per weight, 8) - 2.5)
// relative RMSE (measured errors are 1.5-4x below it; docs/formats.md), zeros stay exact zeros,
// and the float formats round exactly as lowbit/core/half.hpp converts.
#include <algorithm>
#include <cmath>

#include "families/family.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit::kernel_families {

struct QuantizeFamily {
  using Fn = QuantizeRowFn;
  using Key = QuantizeKey;
  using Variant = QuantizeKernel;
  static constexpr const char* name = "quantize";
  static constexpr Comparison comparison = Comparison::exact_bytes;
  static const KernelTable<Fn, Key>& table() { return quantize_kernels(); }

  // The reference's round trip against bounds that do not come from its own output.
  static std::string check_reference(const Variant& v, const InputPattern& p, const std::vector<float>& x,
                                     const std::vector<std::byte>& q) {
    const Format f = v.key.format;
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<float> y(static_cast<size_t>(n));
    dequantize_kernels().reference(f).fn(q.data(), y.data(), n);
    if (f == Format::F32 || f == Format::F16 || f == Format::BF16) {
      for (int64_t i = 0; i < n; ++i) {
        const float want = f == Format::F32   ? x[i]
                           : f == Format::F16 ? fp16_to_fp32(fp32_to_fp16(x[i]))
                                              : bf16_to_fp32(fp32_to_bf16(x[i]));
        if (std::memcmp(&want, &y[i], 4) != 0) return mismatch(p.name, i, want, y[i]);
      }
      return {};
    }
    if (p.zero) {
      for (int64_t i = 0; i < n; ++i)
        if (y[i] != 0.0f) return mismatch(p.name, i, 0.0, y[i]);
      return {};
    }
    // Saturated or subnormal scales, and values chosen for their rounding rather than
    // as weights: only the variants' identity is checked.
    if (p.scale != 1.0f || p.code_book_edges) return {};
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i) {
      err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
      ref += double(x[i]) * x[i];
    }
    const double rel = std::sqrt(err / ref), bound = std::exp2(-(std::min(traits(f).bits_per_weight(), 8.0) - 2.5));
    if (!(rel <= bound))
      return "pattern " + p.name + ": round-trip relative RMSE " + std::to_string(rel) + " above the bound " +
             std::to_string(bound);
    return {};
  }

  static std::string check(const Variant& v) {
    const Variant& ref = table().reference(v.key);
    std::vector<InputPattern> patterns = standard_patterns();
    InputPattern edges;
    edges.name = "code_book_edges";
    edges.blocks = 17;
    edges.code_book_edges = true;
    patterns.push_back(edges);
    for (const InputPattern& p : patterns) {
      const Format f = v.key.format;
      const int64_t n = pattern_row_elems(f, p);
      const std::vector<float> x = pattern_values(p, 1, n, 5);
      const std::vector<float> importance = synthetic_importance(n, 5);
      for (bool with_importance : {false, true}) {
        const float* imp = with_importance ? importance.data() : nullptr;
        const size_t bytes = row_bytes(f, n);
        OffsetBuffer in(static_cast<size_t>(n) * 4, p.unaligned ? kUnalignedShift : 0);
        std::memcpy(in.floats(), x.data(), static_cast<size_t>(n) * 4);
        OffsetBuffer out(bytes, p.unaligned ? kUnalignedShift : 0);
        std::memset(out.data(), 0xa5, bytes);  // poison
        v.fn(in.floats(), out.data(), n, imp);
        std::vector<std::byte> got(out.data(), out.data() + bytes);
        const std::string name = p.name + (with_importance ? "+importance" : "");
        if (v.is_reference()) {
          std::vector<std::byte> again(bytes);
          v.fn(x.data(), again.data(), n, imp);
          if (again != got) return "pattern " + name + ": two runs on the same input differ";
          if (std::string e = check_reference(v, p, x, got); !e.empty()) return e;
          continue;
        }
        std::vector<std::byte> want(bytes);
        ref.fn(x.data(), want.data(), n, imp);
        for (size_t i = 0; i < bytes; ++i)
          if (want[i] != got[i])
            return "pattern " + name + ", byte " + std::to_string(i) + ": reference " +
                   std::to_string(int(want[i])) + ", variant " + std::to_string(int(got[i]));
      }
    }
    return {};
  }
};

}  // namespace lowbit::kernel_families
