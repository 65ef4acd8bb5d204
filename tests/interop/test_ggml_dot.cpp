// lowbit's dot products against ggml's own vec_dot (libggml-cpu from the interop
// venv) on the same weight and activation bytes: the two must agree to float
// accumulation order, every format, every variant this CPU runs.
#include <gtest/gtest.h>

#include <cmath>

#include "families/dot.hpp"
#include "ggml_peer.hpp"
#include "lowbit/kernels/cpu_features.hpp"
#include "lowbit/kernels/dot.hpp"

namespace lowbit {
namespace {

using bench::GgmlPeer;
using kernel_families::DotFamily;

TEST(GgmlVecDot, EveryVariantAgreesWithGgmlOnTheSameBytes) {
  const GgmlPeer* ggml = GgmlPeer::get();
  ASSERT_TRUE(ggml != nullptr && ggml->has_cpu()) << "libggml-cpu not found: run the interop_setup_venv test first";
  int compared = 0;
  for (const DotKernel& v : dot_kernels().variants()) {
    if (!v.supported_by_cpu()) continue;
    const Format wf = v.key, af = dot_activation_format(wf);
    const GgmlPeer::CpuTraits* t = ggml->cpu_traits(static_cast<int>(wf));
    ASSERT_TRUE(t != nullptr && t->vec_dot != nullptr) << v.name;
    // ggml rounds F16 / BF16 activations to the weight type first; lowbit keeps f32.
    const double tolerance = wf == Format::F16 ? 2e-3 : wf == Format::BF16 ? 1e-2 : 1e-5;
    if (wf != Format::F16 && wf != Format::BF16)
      ASSERT_EQ(t->vec_dot_type, static_cast<int>(af)) << v.name << ": ggml pairs it with another activation type";
    for (Distribution dist : {Distribution::heavy_tailed, Distribution::gaussian, Distribution::outliers})
      for (int64_t n : {int64_t{256}, int64_t{4096}}) {
        kernel_families::InputPattern p;
        p.dist = dist;
        p.blocks = n / 256;
        const std::vector<std::byte> w = kernel_families::DequantizeFamily::encode(wf, p, n);
        const std::vector<float> x = kernel_families::pattern_values(p, 1, n, 17);
        std::vector<std::byte> a = DotFamily::activations(af, x);
        std::vector<std::byte> ggml_a = a;
        if (wf == Format::F16 || wf == Format::BF16) {
          const GgmlPeer::CpuTraits* at = ggml->cpu_traits(t->vec_dot_type);
          ggml_a.resize(static_cast<size_t>(n) * 2);
          at->from_float(x.data(), ggml_a.data(), n);
        }
        double magnitude = 0;
        for (int64_t i = 0; i < n; ++i)
          magnitude += DotFamily::term_size(wf, w.data(), i) *
                       std::fabs(double(kernel_families::DequantizeFamily::decode_element(af, a.data(), i)));
        float want = 0;
        t->vec_dot(static_cast<int>(n), &want, 0, w.data(), 0, ggml_a.data(), 0, 1);
        const float got = v.fn(w.data(), a.data(), n);
        EXPECT_NEAR(got, want, tolerance * magnitude) << v.name << ", n " << n << ", distribution " << int(dist);
        ++compared;
      }
  }
  EXPECT_GE(compared, 15 * 6);
  std::printf("compared %d (variant, input) pairs with ggml's vec_dot from %s\n", compared, ggml->path.c_str());
}

}  // namespace
}  // namespace lowbit
