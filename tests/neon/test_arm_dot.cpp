// The AArch64 dot products of the integer formats form every block's float terms
// exactly as the scalar references do and add them in the same order, so beyond the
// family's float64 tolerance (kernels/families/dot.hpp) they return the reference's
// float bit for bit. Checking that pins the integer part exactly: one wrong code
// anywhere changes the result.
#include <gtest/gtest.h>

#include <cstring>

// families/dot.hpp uses the block structs without including their header.
#include "lowbit/formats/blocks.hpp"
#include "families/dot.hpp"

namespace lowbit::kernel_families {
namespace {

TEST(ArmDot, IntegerFormatsMatchTheReferenceBitForBit) {
  int checked = 0;
  for (const DotKernel& v : dot_kernels().variants()) {
    const Format wf = v.key, af = dot_activation_format(wf);
    if (v.is_reference() || af == Format::F32 || !v.supported_by_cpu()) continue;
    const DotKernel& ref = dot_kernels().reference(wf);
    for (const InputPattern& p : standard_patterns()) {
      const int64_t n = pattern_row_elems(wf, p);
      const std::vector<std::byte> w = DequantizeFamily::encode(wf, p, n);
      InputPattern ap = p;
      ap.scale = std::min(p.scale, 1.0f);
      const std::vector<std::byte> a = DotFamily::activations(af, pattern_values(ap, 1, n, 13));
      const float want = ref.fn(w.data(), a.data(), n), got = v.fn(w.data(), a.data(), n);
      EXPECT_EQ(std::memcmp(&want, &got, 4), 0) << v.name << ", pattern " << p.name << ": reference " << want
                                                 << ", variant " << got;
    }
    ++checked;
  }
  // Under -cpu max: 12 integer formats, each with a NEON and a dotprod variant.
  if (detected_cpu_features().contains(isa::dotprod)) EXPECT_EQ(checked, 24);
}

}  // namespace
}  // namespace lowbit::kernel_families
