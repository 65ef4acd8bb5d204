// The IQ4 code-book look-ups of the lane searches, value by value (iq4_lookup_probe.hpp):
//  - nearest_value must be the scalar reference's kValues[nearest_index(v)] (its cell of
//    the rounded 2v + 256, so a value a few ulps below a midpoint may go up, as there);
//  - ggml_value must be ggml's best_index_int8 choice (ggml_search::iq4_index), and, as
//    iq4_search_lanes.hpp claims, the exactly nearest code value with ties going up,
//    which a float64 comparison here decides independently.
// Inputs: every midpoint between neighbouring code values and the 64 floats either
// side of it, every half-unit cell boundary and 4 floats either side, the clamps, huge,
// tiny and signed-zero values, and random values over the book and beyond.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu/reference/ggml_search.hpp"
#include "cpu/reference/iq4_search.hpp"
#include "kernels/iq4_lookup_probe.hpp"
#include "lowbit/formats/blocks.hpp"
#include "lowbit/kernels/cpu_features.hpp"

namespace lowbit {
namespace {

float book(int i) { return static_cast<float>(kIq4nlValues[i]); }

std::vector<float> lookup_inputs() {
  std::vector<float> v;
  auto around = [&](float x, int ulps) {
    float up = x, down = x;
    v.push_back(x);
    for (int i = 0; i < ulps; ++i) {
      up = std::nextafter(up, std::numeric_limits<float>::infinity());
      down = std::nextafter(down, -std::numeric_limits<float>::infinity());
      v.push_back(up);
      v.push_back(down);
    }
  };
  for (int k = 0; k < 15; ++k) around(0.5f * (book(k) + book(k + 1)), 64);
  for (int c = -262; c <= 232; ++c) around(0.5f * static_cast<float>(c), 4);
  const float specials[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1e-38f, -1e-38f, 1e3f, -1e3f, 1e30f, -1e30f,
                            std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest()};
  v.insert(v.end(), std::begin(specials), std::end(specials));
  std::mt19937 rng(20261202);
  std::uniform_real_distribution<float> over_book(-135.0f, 120.0f), exponent(-30.0f, 12.0f);
  for (int i = 0; i < 100000; ++i) v.push_back(over_book(rng));
  for (int i = 0; i < 20000; ++i) v.push_back((i & 1 ? -1.0f : 1.0f) * std::exp2(exponent(rng)));
  return v;
}

// The code value nearest to v in float64, ties to the upper one (exact for floats in
// the book's range; beyond it the nearest is the end, where float64 distances to two
// code values of a huge v could round equal).
float exactly_nearest(float v) {
  if (v <= book(0)) return book(0);
  if (v >= book(15)) return book(15);
  int best = 0;
  for (int i = 1; i < 16; ++i) {
    const double d = std::fabs(static_cast<double>(v) - book(i));
    const double e = std::fabs(static_cast<double>(v) - book(best));
    if (d <= e) best = i;
  }
  return book(best);
}

void check_probe(test::Iq4LookupProbe probe, const char* name) {
  const std::vector<float> v = lookup_inputs();
  std::vector<float> nearest(v.size()), ggml(v.size());
  probe(v.data(), v.size(), nearest.data(), ggml.data());
  int bad_nearest = 0, bad_ggml = 0, bad_exact = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const float ref = kernels::kValues[kernels::nearest_index(v[i])];
    const float ggml_ref = book(kernels::ggml_search::iq4_index(v[i]));
    if (nearest[i] != ref && bad_nearest++ < 5)
      ADD_FAILURE() << name << " nearest_value(" << std::hexfloat << v[i] << ") = " << std::defaultfloat
                    << nearest[i] << ", the reference's nearest_index gives " << ref;
    if (ggml[i] != ggml_ref && bad_ggml++ < 5)
      ADD_FAILURE() << name << " ggml_value(" << std::hexfloat << v[i] << ") = " << std::defaultfloat << ggml[i]
                    << ", ggml's best_index_int8 gives " << ggml_ref;
    if (ggml[i] != exactly_nearest(v[i]) && bad_exact++ < 5)
      ADD_FAILURE() << name << " ggml_value(" << std::hexfloat << v[i] << ") = " << std::defaultfloat << ggml[i]
                    << ", the exactly nearest code value (ties up) is " << exactly_nearest(v[i]);
  }
  EXPECT_EQ(bad_nearest + bad_ggml + bad_exact, 0) << name << " over " << v.size() << " values";
}

// The oracle itself: at each midpoint ggml takes the upper value, just below it the lower.
TEST(Iq4Lookup, OraclesAgreeOnTheTieRule) {
  for (int k = 0; k < 15; ++k) {
    const float m = 0.5f * (book(k) + book(k + 1));
    EXPECT_EQ(kernels::ggml_search::iq4_index(m), k + 1) << m;
    EXPECT_EQ(kernels::ggml_search::iq4_index(std::nextafter(m, -1e9f)), k) << m;
    EXPECT_EQ(exactly_nearest(m), book(k + 1));
  }
}

#if defined(__aarch64__)
TEST(Iq4Lookup, NeonLanesMatchReferenceAndGgml) { check_probe(test::iq4_lookup_neon, "neon"); }
#endif

#if defined(__x86_64__)
TEST(Iq4Lookup, Avx2LanesMatchReferenceAndGgml) {
  if (!detected_cpu_features().contains(isa::avx2))
    GTEST_SKIP() << "the CPU does not run AVX2 + FMA + F16C";
  check_probe(test::iq4_lookup_avx2, "avx2");
}
TEST(Iq4Lookup, Avx512LanesMatchReferenceAndGgml) {
  if (!detected_cpu_features().contains(isa::avx512))
    GTEST_SKIP() << "the CPU does not run AVX-512 F/BW/VL";
  check_probe(test::iq4_lookup_avx512, "avx512");
}
#endif

}  // namespace
}  // namespace lowbit
