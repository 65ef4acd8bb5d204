#pragma once
// The `fast` IQ4_NL and IQ4_XS quantizers (ggml's algorithm, ggml_search::iq4_scale
// with weights x^2; kernels/cpu/reference/legacy_fast.cpp) with the 16 trial scales
// of a 32-element block in SIMD lanes, byte-identical to the
// scalar reference: the loop walks the block's elements in order, so every lane's two
// sums run in exactly the reference's order, and the choice among the trials is the
// reference's scalar code. Only the nearest-code look-up differs by ISA; it chooses
// as ggml's best_index_int8 does (kernels/common/iq4_buckets.hpp says why).
//
// The including file defines, before including this header, a class Iq4Lookup with
//   Trials                         a float GCC vector of 4, 8 or 16 lanes: the trials
//                                  run in 16 / lanes passes over the block
//   Trials splat(float v) const    v in every lane (the ISA's broadcast: GCC lowers a
//                                  scalar operand of a vector wider than the ISA's
//                                  registers through the stack)
//   Trials value(Trials v) const   the code values of v (|v| <= kIq4BucketLimit)
//   void pack(const float* x, float id, uint8_t* qs) const
//                                  the nibbles of the codes of id * x[j], j < 32, for
//                                  values of any magnitude (the final codes: d is a
//                                  refit, so id * x may reach beyond the trials' range)
// With importance the row functions call the scalar reference.
#include <cmath>
#include <cstring>

#include "cpu/reference/ggml_search.hpp"
#include "cpu/reference/scalar_math.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

// ggml_search::iq4_scale(x, x^2) with the 16 trials in the lanes: lane 0 ggml's
// starting scale, lanes 1..15 itry = -7..7.
template <class Lookup>
float iq4_scale_trials(const Lookup& t, const float* x) {
  const float max = ggml_search::signed_absmax(x, QK_LEGACY);
  if (std::fabs(max) < 1e-15f) return 0.0f;
  using Trials = typename Lookup::Trials;
  constexpr int kLanes = sizeof(Trials) / sizeof(float);
  static_assert(16 % kLanes == 0);
  float ids[16];
  ids[0] = 1.0f / (-max / static_cast<float>(kIq4nlValues[0]));
  for (int k = 1; k < 16; ++k) ids[k] = static_cast<float>(k - 8 + kIq4nlValues[0]) / max;
  float sumqx[16], sumq2[16];
  for (int first = 0; first < 16; first += kLanes) {
    Trials id;
    std::memcpy(&id, ids + first, sizeof id);
    Trials sx = {}, s2 = {};
    for (int j = 0; j < QK_LEGACY; ++j) {
      const Trials xj = t.splat(x[j]), wj = t.splat(x[j] * x[j]);
      const Trials q = t.value(id * xj);
      const Trials wq = wj * q;
      sx += wq * xj;
      s2 += wq * q;
    }
    std::memcpy(sumqx + first, &sx, sizeof sx);
    std::memcpy(sumq2 + first, &s2, sizeof s2);
  }
  if (!(sumq2[0] > 0.0f)) return 0.0f;
  float d = sumqx[0] / sumq2[0], best = d * sumqx[0];
  for (int k = 1; k < 16; ++k)
    if (sumq2[k] > 0.0f && sumqx[k] * sumqx[k] > best * sumq2[k]) {
      d = sumqx[k] / sumq2[k];
      best = d * sumqx[k];
    }
  return d;
}

template <class Lookup>
void iq4_nl_fast_row(const float* x, void* y, int64_t n) {
  auto* out = static_cast<block_iq4_nl*>(y);
  const Lookup t;
  for (int64_t i = 0; i < n / QK_LEGACY; ++i, x += QK_LEGACY) {
    const float d = iq4_scale_trials(t, x);
    out[i].d = to_half(d);
    t.pack(x, d != 0.0f ? 1.0f / d : 0.0f, out[i].qs);
  }
}

template <class Lookup>
void iq4_xs_fast_row(const float* x, void* y, int64_t n) {
  auto* out = static_cast<block_iq4_xs*>(y);
  constexpr int kSub = QK_K / QK_LEGACY;
  const Lookup t;
  float scales[kSub];
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl, x += QK_K) {
    for (int ib = 0; ib < kSub; ++ib) scales[ib] = iq4_scale_trials(t, x + ib * QK_LEGACY);
    ggml_search::write_iq4_xs_block(x, scales, out[ibl],
                                    [&t](const float* xb, float id, uint8_t* qs) { t.pack(xb, id, qs); });
  }
}

}  // namespace
}  // namespace lowbit::kernels
