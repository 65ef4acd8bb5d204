#pragma once
// The GSQ search family with one candidate per vector lane: every lane codes the same
// element with its own (scale, offset), then squares and weighs the error in double
// and adds it to the accumulator of the element's index mod 4, exactly the scalar
// reference's order (kernels/cpu/reference/gsq_search.cpp). Lanes are independent, so
// each lane's sum is the reference's sum for that candidate, bit for bit.
//
// Written once over an ISA's operations (the including file, after its folder's
// target.hpp, defines a struct Ops with):
//   F, D, kLanes        a float vector of kLanes lanes and a double vector of half as many
//   splat(float), load(const float*)
//   add, sub, mul, div  float lanes, IEEE single operations
//   min(a, b), max(a, b)  std::min / std::max lane by lane: b < a ? b : a, a < b ? b : a
//   lo(F), hi(F)        the lower and upper half of the lanes widened to double
//   splat_d(double), add_d, sub_d, mul_d, store_d(double*, D)
//   store(float*, F)
//   Q, widen4(const float*)   four doubles, from four floats in memory
//   zero4(), add4, sub4, mul4, store4(double*, Q)
// Intrinsics rather than GCC's generic vectors: GCC 12 kept double vectors wider than
// a register in memory and widened floats through the stack (measured: 1.3x the scalar
// reference instead of several times).
#include <algorithm>
#include <cstdint>

#include "lowbit/kernels/gsq_search.hpp"

namespace lowbit::kernels {
namespace {

// encode_value then decode_value in float lane by lane: round half to even by adding
// and subtracting 1.5 * 2^23 (magic), then the clamp to [0, maxq] (top). round_even's
// clamp of its argument to +-4096 is left out: a value beyond it rounds (even where
// the addition no longer rounds exactly) to a number of the same sign and at least
// 2^12 - 255 in magnitude, which the clamp to [0, maxq] sends to the same end, 0 or
// maxq. That frees two registers for the accumulators; the family's test covers such
// scales. gsq_decode_one is the same in scalar float.
template <class Ops, bool FloatMin>
inline typename Ops::F gsq_decode_lanes(typename Ops::F v, typename Ops::F s, typename Ops::F o, typename Ops::F zero,
                                        typename Ops::F top, typename Ops::F magic) {
  if constexpr (FloatMin) {
    const typename Ops::F q =
        Ops::min(Ops::max(Ops::sub(Ops::add(Ops::div(Ops::sub(v, o), s), magic), magic), zero), top);
    return Ops::add(Ops::mul(s, q), o);
  } else {
    const typename Ops::F q =
        Ops::min(Ops::max(Ops::add(Ops::sub(Ops::add(Ops::div(v, s), magic), magic), o), zero), top);
    return Ops::mul(s, Ops::sub(q, o));
  }
}

// The errors of the kLanes candidates (s, o) over x[0..n) into out[0..kLanes).
template <class Ops, bool FloatMin, bool Weighted>
void gsq_lane_errors(typename Ops::F s, typename Ops::F o, float maxq, const float* x, const float* w, int64_t n,
                     double* out) {
  using F = typename Ops::F;
  using D = typename Ops::D;
  const F zero = Ops::splat(0.0f), top = Ops::splat(maxq), magic = Ops::splat(12582912.0f);
  const D dzero = Ops::splat_d(0.0);
  D acc[4][2] = {{dzero, dzero}, {dzero, dzero}, {dzero, dzero}, {dzero, dzero}};
  auto add = [&](int64_t i, D* a) __attribute__((always_inline)) {
    const F dec = gsq_decode_lanes<Ops, FloatMin>(Ops::splat(x[i]), s, o, zero, top, magic);
    const D xd = Ops::splat_d(static_cast<double>(x[i]));
    const D d0 = Ops::sub_d(Ops::lo(dec), xd), d1 = Ops::sub_d(Ops::hi(dec), xd);
    D e0 = Ops::mul_d(d0, d0), e1 = Ops::mul_d(d1, d1);
    if constexpr (Weighted) {
      const D wd = Ops::splat_d(static_cast<double>(w[i]));
      e0 = Ops::mul_d(wd, e0), e1 = Ops::mul_d(wd, e1);
    }
    a[0] = Ops::add_d(a[0], e0);
    a[1] = Ops::add_d(a[1], e1);
  };
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    add(i, acc[0]);
    add(i + 1, acc[1]);
    add(i + 2, acc[2]);
    add(i + 3, acc[3]);
  }
  if (i < n) add(i++, acc[0]);
  if (i < n) add(i++, acc[1]);
  if (i < n) add(i++, acc[2]);
  for (int h = 0; h < 2; ++h)
    Ops::store_d(out + h * (Ops::kLanes / 2),
                 Ops::add_d(Ops::add_d(acc[0][h], acc[1][h]), Ops::add_d(acc[2][h], acc[3][h])));
}

// One element decoded as the lanes decode it, in scalar float.
template <bool FloatMin>
inline float gsq_decode_one(float v, float s, float o, float maxq) {
  constexpr float magic = 12582912.0f;
  if constexpr (FloatMin) {
    const float q = std::min(std::max(((v - o) / s + magic) - magic, 0.0f), maxq);
    return s * q + o;
  } else {
    const float q = std::min(std::max(((v / s + magic) - magic) + o, 0.0f), maxq);
    return s * (q - o);
  }
}

// One candidate's error with the elements in the lanes instead: the decoded values
// kLanes at a time, then the double part four elements at a time into one
// four-double accumulator, whose lane j takes elements j, j + 4, j + 8, ... in order:
// the reference's four sums again. For the candidates left over when the rest fill
// whole batches (81 = 10 x 8 + 1 with AVX2), and for the refits' single candidates,
// which would otherwise cost a whole pass of lanes each.
template <class Ops, bool FloatMin, bool Weighted>
double gsq_one_error(float s, float o, float maxq, const float* x, const float* w, int64_t n) {
  using F = typename Ops::F;
  using Q = typename Ops::Q;
  constexpr int kLanes = Ops::kLanes;
  constexpr int64_t kChunk = 256;  // a multiple of kLanes and of 4
  const F sv = Ops::splat(s), ov = Ops::splat(o), zero = Ops::splat(0.0f), top = Ops::splat(maxq),
          magic = Ops::splat(12582912.0f);
  alignas(64) float dec[kChunk];
  Q acc = Ops::zero4();
  const int64_t whole = n & ~int64_t{3};
  for (int64_t i0 = 0; i0 < whole; i0 += kChunk) {
    const int64_t len = std::min(kChunk, whole - i0);
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes)
      Ops::store(dec + i, gsq_decode_lanes<Ops, FloatMin>(Ops::load(x + i0 + i), sv, ov, zero, top, magic));
    for (; i < len; ++i) dec[i] = gsq_decode_one<FloatMin>(x[i0 + i], s, o, maxq);
    for (int64_t j = 0; j < len; j += 4) {
      const Q d = Ops::sub4(Ops::widen4(dec + j), Ops::widen4(x + i0 + j));
      Q e = Ops::mul4(d, d);
      if constexpr (Weighted) e = Ops::mul4(Ops::widen4(w + i0 + j), e);
      acc = Ops::add4(acc, e);
    }
  }
  double lanes[4];
  Ops::store4(lanes, acc);
  for (int64_t i = whole; i < n; ++i) {
    const double d = static_cast<double>(gsq_decode_one<FloatMin>(x[i], s, o, maxq)) - x[i];
    lanes[i & 3] += (Weighted ? static_cast<double>(w[i]) : 1.0) * (d * d);
  }
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

// The family's function over any number of candidates: whole batches of kLanes in the
// lanes, the rest one by one with the elements in the lanes.
template <class Ops>
void gsq_search_errors_in_lanes(const GsqCandidateSet& c, const float* x, const float* w, int64_t n, double* err) {
  constexpr int kLanes = Ops::kLanes;
  int64_t k0 = 0;
  for (; k0 + kLanes <= c.count; k0 += kLanes) {
    const typename Ops::F sv = Ops::load(c.scales + k0), ov = Ops::load(c.offsets + k0);
    double e[kLanes];
    if (c.float_min)
      w ? gsq_lane_errors<Ops, true, true>(sv, ov, c.maxq, x, w, n, e)
        : gsq_lane_errors<Ops, true, false>(sv, ov, c.maxq, x, w, n, e);
    else
      w ? gsq_lane_errors<Ops, false, true>(sv, ov, c.maxq, x, w, n, e)
        : gsq_lane_errors<Ops, false, false>(sv, ov, c.maxq, x, w, n, e);
    std::copy(e, e + kLanes, err + k0);
  }
  for (; k0 < c.count; ++k0) {
    const float s = c.scales[k0], o = c.offsets[k0];
    if (c.float_min)
      err[k0] = w ? gsq_one_error<Ops, true, true>(s, o, c.maxq, x, w, n)
                  : gsq_one_error<Ops, true, false>(s, o, c.maxq, x, w, n);
    else
      err[k0] = w ? gsq_one_error<Ops, false, true>(s, o, c.maxq, x, w, n)
                  : gsq_one_error<Ops, false, false>(s, o, c.maxq, x, w, n);
  }
}

}  // namespace
}  // namespace lowbit::kernels
