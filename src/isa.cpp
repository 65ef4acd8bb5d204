#include "lowbit/kernels/isa.hpp"

#include <atomic>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace lowbit {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
// CPUID leaf 1, ECX bit 29. Asked directly because clang before 16 does not
// accept "f16c" in __builtin_cpu_supports (the project would not compile).
bool has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

bool detect(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return true;
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case Isa::avx512:
      return detect(Isa::avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    case Isa::avx512vnni:
      return detect(Isa::avx512) && __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__)
    case Isa::neon:
      return true;
#endif
    default:
      return false;
  }
}

// Bit i set: Isa(i) supported. Computed on first use, then read-only.
unsigned supported_mask() {
  static const unsigned mask = [] {
    unsigned m = 0;
    for (unsigned i = 0; i <= static_cast<unsigned>(Isa::neon); ++i)
      if (detect(static_cast<Isa>(i))) m |= 1u << i;
    return m;
  }();
  return mask;
}

std::atomic<int> g_forced{-1};

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::neon: return "neon";
  }
  return "unknown";
}

bool cpu_supports(Isa isa) { return (supported_mask() >> static_cast<unsigned>(isa)) & 1u; }

void force_isa(std::optional<Isa> ceiling) {
  g_forced.store(ceiling ? static_cast<int>(*ceiling) : -1, std::memory_order_relaxed);
}

std::optional<Isa> forced_isa() {
  const int v = g_forced.load(std::memory_order_relaxed);
  if (v < 0) return std::nullopt;
  return static_cast<Isa>(v);
}

}  // namespace lowbit
