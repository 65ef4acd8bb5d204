// What the AArch64 build detects and selects on the CPU qemu emulates. The ctest
// (tests/CMakeLists.txt, label neon) runs this binary under several `qemu-aarch64
// -cpu` models and says in LOWBIT_EXPECT_FEATURES what each one offers, so the
// HWCAP/HWCAP2 reading in src/cpu_features.cpp is checked against CPUs with and
// without dotprod and i8mm, and dispatch against each of them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "lowbit/kernels/activations.hpp"
#include "lowbit/kernels/cpu_features.hpp"
#include "lowbit/kernels/dot.hpp"
#include "lowbit/kernels/gsq_dequantize.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/gsq_gemv_q8.hpp"
#include "lowbit/kernels/packed_matrix.hpp"
#include "lowbit/kernels/registry.hpp"

namespace lowbit {
namespace {

CpuFeatures expected_features() {
  const char* spec = std::getenv("LOWBIT_EXPECT_FEATURES");
  if (spec == nullptr) {
    ADD_FAILURE() << "LOWBIT_EXPECT_FEATURES is not set: the ctest names the emulated CPU's features";
    return {};
  }
  const auto set = parse_features(spec);
  if (!set) ADD_FAILURE() << "LOWBIT_EXPECT_FEATURES='" << spec << "' is not a feature set";
  return set.value_or(CpuFeatures{});
}

TEST(ArmDispatch, DetectsTheEmulatedCpu) {
  EXPECT_EQ(detected_cpu_features().to_string(), expected_features().to_string());
}

// On the emulated CPU each variant runs exactly when its features were detected, so
// under `-cpu max` (every feature) no generated variant test is skipped.
template <class Table>
void expect_runnable_as_detected(const Table& table, CpuFeatures cpu) {
  for (const auto& v : table.variants())
    EXPECT_EQ(v.supported_by_cpu(), cpu.contains(v.needs)) << v.name << " needs " << v.needs.to_string();
}

TEST(ArmDispatch, VariantsRunWhereTheirFeaturesAre) {
  const CpuFeatures cpu = expected_features();
  expect_runnable_as_detected(dequantize_kernels(), cpu);
  expect_runnable_as_detected(quantize_kernels(), cpu);
  expect_runnable_as_detected(activation_kernels(), cpu);
  expect_runnable_as_detected(dot_kernels(), cpu);
  expect_runnable_as_detected(gsq_dequantize_kernels(), cpu);
  expect_runnable_as_detected(gsq_gemv_kernels(), cpu);
  expect_runnable_as_detected(gsq_gemv_q8_kernels(), cpu);
  expect_runnable_as_detected(packed_gemm_kernels(), cpu);
}

// Dispatch picks a NEON-family variant for every key that has one the CPU can run,
// never one that needs a feature the CPU lacks, and the scalar reference under
// LOWBIT_ISA-style narrowing to `scalar`.
template <class Table>
int expect_simd_selected(const Table& table, CpuFeatures cpu) {
  int simd_keys = 0;
  for (const auto& v : table.variants()) {
    if (!v.is_reference()) continue;
    bool has_runnable_simd = false;
    for (const auto& o : table.variants())
      if (o.key == v.key && !o.is_reference() && cpu.contains(o.needs)) has_runnable_simd = true;
    const auto& chosen = table.select(v.key);
    EXPECT_TRUE(cpu.contains(chosen.needs)) << chosen.name << " needs " << chosen.needs.to_string();
    EXPECT_EQ(chosen.is_reference(), !has_runnable_simd) << chosen.name;
    if (!chosen.is_reference()) {
      ++simd_keys;
      EXPECT_TRUE(chosen.needs.contains(isa::neon)) << chosen.name;
    }
    ScopedCpuFeatures scalar_only(isa::scalar);
    EXPECT_TRUE(table.select(v.key).is_reference()) << v.name;
  }
  return simd_keys;
}

TEST(ArmDispatch, NeonVariantsAreSelected) {
  const CpuFeatures cpu = expected_features();
  ASSERT_TRUE(cpu.contains(isa::neon));  // Advanced SIMD is part of every AArch64 CPU
  // Every format but F32 (a copy) has a NEON decoder; every activation format a NEON quantizer.
  EXPECT_EQ(expect_simd_selected(dequantize_kernels(), cpu), static_cast<int>(all_formats().size()) - 1);
  EXPECT_EQ(expect_simd_selected(activation_kernels(), cpu), 3);
  // Every weight format has a NEON dot product (15 keys).
  EXPECT_EQ(expect_simd_selected(dot_kernels(), cpu), 15);
  // The GSQ packed layouts (one key each family): NEON decoder, float32 and Q8_0 GEMV.
  EXPECT_EQ(expect_simd_selected(gsq_dequantize_kernels(), cpu), 1);
  EXPECT_EQ(expect_simd_selected(gsq_gemv_kernels(), cpu), 1);
  EXPECT_EQ(expect_simd_selected(gsq_gemv_q8_kernels(), cpu), 1);
  // The packed GEMM (one layout).
  EXPECT_EQ(expect_simd_selected(packed_gemm_kernels(), cpu), 1);
}

// With SDOT, the integer formats' dot products use it; the float formats (nothing
// for SDOT to do) keep their NEON variants.
TEST(ArmDispatch, DotprodVariantsAreSelectedWhereSdotExists) {
  const CpuFeatures cpu = expected_features();
  for (const FormatTraits& t : all_formats()) {
    if (t.activation_only) continue;
    const DotKernel& chosen = dot_kernels().select(t.format);
    const bool float_format = t.format == Format::F32 || t.format == Format::F16 || t.format == Format::BF16;
    EXPECT_EQ(chosen.needs.contains(isa::dotprod), cpu.contains(isa::dotprod) && !float_format) << chosen.name;
  }
  // The GSQ x Q8_0 GEMV likewise (its integer block sums are SDOTs).
  const GsqGemvQ8Kernel& gemv = gsq_gemv_q8_kernels().select(GsqPackedLayout{});
  EXPECT_EQ(gemv.needs.contains(isa::dotprod), cpu.contains(isa::dotprod)) << gemv.name;
}

// The packed GEMM takes the widest integer product the CPU has: SMMLA (two panel rows
// by two activation rows), else SDOT, else plain NEON.
TEST(ArmDispatch, PackedGemmUsesTheWidestIntegerProduct) {
  const CpuFeatures cpu = expected_features();
  const PackedGemmKernel& chosen = packed_gemm_kernels().select(PackedGemmKey{});
  const std::string want = cpu.contains(isa::i8mm) ? "packed_gemm__i8mm"
                           : cpu.contains(isa::dotprod) ? "packed_gemm__dotprod"
                                                        : "packed_gemm__neon";
  EXPECT_EQ(chosen.name, want);
}

}  // namespace
}  // namespace lowbit
