// Scalar reference of the GSQ search family: one candidate at a time, each element
// coded as encode_value / decode_value (gsq/group_fit.hpp) code it, the error summed
// in float64 in four interleaved lanes combined in a fixed order, which is what lets
// the SIMD variants (one candidate per lane) reproduce every sum bit for bit.
#include <algorithm>

#include "lists/declarations.hpp"
#include "lowbit/gsq/group_fit.hpp"

namespace lowbit::kernels {
namespace {

template <bool FloatMin, bool Weighted>
double candidate_error(float s, float o, float maxq, const float* x, const float* w, int64_t n) {
  using detail::round_even;
  constexpr int64_t kChunk = 256;
  float dec[kChunk];
  double lanes[4] = {0, 0, 0, 0};
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t len = std::min(kChunk, n - i0);
    // The float part in a loop the compiler vectorises (no calls, no branches)...
    for (int64_t i = 0; i < len; ++i) {
      const float v = x[i0 + i];
      if (FloatMin) {
        const float q = std::min(std::max(round_even((v - o) / s), 0.0f), maxq);
        dec[i] = s * q + o;
      } else {
        const float q = std::min(std::max(round_even(v / s) + o, 0.0f), maxq);
        dec[i] = s * (q - o);
      }
    }
    // ...then the double sum, element i into lane i % 4.
    for (int64_t i = 0; i < len; ++i) {
      const double d = static_cast<double>(dec[i]) - x[i0 + i];
      lanes[(i0 + i) & 3] += (Weighted ? static_cast<double>(w[i0 + i]) : 1.0) * (d * d);
    }
  }
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

template <bool FloatMin, bool Weighted>
void all_errors(const GsqCandidateSet& c, const float* x, const float* w, int64_t n, double* err) {
  for (int64_t k = 0; k < c.count; ++k)
    err[k] = candidate_error<FloatMin, Weighted>(c.scales[k], c.offsets[k], c.maxq, x, w, n);
}

}  // namespace

void gsq_search_errors__scalar(const GsqCandidateSet& c, const float* x, const float* w, int64_t n, double* err) {
  if (c.float_min)
    w ? all_errors<true, true>(c, x, w, n, err) : all_errors<true, false>(c, x, w, n, err);
  else
    w ? all_errors<false, true>(c, x, w, n, err) : all_errors<false, false>(c, x, w, n, err);
}

}  // namespace lowbit::kernels
