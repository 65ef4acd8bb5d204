#pragma once
// The multi-row dot family: one activation row against several weight rows
// (lowbit/kernels/dot_rows.hpp).
//   key         Format (the weights')
//   comparison  exact against the dot variant of the same ISA, row by row (the
//               family's contract), and so within the dot family's float64 tolerance,
//               which is checked too (for the scalar references that is the only
//               independent check).
//   inputs      standard_patterns() with 19 weight rows each (a whole group of 16 and a
//               part group), plus rows of 531 blocks: two whole 256-block activation
//               chunks, a partial one and a three-block tail.
#include <cstdio>
#include <string>

#include "families/dot.hpp"
#include "lowbit/kernels/dot_rows.hpp"

namespace lowbit::kernel_families {

struct DotRowsFamily {
  using Fn = DotRowsFn;
  using Key = Format;
  using Variant = DotRowsKernel;
  static constexpr const char* name = "dot_rows";
  static constexpr Comparison comparison = Comparison::exact_bytes;
  static const KernelTable<Fn, Key>& table() { return dot_rows_kernels(); }

  static constexpr int64_t kRows = 19;

  // The dot variant whose results the multi-row one must repeat:
  // dot_rows_<w>_<a>__<isa> -> dot_<w>_<a>__<isa>.
  static const DotKernel* single_row_twin(const Variant& v) {
    std::string name = v.name;
    const std::string prefix = "dot_rows_";
    if (name.rfind(prefix, 0) != 0) return nullptr;
    return dot_kernels().find("dot_" + name.substr(prefix.size()));
  }

  // A float with every digit that tells two floats apart.
  static std::string bits(float v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", double(v));
    return buf;
  }

  static std::vector<InputPattern> patterns() {
    std::vector<InputPattern> p = standard_patterns();
    InputPattern chunks;
    chunks.name = "blocks531";
    chunks.blocks = 531;
    p.push_back(chunks);
    return p;
  }

  static std::string check(const Variant& v) {
    const DotKernel* twin = single_row_twin(v);
    if (twin == nullptr || twin->key != v.key) return std::string(v.name) + " has no dot variant of the same ISA";
    const Format wf = v.key;
    for (const InputPattern& p : patterns()) {
      const int64_t n = pattern_row_elems(wf, p);
      const std::vector<std::byte> wq = DequantizeFamily::encode(wf, p, n * kRows);  // block formats: rows are concatenated blocks
      const std::vector<std::byte> aq = DotFamily::pattern_activations(wf, p, n);
      const size_t shift = p.unaligned ? kUnalignedShift : 0, rb = row_bytes(wf, n);
      OffsetBuffer w(wq.size(), shift), a(aq.size(), shift), y(kRows * sizeof(float), shift);
      std::memcpy(w.data(), wq.data(), wq.size());
      std::memcpy(a.data(), aq.data(), aq.size());
      std::memset(y.data(), 0xff, kRows * sizeof(float));  // NaN poison
      v.fn(w.data(), rb, a.data(), n, kRows, y.floats());
      for (int64_t r = 0; r < kRows; ++r) {
        const std::string what = "pattern " + p.name + ", row " + std::to_string(r);
        const std::byte* row = w.data() + r * rb;
        const float single = twin->fn(row, a.data(), n), got = y.floats()[r];
        if (std::memcmp(&single, &got, sizeof got) != 0)
          return what + ": " + twin->name + " gives " + bits(single) + ", the multi-row variant " + bits(got);
        bool skip = false;
        const std::string bad = DotFamily::judge(wf, row, a.data(), n, got, what, skip);
        if (!bad.empty()) return bad;
      }
    }
    return {};
  }
};

}  // namespace lowbit::kernel_families
