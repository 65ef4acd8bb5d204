#pragma once
// CPU features as a set, detected once. Every kernel variant names the feature set it
// needs; dispatch runs the highest-priority variant whose needs are a subset of the
// active features. Detection asks the OS too, not only CPUID: a feature whose
// register state the OS does not enable (XCR0 for AVX / AVX-512, Linux's
// per-process permission for AMX tiles) is reported absent.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace lowbit {

enum class CpuFeature : uint8_t {
  // x86
  avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16, avxvnni,
  amx_tile, amx_int8, amx_bf16,
  // Arm
  neon, dotprod, i8mm,
  count  // not a feature: the number of them
};

std::string_view feature_name(CpuFeature f);
std::optional<CpuFeature> parse_feature(std::string_view name);

class CpuFeatures {
 public:
  constexpr CpuFeatures() = default;
  constexpr CpuFeatures(std::initializer_list<CpuFeature> fs) {
    for (CpuFeature f : fs) bits_ |= bit(f);
  }
  static constexpr CpuFeatures from_bits(uint32_t bits) {
    CpuFeatures s;
    s.bits_ = bits;
    return s;
  }
  constexpr uint32_t bits() const { return bits_; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr bool has(CpuFeature f) const { return (bits_ & bit(f)) != 0; }
  constexpr bool contains(CpuFeatures other) const { return (bits_ & other.bits_) == other.bits_; }
  constexpr CpuFeatures operator|(CpuFeatures o) const { return from_bits(bits_ | o.bits_); }
  constexpr CpuFeatures operator&(CpuFeatures o) const { return from_bits(bits_ & o.bits_); }
  constexpr bool operator==(const CpuFeatures&) const = default;
  // "avx2+fma+f16c"; "none" for the empty set.
  std::string to_string() const;

 private:
  static constexpr uint32_t bit(CpuFeature f) { return 1u << static_cast<unsigned>(f); }
  uint32_t bits_ = 0;
};

// The named feature sets the kernel lists use (kernels/lists/*.inc). The compile
// flags of each ISA's source folder (CMakeLists.txt, lowbit_add_isa_sources) enable
// exactly these features; kernels/cpu/x86/<isa>/target.hpp checks that at compile time.
namespace isa {
inline constexpr CpuFeatures scalar{};
inline constexpr CpuFeatures avx2{CpuFeature::avx2, CpuFeature::fma, CpuFeature::f16c};
inline constexpr CpuFeatures avx512 =
    avx2 | CpuFeatures{CpuFeature::avx512f, CpuFeature::avx512bw, CpuFeature::avx512vl};
inline constexpr CpuFeatures avx512vnni = avx512 | CpuFeatures{CpuFeature::avx512vnni};
inline constexpr CpuFeatures avx512bf16 = avx512 | CpuFeatures{CpuFeature::avx512bf16};
inline constexpr CpuFeatures avxvnni = avx2 | CpuFeatures{CpuFeature::avxvnni};
inline constexpr CpuFeatures neon{CpuFeature::neon};
inline constexpr CpuFeatures dotprod = neon | CpuFeatures{CpuFeature::dotprod};
inline constexpr CpuFeatures i8mm = dotprod | CpuFeatures{CpuFeature::i8mm};
}  // namespace isa

// A named set ("avx512vnni") or features joined by '+' ("avx2+fma+f16c").
std::optional<CpuFeatures> parse_features(std::string_view spec);

// What this CPU and its OS support, detected on first use and cached.
CpuFeatures detected_cpu_features();

// What dispatch may use now: the detected features, limited by the environment
// variable LOWBIT_ISA when set (a set as parse_features reads it, e.g.
// LOWBIT_ISA=avx2 or LOWBIT_ISA=scalar, to pin variants when reporting a bug) and by
// the innermost live ScopedCpuFeatures. Throws Error when LOWBIT_ISA cannot be parsed.
CpuFeatures active_cpu_features();

// Limits dispatch to `allowed` (intersected with what is already active) until it is
// destroyed, also when an exception unwinds it. Process-wide, like a Highway target
// override: meant for tests and benchmarks that run each variant in turn, not for
// concurrent use from several threads.
class ScopedCpuFeatures {
 public:
  explicit ScopedCpuFeatures(CpuFeatures allowed);
  ~ScopedCpuFeatures();
  ScopedCpuFeatures(const ScopedCpuFeatures&) = delete;
  ScopedCpuFeatures& operator=(const ScopedCpuFeatures&) = delete;

 private:
  uint32_t previous_;
};

// The x86 decision logic, apart from the instructions that feed it so that tests can
// check it on any machine. Bits as CPUID and XGETBV report them.
struct X86CpuidInfo {
  uint32_t leaf1_ecx = 0;    // FMA 12, OSXSAVE 27, AVX 28, F16C 29
  uint32_t leaf7_ebx = 0;    // AVX2 5, AVX512F 16, AVX512BW 30, AVX512VL 31
  uint32_t leaf7_ecx = 0;    // AVX512_VNNI 11
  uint32_t leaf7_edx = 0;    // AMX_BF16 22, AMX_TILE 24, AMX_INT8 25
  uint32_t leaf7_1_eax = 0;  // AVX_VNNI 4, AVX512_BF16 5
  uint64_t xcr0 = 0;         // read with XGETBV only when OSXSAVE is set
  bool amx_permitted = false;  // Linux granted this process the AMX tile data state
};
CpuFeatures x86_features(const X86CpuidInfo& info);

}  // namespace lowbit
