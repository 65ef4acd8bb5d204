#include "lowbit/kernels/cpu_features.hpp"

#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "lowbit/core/error.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace lowbit {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(CpuFeature::count)> kFeatureNames = {
    "avx2",     "fma",      "f16c",     "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16",
    "avxvnni",  "amx_tile", "amx_int8", "amx_bf16", "neon",    "dotprod",  "i8mm"};

struct NamedSet {
  std::string_view name;
  CpuFeatures set;
};
constexpr NamedSet kNamedSets[] = {
    {"scalar", isa::scalar},         {"avx2", isa::avx2},       {"avx512", isa::avx512},
    {"avx512vnni", isa::avx512vnni}, {"avx512bf16", isa::avx512bf16}, {"avxvnni", isa::avxvnni},
    {"neon", isa::neon},             {"dotprod", isa::dotprod}, {"i8mm", isa::i8mm}};

constexpr bool bit(uint64_t word, int b) { return ((word >> b) & 1u) != 0; }

#if defined(__x86_64__) || defined(_M_X64)
uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// Linux (5.16+) hands out the AMX tile data state only to processes that ask for it.
bool request_amx_permission() {
#if defined(__linux__)
  constexpr int kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  unsigned long permitted = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &permitted) == 0 && bit(permitted, kXfeatureXtiledata))
    return true;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  X86CpuidInfo info;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d)) info.leaf1_ecx = c;
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    info.leaf7_ebx = b;
    info.leaf7_ecx = c;
    info.leaf7_edx = d;
    const unsigned max_subleaf = a;
    if (max_subleaf >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      info.leaf7_1_eax = a;
    }
  }
  if (bit(info.leaf1_ecx, 27)) info.xcr0 = read_xcr0();
  // Ask for the tile state only when the CPU and the OS's XCR0 both offer it.
  const bool amx_offered = bit(info.leaf7_edx, 24) && bit(info.xcr0, 17) && bit(info.xcr0, 18);
  if (amx_offered) info.amx_permitted = request_amx_permission();
  return x86_features(info);
}
#elif defined(__aarch64__)
CpuFeatures detect() {
  CpuFeatures f{CpuFeature::neon};  // Advanced SIMD is mandatory on AArch64
#if defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP), hwcap2 = getauxval(AT_HWCAP2);
  if (bit(hwcap, 20)) f = f | CpuFeatures{CpuFeature::dotprod};   // HWCAP_ASIMDDP
  if (bit(hwcap2, 13)) f = f | CpuFeatures{CpuFeature::i8mm};     // HWCAP2_I8MM
#endif
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

constexpr uint32_t kAll = ~0u;
std::atomic<uint32_t> g_scoped_mask{kAll};

// LOWBIT_ISA, read once. An unparsable value is kept so every dispatch reports it.
struct EnvLimit {
  bool valid = true;
  std::string text;
  uint32_t mask = kAll;
};
const EnvLimit& env_limit() {
  static const EnvLimit limit = [] {
    EnvLimit l;
    const char* v = std::getenv("LOWBIT_ISA");
    if (v == nullptr || *v == '\0') return l;
    l.text = v;
    const auto parsed = parse_features(v);
    if (parsed) l.mask = parsed->bits();
    else l.valid = false;
    return l;
  }();
  return limit;
}

}  // namespace

std::string_view feature_name(CpuFeature f) {
  const auto i = static_cast<size_t>(f);
  return i < kFeatureNames.size() ? kFeatureNames[i] : "unknown";
}

std::optional<CpuFeature> parse_feature(std::string_view name) {
  for (size_t i = 0; i < kFeatureNames.size(); ++i)
    if (kFeatureNames[i] == name) return static_cast<CpuFeature>(i);
  return std::nullopt;
}

std::string CpuFeatures::to_string() const {
  std::string s;
  for (size_t i = 0; i < kFeatureNames.size(); ++i)
    if (has(static_cast<CpuFeature>(i))) {
      if (!s.empty()) s += '+';
      s += kFeatureNames[i];
    }
  return s.empty() ? "none" : s;
}

std::optional<CpuFeatures> parse_features(std::string_view spec) {
  for (const NamedSet& n : kNamedSets)
    if (n.name == spec) return n.set;
  CpuFeatures set;
  while (!spec.empty()) {
    const size_t plus = spec.find('+');
    const std::string_view part = spec.substr(0, plus);
    const auto f = parse_feature(part);
    if (!f) return std::nullopt;
    set = set | CpuFeatures{*f};
    if (plus == std::string_view::npos) break;
    spec.remove_prefix(plus + 1);
    if (spec.empty()) return std::nullopt;  // "avx2+"
  }
  if (set.empty()) return std::nullopt;
  return set;
}

CpuFeatures x86_features(const X86CpuidInfo& info) {
  CpuFeatures f;
  const bool osxsave = bit(info.leaf1_ecx, 27);
  const uint64_t xcr0 = osxsave ? info.xcr0 : 0;
  // XCR0 bits 1 and 2: the OS saves SSE and AVX (YMM) state.
  const bool os_avx = (xcr0 & 0x6) == 0x6 && bit(info.leaf1_ecx, 28);
  // Bits 5, 6, 7: opmask, upper halves of ZMM0-15, ZMM16-31.
  const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;
  // Bits 17, 18: tile configuration and tile data.
  const bool os_amx = (xcr0 & 0x60000) == 0x60000 && info.amx_permitted;
  const auto add = [&f](bool yes, CpuFeature feature) {
    if (yes) f = f | CpuFeatures{feature};
  };
  add(os_avx && bit(info.leaf7_ebx, 5), CpuFeature::avx2);
  add(os_avx && bit(info.leaf1_ecx, 12), CpuFeature::fma);
  add(os_avx && bit(info.leaf1_ecx, 29), CpuFeature::f16c);
  add(os_avx && bit(info.leaf7_1_eax, 4), CpuFeature::avxvnni);
  add(os_avx512 && bit(info.leaf7_ebx, 16), CpuFeature::avx512f);
  const bool f512 = f.has(CpuFeature::avx512f);
  add(f512 && bit(info.leaf7_ebx, 30), CpuFeature::avx512bw);
  add(f512 && bit(info.leaf7_ebx, 31), CpuFeature::avx512vl);
  add(f512 && bit(info.leaf7_ecx, 11), CpuFeature::avx512vnni);
  add(f512 && bit(info.leaf7_1_eax, 5), CpuFeature::avx512bf16);
  const bool tile = os_amx && bit(info.leaf7_edx, 24);
  add(tile, CpuFeature::amx_tile);
  add(tile && bit(info.leaf7_edx, 25), CpuFeature::amx_int8);
  add(tile && bit(info.leaf7_edx, 22), CpuFeature::amx_bf16);
  return f;
}

CpuFeatures detected_cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

CpuFeatures active_cpu_features() {
  const EnvLimit& env = env_limit();
  if (!env.valid)
    throw Error("LOWBIT_ISA='" + env.text +
                "' is not a feature set: use a name such as scalar, avx2, avx512, avx512vnni, neon, "
                "dotprod, or features joined by '+' (avx2+fma+f16c)");
  return CpuFeatures::from_bits(detected_cpu_features().bits() & env.mask &
                                g_scoped_mask.load(std::memory_order_relaxed));
}

ScopedCpuFeatures::ScopedCpuFeatures(CpuFeatures allowed)
    : previous_(g_scoped_mask.load(std::memory_order_relaxed)) {
  g_scoped_mask.store(previous_ & allowed.bits(), std::memory_order_relaxed);
}

ScopedCpuFeatures::~ScopedCpuFeatures() { g_scoped_mask.store(previous_, std::memory_order_relaxed); }

}  // namespace lowbit
