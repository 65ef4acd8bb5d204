// The feature model: set algebra, names, and the x86 decision logic on CPUID / XCR0
// values written by hand (each case is a machine or a VM configuration).
#include <gtest/gtest.h>

#include "lowbit/core/error.hpp"
#include "lowbit/kernels/cpu_features.hpp"

namespace lowbit {
namespace {

constexpr uint32_t bit(int b) { return 1u << b; }

// A Zen 4 / Sapphire Rapids-like CPUID: AVX2, FMA, F16C, AVX-512 F/BW/VL/VNNI/BF16,
// AVX-VNNI, and AMX tile/int8/bf16 when `amx` is set.
X86CpuidInfo modern_cpu(bool amx) {
  X86CpuidInfo c;
  c.leaf1_ecx = bit(12) | bit(27) | bit(28) | bit(29);
  c.leaf7_ebx = bit(5) | bit(16) | bit(30) | bit(31);
  c.leaf7_ecx = bit(11);
  c.leaf7_edx = amx ? (bit(22) | bit(24) | bit(25)) : 0;
  c.leaf7_1_eax = bit(4) | bit(5);
  c.xcr0 = 0x7 | 0xE0 | (amx ? 0x60000 : 0);
  c.amx_permitted = amx;
  return c;
}

TEST(CpuFeatures, SetsNamesAndParsing) {
  EXPECT_TRUE(isa::avx512vnni.contains(isa::avx2));
  EXPECT_FALSE(isa::avx2.contains(isa::avx512));
  EXPECT_TRUE(isa::i8mm.contains(isa::neon));
  EXPECT_EQ(isa::avx2.to_string(), "avx2+fma+f16c");
  EXPECT_EQ(CpuFeatures{}.to_string(), "none");
  EXPECT_EQ(parse_features("avx512vnni"), isa::avx512vnni);
  EXPECT_EQ(parse_features("avx2+fma+f16c"), isa::avx2);
  EXPECT_EQ(parse_features("scalar"), isa::scalar);
  EXPECT_FALSE(parse_features("avx3").has_value());
  EXPECT_FALSE(parse_features("avx2+").has_value());
  EXPECT_FALSE(parse_features("").has_value());
  for (int i = 0; i < static_cast<int>(CpuFeature::count); ++i)
    EXPECT_EQ(parse_feature(feature_name(static_cast<CpuFeature>(i))), static_cast<CpuFeature>(i));
}

TEST(CpuFeatures, EverythingOnAModernCpuWithFullOsSupport) {
  const CpuFeatures f = x86_features(modern_cpu(true));
  EXPECT_TRUE(f.contains(isa::avx512vnni));
  EXPECT_TRUE(f.contains(isa::avx512bf16));
  EXPECT_TRUE(f.contains(isa::avxvnni));
  EXPECT_TRUE(f.has(CpuFeature::amx_tile) && f.has(CpuFeature::amx_int8) && f.has(CpuFeature::amx_bf16));
}

TEST(CpuFeatures, NothingWithoutOsxsave) {
  X86CpuidInfo c = modern_cpu(true);
  c.leaf1_ecx &= ~bit(27);  // the OS does not use XSAVE: XCR0 must not be trusted
  EXPECT_TRUE(x86_features(c).empty());
}

TEST(CpuFeatures, AvxStateNotEnabledByTheOs) {
  X86CpuidInfo c = modern_cpu(false);
  c.xcr0 = 0x3;  // x87 + SSE only
  EXPECT_TRUE(x86_features(c).empty());
}

TEST(CpuFeatures, Avx512CpuidBitsWithoutZmmStateGiveAvx2Only) {
  X86CpuidInfo c = modern_cpu(false);
  c.xcr0 = 0x7;  // the hypervisor hides the opmask and ZMM state
  const CpuFeatures f = x86_features(c);
  EXPECT_TRUE(f.contains(isa::avx2));
  EXPECT_TRUE(f.has(CpuFeature::avxvnni));
  EXPECT_FALSE(f.has(CpuFeature::avx512f));
  EXPECT_FALSE(f.has(CpuFeature::avx512vnni));
  EXPECT_FALSE(f.has(CpuFeature::avx512bf16));
  c.xcr0 = 0x7 | 0x20;  // opmask alone is not enough
  EXPECT_FALSE(x86_features(c).has(CpuFeature::avx512f));
}

TEST(CpuFeatures, AmxNeedsXcr0AndThePermission) {
  X86CpuidInfo c = modern_cpu(true);
  c.amx_permitted = false;  // Linux refused ARCH_REQ_XCOMP_PERM (the VM case of the AMX crash)
  CpuFeatures f = x86_features(c);
  EXPECT_FALSE(f.has(CpuFeature::amx_tile));
  EXPECT_FALSE(f.has(CpuFeature::amx_int8));
  EXPECT_TRUE(f.contains(isa::avx512vnni));
  c = modern_cpu(true);
  c.xcr0 &= ~uint64_t{0x40000};  // tile data state not enabled
  EXPECT_FALSE(x86_features(c).has(CpuFeature::amx_tile));
}

TEST(CpuFeatures, SubFeaturesNeedTheirBase) {
  X86CpuidInfo c = modern_cpu(false);
  c.leaf7_ebx &= ~bit(16);  // no AVX-512F: BW/VL/VNNI/BF16 bits mean nothing
  const CpuFeatures f = x86_features(c);
  EXPECT_FALSE(f.has(CpuFeature::avx512bw));
  EXPECT_FALSE(f.has(CpuFeature::avx512vnni));
  EXPECT_FALSE(f.has(CpuFeature::avx512bf16));
  c = modern_cpu(false);
  c.leaf1_ecx &= ~bit(28);  // AVX bit clear: no AVX-family feature at all
  EXPECT_TRUE(x86_features(c).empty());
}

TEST(CpuFeatures, ScopedOverrideNarrowsAndRestores) {
  const CpuFeatures before = active_cpu_features();
  EXPECT_TRUE(detected_cpu_features().contains(before));
  {
    ScopedCpuFeatures a(isa::avx2);
    EXPECT_TRUE(isa::avx2.contains(active_cpu_features()));
    {
      ScopedCpuFeatures b(isa::scalar);
      EXPECT_TRUE(active_cpu_features().empty());
    }
    // Nested scopes intersect; widening again is not possible from inside.
    ScopedCpuFeatures c(isa::avx512);
    EXPECT_FALSE(active_cpu_features().has(CpuFeature::avx512f));
  }
  EXPECT_EQ(active_cpu_features(), before);
}

}  // namespace
}  // namespace lowbit
