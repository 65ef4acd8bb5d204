// The one selection rule every kernel family shares, instantiated once per family.
#include "lowbit/kernels/kernel_table.hpp"

#include "lowbit/core/error.hpp"
#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/dot_rows.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/packed_matrix.hpp"
#include "lowbit/kernels/gsq_dequantize.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/gsq_gemv_q8.hpp"
#include "lowbit/kernels/gsq_search.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit {

std::string kernel_key_name(Format f) { return std::string(traits(f).name); }
std::string kernel_key_name(QuantizeKey k) {
  std::string name(traits(k.format).name);
  // Appended rather than `" " + std::string(...)`, on which GCC 12 reports a false
  // -Wrestrict (its inlined std::string::insert).
  if (k.effort != QuantizeEffort::standard) name.append(" ").append(to_string(k.effort));
  return name;
}
std::string kernel_key_name(GsqPackedLayout) { return "GSQ packed"; }
std::string kernel_key_name(PackedGemmKey) { return "packed 16-row panels"; }
std::string kernel_key_name(GsqSearchKey) { return "GSQ candidates"; }

template <class Fn, class Key>
const typename KernelTable<Fn, Key>::Variant& KernelTable<Fn, Key>::select(const Key& key) const {
  const CpuFeatures active = active_cpu_features();
  const Variant* best = nullptr;
  for (const Variant& v : variants_)
    if (v.key == key && active.contains(v.needs) && (best == nullptr || v.priority > best->priority)) best = &v;
  if (best == nullptr)
    throw Error(std::string("no ") + family_ + " kernel for " + kernel_key_name(key) + " (active CPU features: " +
                active.to_string() + ")");
  return *best;
}

template <class Fn, class Key>
const typename KernelTable<Fn, Key>::Variant& KernelTable<Fn, Key>::reference(const Key& key) const {
  for (const Variant& v : variants_)
    if (v.key == key && v.is_reference()) return v;
  throw Error(std::string("no scalar ") + family_ + " reference for " + kernel_key_name(key));
}

template <class Fn, class Key>
const typename KernelTable<Fn, Key>::Variant* KernelTable<Fn, Key>::find(std::string_view name) const {
  for (const Variant& v : variants_)
    if (name == v.name) return &v;
  return nullptr;
}

template class KernelTable<QuantizeRowFn, QuantizeKey>;
template class KernelTable<DequantizeRowFn, Format>;
template class KernelTable<QuantizeActivationsFn, Format>;
template class KernelTable<GsqGemvFn, GsqPackedLayout>;
template class KernelTable<DotFn, Format>;
template class KernelTable<DotRowsFn, Format>;
template class KernelTable<PackedGemmFn, PackedGemmKey>;
template class KernelTable<GsqDequantizeFn, GsqPackedLayout>;
template class KernelTable<GsqGemvQ8Fn, GsqPackedLayout>;
template class KernelTable<GsqSearchFn, GsqSearchKey>;

}  // namespace lowbit
