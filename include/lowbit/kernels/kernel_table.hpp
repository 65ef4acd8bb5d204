#pragma once
// One generic dispatch table for every kernel family. A family's list
// (kernels/lists/<family>.inc) names each variant's key (the format it serves), the
// CPU features it needs and its priority; the table picks, per key, the runnable
// variant of highest priority. Tests and benchmarks walk the same table, so a variant
// cannot exist without being tested and benchmarked.
#include <span>
#include <string>
#include <string_view>

#include "lowbit/kernels/cpu_features.hpp"

namespace lowbit {

template <class Fn, class Key>
struct KernelVariant {
  Key key;
  CpuFeatures needs;  // all of these must be active for the variant to run
  int priority;       // among runnable variants of one key the highest wins
  const char* name;   // "<family>_<format>__<isa>", e.g. "dequantize_row_q4_K__avx512"
  Fn fn;

  // Scalar references need no feature; every key has exactly one.
  bool is_reference() const { return needs.empty(); }
  bool runnable() const { return active_cpu_features().contains(needs); }
  bool supported_by_cpu() const { return detected_cpu_features().contains(needs); }
};

template <class Fn, class Key>
class KernelTable {
 public:
  using Variant = KernelVariant<Fn, Key>;

  constexpr KernelTable(const char* family, std::span<const Variant> variants)
      : family_(family), variants_(variants) {}

  const char* family() const { return family_; }
  std::span<const Variant> variants() const { return variants_; }

  // The runnable variant of highest priority for `key` (see active_cpu_features()).
  // Throws Error when the family has no variant for the key.
  const Variant& select(const Key& key) const;
  // The scalar reference of `key`. Throws Error when there is none.
  const Variant& reference(const Key& key) const;
  // The variant called `name`, or nullptr.
  const Variant* find(std::string_view name) const;

 private:
  const char* family_;
  std::span<const Variant> variants_;
};

}  // namespace lowbit
