// One test per entry of every kernel family's dispatch table, generated from the
// tables themselves (kernels/families/*.hpp say how each family is judged). A variant
// this CPU cannot run is skipped with the features it lacks.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <random>
#include <set>
#include <string>

#include "common/kquant_scales.hpp"
#include "families/activations.hpp"
#include "families/dequantize.hpp"
#include "families/dot.hpp"
#include "families/dot_rows.hpp"
#include "families/packed_gemm.hpp"
#include "families/quantize.hpp"
#include "lowbit/kernels/gsq_dequantize.hpp"
#include "lowbit/kernels/gsq_gemv.hpp"
#include "lowbit/kernels/gsq_gemv_q8.hpp"
#include "families/gsq_dequantize.hpp"
#include "families/gsq_gemv.hpp"
#include "families/gsq_gemv_q8.hpp"
#include "families/gsq_search.hpp"

namespace lowbit::kernel_families {
namespace {

template <class Family>
std::vector<const typename Family::Variant*> variants() {
  std::vector<const typename Family::Variant*> v;
  for (const auto& k : Family::table().variants()) v.push_back(&k);
  return v;
}

template <class Family>
std::string variant_name(const ::testing::TestParamInfo<const typename Family::Variant*>& info) {
  std::string name = info.param->name;  // quantizers carry their effort after a ':'
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

template <class Family>
void run_variant(const typename Family::Variant& v) {
  if (!v.supported_by_cpu())
    GTEST_SKIP() << v.name << " needs " << v.needs.to_string() << "; this CPU offers "
                 << detected_cpu_features().to_string();
  EXPECT_EQ(Family::check(v), "") << v.name << " (" << Family::name << ")";
}

class Dequantize : public ::testing::TestWithParam<const DequantizeFamily::Variant*> {};
TEST_P(Dequantize, MatchesReference) { run_variant<DequantizeFamily>(*GetParam()); }
INSTANTIATE_TEST_SUITE_P(Kernels, Dequantize, ::testing::ValuesIn(variants<DequantizeFamily>()),
                         variant_name<DequantizeFamily>);

class Quantize : public ::testing::TestWithParam<const QuantizeFamily::Variant*> {};
TEST_P(Quantize, MatchesReference) { run_variant<QuantizeFamily>(*GetParam()); }
INSTANTIATE_TEST_SUITE_P(Kernels, Quantize, ::testing::ValuesIn(variants<QuantizeFamily>()),
                         variant_name<QuantizeFamily>);

class Activations : public ::testing::TestWithParam<const ActivationsFamily::Variant*> {};
TEST_P(Activations, MatchesReference) { run_variant<ActivationsFamily>(*GetParam()); }
INSTANTIATE_TEST_SUITE_P(Kernels, Activations, ::testing::ValuesIn(variants<ActivationsFamily>()),
                         variant_name<ActivationsFamily>);

class GsqGemv : public ::testing::TestWithParam<const GsqGemvFamily::Variant*> {};
TEST_P(GsqGemv, MatchesReference) { run_variant<GsqGemvFamily>(*GetParam()); }
INSTANTIATE_TEST_SUITE_P(Kernels, GsqGemv, ::testing::ValuesIn(variants<GsqGemvFamily>()),
                         variant_name<GsqGemvFamily>);

class Dot : public ::testing::TestWithParam<const DotFamily::Variant*> {};
TEST_P(Dot, MatchesFloat64Reference) { run_variant<DotFamily>(*GetParam()); }
INSTANTIATE_TEST_SUITE_P(Kernels, Dot, ::testing::ValuesIn(variants<DotFamily>()), variant_name<DotFamily>);

class DotRows : public ::testing::TestWithParam<const DotRowsFamily::Variant*> {};
TEST_P(DotRows, MatchesSameIsaDotRowByRow) { run_variant<DotRowsFamily>(*GetParam()); }
INSTANTIATE_TEST_SUITE_P(Kernels, DotRows, ::testing::ValuesIn(variants<DotRowsFamily>()),
                         variant_name<DotRowsFamily>);

class PackedGemm : public ::testing::TestWithParam<const PackedGemmFamily::Variant*> {};
TEST_P(PackedGemm, MatchesReference) { run_variant<PackedGemmFamily>(*GetParam()); }
INSTANTIATE_TEST_SUITE_P(Kernels, PackedGemm, ::testing::ValuesIn(variants<PackedGemmFamily>()),
                         variant_name<PackedGemmFamily>);
class GsqDequantize : public ::testing::TestWithParam<const GsqDequantizeFamily::Variant*> {};
TEST_P(GsqDequantize, MatchesReference) { run_variant<GsqDequantizeFamily>(*GetParam()); }
INSTANTIATE_TEST_SUITE_P(Kernels, GsqDequantize, ::testing::ValuesIn(variants<GsqDequantizeFamily>()),
                         variant_name<GsqDequantizeFamily>);

class GsqGemvQ8 : public ::testing::TestWithParam<const GsqGemvQ8Family::Variant*> {};
TEST_P(GsqGemvQ8, MatchesReference) { run_variant<GsqGemvQ8Family>(*GetParam()); }
INSTANTIATE_TEST_SUITE_P(Kernels, GsqGemvQ8, ::testing::ValuesIn(variants<GsqGemvQ8Family>()),
                         variant_name<GsqGemvQ8Family>);

class GsqSearch : public ::testing::TestWithParam<const GsqSearchFamily::Variant*> {};
TEST_P(GsqSearch, MatchesEncodeDecodeSums) { run_variant<GsqSearchFamily>(*GetParam()); }
INSTANTIATE_TEST_SUITE_P(Kernels, GsqSearch, ::testing::ValuesIn(variants<GsqSearchFamily>()),
                         variant_name<GsqSearchFamily>);

// kernels/cpu/x86/dot32.hpp promises that its AVX2 and AVX-512 VNNI instances differ
// only in how they reach the same exact int32 block sums (AVX2 takes Q8_0 and IQ4_NL's
// codes signed, VNNI unsigned with an offset), so their dots agree bit for bit (the
// same model output on either CPU). Every standard pattern, every shared format.
TEST(KernelTables, X86Dot32VariantsAgreeBitForBit) {
  const DotKernel* any = dot_kernels().find("dot_q4_0_q8_0__avx512vnni");
  if (any == nullptr || !any->supported_by_cpu() || !dot_kernels().find("dot_q4_0_q8_0__avx2"))
    GTEST_SKIP() << "needs the AVX2 and AVX-512 VNNI dot variants and a CPU that runs both";
  for (const char* f : {"q4_0_q8_0", "q4_1_q8_1", "q5_0_q8_0", "q5_1_q8_1", "q8_0_q8_0", "iq4_nl_q8_0"}) {
    const DotKernel* avx2 = dot_kernels().find(std::string("dot_") + f + "__avx2");
    const DotKernel* vnni = dot_kernels().find(std::string("dot_") + f + "__avx512vnni");
    ASSERT_TRUE(avx2 != nullptr && vnni != nullptr) << f;
    for (const InputPattern& p : standard_patterns()) {
      const int64_t n = pattern_row_elems(avx2->key, p);
      const std::vector<std::byte> w = DequantizeFamily::encode(avx2->key, p, n);
      const std::vector<std::byte> a = DotFamily::pattern_activations(avx2->key, p, n);
      const float x = avx2->fn(w.data(), a.data(), n), y = vnni->fn(w.data(), a.data(), n);
      EXPECT_EQ(std::memcmp(&x, &y, sizeof x), 0) << f << ", pattern " << p.name << ": " << x << " against " << y;
    }
  }
}

// Half-precision decoders see every one of the 65536 codes (subnormals, Inf, quiet
// and signalling NaNs), bit for bit as their scalar reference decodes them.
TEST(KernelTables, HalfPrecisionDecodersMatchOnEveryCode) {
  std::vector<uint16_t> codes(65536);
  for (uint32_t i = 0; i < 65536; ++i) codes[i] = static_cast<uint16_t>(i);
  for (Format f : {Format::F16, Format::BF16}) {
    std::vector<float> want(codes.size()), got(codes.size());
    dequantize_kernels().reference(f).fn(codes.data(), want.data(), 65536);
    for (const auto& v : dequantize_kernels().variants()) {
      if (!(v.key == f) || v.is_reference() || !v.supported_by_cpu()) continue;
      v.fn(codes.data(), got.data(), 65536);
      for (size_t i = 0; i < codes.size(); ++i)
        ASSERT_EQ(std::memcmp(&want[i], &got[i], 4), 0) << v.name << " code 0x" << std::hex << i;
    }
  }
}

// The word-at-a-time unpacking of Q4_K / Q5_K's 12 scale bytes (used by the SIMD dot
// products) agrees with the byte-by-byte reading on random packings.
TEST(KernelTables, ScaleUnpackingAgreesWithTheByteReader) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 20000; ++trial) {
    uint8_t packed[12], sc[8], m[8];
    for (uint8_t& b : packed) b = static_cast<uint8_t>(rng());
    kernels::unpack_scales_mins_k4(packed, sc, m);
    for (int j = 0; j < 8; ++j) {
      uint8_t want_sc, want_m;
      kernels::get_scale_min_k4(j, packed, want_sc, want_m);
      ASSERT_EQ(sc[j], want_sc) << "trial " << trial << ", sub-block " << j;
      ASSERT_EQ(m[j], want_m) << "trial " << trial << ", sub-block " << j;
    }
  }
}

// The same for Q3_K's sixteen 6-bit signed scales.
TEST(KernelTables, Q3KScaleUnpackingAgreesWithTheByteReader) {
  std::mt19937 rng(6);
  for (int trial = 0; trial < 20000; ++trial) {
    uint8_t packed[12];
    int8_t sc[16];
    for (uint8_t& b : packed) b = static_cast<uint8_t>(rng());
    kernels::unpack_scales_q3_K(packed, sc);
    for (int j = 0; j < 16; ++j) {
      const int lo = (packed[j % 8] >> (j < 8 ? 0 : 4)) & 0xF;
      const int hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
      ASSERT_EQ(sc[j], (lo | hi << 4) - 32) << "trial " << trial << ", scale " << j;
    }
  }
}

// The tables' own invariants: unique names, one scalar reference per key, and no
// two variants of a key at the same priority (the choice would depend on list order).
template <class Table>
void expect_well_formed(const Table& table) {
  std::set<std::string> names;
  for (const auto& v : table.variants()) {
    EXPECT_TRUE(names.insert(v.name).second) << "duplicate variant name " << v.name;
    int references = 0;
    for (const auto& o : table.variants()) {
      if (!(o.key == v.key)) continue;
      references += o.is_reference();
      if (&o != &v) EXPECT_NE(o.priority, v.priority) << v.name << " and " << o.name << " share a priority";
    }
    EXPECT_EQ(references, 1) << v.name << "'s key has " << references << " scalar references";
    EXPECT_NO_THROW(table.reference(v.key));
    EXPECT_EQ(table.find(v.name), &v);
  }
}

TEST(KernelTables, AreWellFormed) {
  expect_well_formed(quantize_kernels());
  expect_well_formed(dequantize_kernels());
  expect_well_formed(gsq_gemv_kernels());
  expect_well_formed(gsq_dequantize_kernels());
  expect_well_formed(gsq_gemv_q8_kernels());
  expect_well_formed(gsq_search_kernels());
  expect_well_formed(activation_kernels());
  expect_well_formed(dot_kernels());
  expect_well_formed(packed_gemm_kernels());
  for (const FormatTraits& t : all_formats()) {
    for (QuantizeEffort e : {QuantizeEffort::fast, QuantizeEffort::standard, QuantizeEffort::best})
      EXPECT_NO_THROW(quantize_kernels().reference(QuantizeKey{t.format, e})) << t.name << " " << to_string(e);
    EXPECT_NO_THROW(dequantize_kernels().reference(t.format)) << t.name;
    if (!t.activation_only) EXPECT_NO_THROW(dot_kernels().reference(t.format)) << t.name;
  }
}

// Dispatch picks the highest-priority variant the active features allow, and a
// scoped override narrows the choice until it ends, also when an exception unwinds it.
TEST(KernelTables, SelectionFollowsPriorityAndScopedFeatures) {
  for (const FormatTraits& t : all_formats()) {
    const DequantizeKernel& chosen = select_dequantize_kernel(t.format);
    EXPECT_TRUE(active_cpu_features().contains(chosen.needs)) << chosen.name;
    for (const auto& v : dequantize_kernels().variants())
      if (v.key == t.format && v.runnable()) EXPECT_LE(v.priority, chosen.priority) << v.name;
    {
      ScopedCpuFeatures scalar_only(isa::scalar);
      EXPECT_TRUE(select_dequantize_kernel(t.format).is_reference()) << t.name;
    }
    EXPECT_EQ(&select_dequantize_kernel(t.format), &chosen) << t.name;
  }
  const DequantizeKernel& before = select_dequantize_kernel(Format::Q4_K);
  try {
    ScopedCpuFeatures scalar_only(isa::scalar);
    throw std::runtime_error("unwind");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(&select_dequantize_kernel(Format::Q4_K), &before);
}

}  // namespace
}  // namespace lowbit::kernel_families
