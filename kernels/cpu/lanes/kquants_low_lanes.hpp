#pragma once
// The standard-effort searches of Q2_K and Q3_K (kernels/cpu/reference/
// kquants_low_search.hpp) with the sixteen sub-blocks of a super-block in vector
// lanes, lanes_of<F> at a time (F = W where the ISA has 512-bit registers, V where it
// does not), byte-identical to the scalar reference. Lane j runs sub-block j's
// float operations in the reference's order: its four-lane partial sums become four
// accumulators per lane, its serial sums stay serial, its branches become selects,
// and a lane that the reference would leave early keeps computing with its values
// never taken. Only the per-sub-block stages (the fits, the evaluation of each
// sub-block's integer candidates, Q3_K's bound, the refits' sums: nearly all of the
// time) live here; the rest is the reference's own code through
// quantize_block_q2_K / quantize_block_q3_K.
//
// The including file defines V, Vi, Vd, Vdi as search_lanes.hpp says.
#include <cstdint>
#include <cstring>

#include "cpu/reference/kquants_low_search.hpp"
#include "cpu/lanes/search_lanes.hpp"

namespace lowbit::kernels {
namespace {

template <class F>
struct LowLanes {
  using I = typename LaneTypes<F>::I;
  static constexpr int kL = lanes_of<F>;
  static constexpr int kGroups = kNumSub / kL;

  static F splat(float v) { return splat_as<F>(v); }
  // clamp4 of the reference: below lo -> lo, then above hi -> hi.
  static F clamp4v(const F& v, float lo, float hi) {
    const F a = v < splat(lo) ? splat(lo) : v;
    return a > splat(hi) ? splat(hi) : a;
  }
  // The reference's F4 sums: element i adds into partial sum i % 4, in element
  // order, and hsum adds the four as (0 + 1) + (2 + 3).
  template <class E>
  static F sum4(const E& e) {
    F a[4] = {splat(0.0f), splat(0.0f), splat(0.0f), splat(0.0f)};
    for (int i = 0; i < kSub; ++i) a[i % 4] += e(i);
    return (a[0] + a[1]) + (a[2] + a[3]);
  }
  // floor(clampf(v, lo, hi)) as an integer, for lo, hi small integers.
  static I floor_clamped(const F& v, float lo, float hi) {
    const F c = vclamp(v, lo, hi);
    const I t = __builtin_convertvector(c, I);
    return __builtin_convertvector(t, F) > c ? t - 1 : t;
  }
  // The reference's serial sum over the sixteen sub-blocks of one per-lane term,
  // given a vector per group of lanes.
  static float serial_total(const F (&v)[kGroups]) {
    float total = 0.0f;
    for (int g = 0; g < kGroups; ++g)
      for (int j = 0; j < kL; ++j) total += v[g][j];
    return total;
  }

  // ------------------------------------------------------------------ Q3_K
  // q3_error of the reference, scale S per lane (the codes are not needed here).
  static F q3_error(const F* x, const F* w, const F& S) {
    const I flat = S == splat(0.0f);
    const F inv = splat(1.0f) / S;
    const F err = sum4([&](int i) LOWBIT_LANES_INLINE_LAMBDA {
      const F q = vround(clamp4v(x[i] * inv, -4.0f, 3.0f));
      const F diff = x[i] - S * q;
      return w[i] * diff * diff;
    });
    if (!any(flat)) return err;
    F serial = splat(0.0f);
    for (int i = 0; i < kSub; ++i) serial += w[i] * x[i] * x[i];
    return flat ? serial : err;
  }

  // q3_fit_sign of the reference; returns the gain, sets scale and curv.
  static F q3_fit_sign(const F* x, const F* w, const F& amax, float sign, bool weighted, F& scale, F& curv) {
    constexpr int kFine = kQ3Fine, kWide = kQ3Wide, kRefits = kQ3Refits;
    const int ngrid = weighted ? kFine + kWide : kFine;
    const F zero = splat(0.0f);
    F best = zero;
    scale = curv = zero;
    I active = amax != zero;
    for (int k = 0; k < ngrid + kRefits; ++k) {
      if (k >= ngrid) active &= scale != zero;
      if (!any(active)) break;
      const float r = q3_trial_ratio(k);
      const F t = k < ngrid ? splat(sign * r) / amax : splat(1.0f) / scale;
      const F a = sum4([&](int i) LOWBIT_LANES_INLINE_LAMBDA {
        const F q = vround(clamp4v(x[i] * t, -4.0f, 3.0f));
        return w[i] * x[i] * q;
      });
      const F b = sum4([&](int i) LOWBIT_LANES_INLINE_LAMBDA {
        const F q = vround(clamp4v(x[i] * t, -4.0f, 3.0f));
        return w[i] * q * q;
      });
      const I ok = active & (b > zero) & ~(splat(sign) * a <= zero);
      const F gain = a * a / b;
      const I take = ok & (gain >= best * (1.0f - 1e-4f));
      best = take ? vmax(best, gain) : best;
      scale = take ? a / b : scale;
      curv = take ? b : curv;
    }
    return best;
  }

  // q3_window of the reference, entry k of the window of n integers nearest t.
  static I q3_window(const F& t, int n, int k) {
    if (n == 1) return __builtin_convertvector(vround(vclamp(t, -32.0f, 31.0f)), I);
    return floor_clamped(t, -32.0f, 31.0f) - (n / 2 - 1 - k);
  }

  // The reference's per-sub-block term of q3_block_bound.
  static F q3_bound(const F* scale, const F* curv, float d) {
    F best = splat(0.0f);
    for (int s = 0; s < 2; ++s) {
      const F S = splat(d) * __builtin_convertvector(q3_window(scale[s] / d, 1, 0), F);
      const F b = curv[s] * S * (S - 2.0f * scale[s]);
      best = b < best ? b : best;
    }
    return best;
  }

  // q3_eval of the reference for one group of lanes; writes the integer scales of
  // those sub-blocks and returns their errors.
  static F q3_eval(const F* x, const F* w, const F* scale, const F* gain, float d, Q3Reach reach, int8_t* sc_out) {
    F best = splat(0.0f);
    I best_sc = splat_as<I>(0), none = splat_as<I>(-1);
    const I first_positive = gain[0] >= gain[1];
    for (int s = 0; s < 2; ++s) {
      const int n = s == 0 ? reach.better : reach.other;
      const F fit = (s == 0 ? first_positive : ~first_positive) ? scale[0] : scale[1];
      const F t = fit / d;
      for (int k = 0; k < n; ++k) {
        const I c = q3_window(t, n, k);
        const I valid = (c >= -32) & (c <= 31);
        const F e = q3_error(x, w, splat(d) * __builtin_convertvector(c, F));
        const I take = valid & (none | (e < best));
        best = take ? e : best;
        best_sc = take ? c : best_sc;
        none &= ~valid;
      }
    }
    store_narrow(best_sc, sc_out);
    return best;
  }

  // The per-sub-block terms of the reference's q3_refit_sums for one group of lanes.
  static void q3_refit(const F* x, const F* w, float d, const int8_t* sc, F& num, F& den) {
    const F scale = __builtin_convertvector(load_widened<I>(sc), F);
    const F S = splat(d) * scale;
    const F inv = S == splat(0.0f) ? splat(0.0f) : splat(1.0f) / S;
    F n4[4], d4[4];
    for (int k = 0; k < 4; ++k) n4[k] = d4[k] = splat(0.0f);
    for (int i = 0; i < kSub; ++i) {
      const F a = scale * vround(clamp4v(x[i] * inv, -4.0f, 3.0f));
      n4[i % 4] += w[i] * x[i] * a;
      d4[i % 4] += w[i] * a * a;
    }
    num = (n4[0] + n4[1]) + (n4[2] + n4[3]);
    den = (d4[0] + d4[1]) + (d4[2] + d4[3]);
  }

  // ------------------------------------------------------------------ Q2_K
  // q2_error of the reference, scale S and offset M per lane.
  static F q2_error(const F* x, const F* w, const F& S, const F& M) {
    const I flat = S == splat(0.0f);
    const F inv = splat(1.0f) / S;
    const F err = sum4([&](int i) LOWBIT_LANES_INLINE_LAMBDA {
      const F q = vround(clamp4v((x[i] + M) * inv, 0.0f, 3.0f));
      const F diff = x[i] - (S * q - M);
      return w[i] * diff * diff;
    });
    if (!any(flat)) return err;
    F serial = splat(0.0f);
    for (int i = 0; i < kSub; ++i) {
      const F diff = x[i] + M;
      serial += w[i] * diff * diff;
    }
    return flat ? serial : err;
  }

  // q2_trial of the reference: the refitted error (INFINITY where the reference
  // returns it), S and M.
  static F q2_trial(const F* x, const F* w, const F& sw, const F& sx, const F& sxx, const F& S0, const F& M0,
                    F& S, F& M) {
    const F zero = splat(0.0f), inf = splat(INFINITY);
    const F inv = splat(1.0f) / S0;
    F vq[4], vq2[4], vxq[4];
    for (int k = 0; k < 4; ++k) vq[k] = vq2[k] = vxq[k] = zero;
    for (int i = 0; i < kSub; ++i) {
      const F q = vround(clamp4v((x[i] + M0) * inv, 0.0f, 3.0f));
      vq[i % 4] += w[i] * q;
      vq2[i % 4] += w[i] * q * q;
      vxq[i % 4] += w[i] * x[i] * q;
    }
    const F sq = (vq[0] + vq[1]) + (vq[2] + vq[3]);
    const F sq2 = (vq2[0] + vq2[1]) + (vq2[2] + vq2[3]);
    const F sxq = (vxq[0] + vxq[1]) + (vxq[2] + vxq[3]);
    const F D = sw * sq2 - sq * sq;
    const I solved = D > zero;
    F s = solved ? (sw * sxq - sx * sq) / D : zero;
    F m = solved ? -(sq2 * sx - sq * sxq) / D : zero;
    const I only_scale = ~solved | (m < zero);
    const I dead = (only_scale & ~(sq2 > zero));
    s = only_scale ? sxq / sq2 : s;
    m = only_scale ? zero : m;
    const I bad = dead | ~(s > zero);
    S = s;
    M = m;
    const F e = (sxx + 2.0f * m * sx + m * m * sw) - 2.0f * s * (sxq + m * sq) + s * s * sq2;
    return bad ? inf : e;
  }

  // q2_fit_sub of the reference for one group of lanes.
  static void q2_fit(const F* x, const F* w, F& scale, F& min) {
    const F zero = splat(0.0f), inf = splat(INFINITY);
    F mn = x[0], mx = x[0], sw = zero, sx = zero, sxx = zero;
    for (int i = 0; i < kSub; ++i) {
      mn = vmin(mn, x[i]);
      mx = vmax(mx, x[i]);
      sw += w[i];
      sx += w[i] * x[i];
      sxx += w[i] * x[i] * x[i];
    }
    mn = vmin(mn, zero);
    scale = zero;
    min = -mn;
    I active = ~(mx <= mn);
    F best_err = q2_error(x, w, zero, -mn);
    constexpr int kGrid = 11, kRefits = 3;
    for (int k = 0; k < kGrid + kRefits && any(active); ++k) {
      if (k >= kGrid) active &= scale != zero;
      const F S0 = k < kGrid ? (mx - mn) / (2.0f + 0.2f * k) : scale;
      const F M0 = k < kGrid ? -mn : min;
      F S, M;
      F e = q2_trial(x, w, sw, sx, sxx, S0, M0, S, M);
      const I finite = e != inf;
      e = finite ? q2_error(x, w, finite ? S : splat(1.0f), M) : e;
      const I take = active & (e < best_err);
      best_err = take ? e : best_err;
      scale = take ? S : scale;
      min = take ? M : min;
      if (k >= kGrid) active &= take;
    }
  }

  // The per-sub-block terms of the reference's q2_refit_sums for one group of lanes
  // (in the order aa, ab, bb, xa, xb).
  static void q2_refit(const F* x, const F* w, float d, float dmin, const uint8_t* sc, const uint8_t* mn, F* out) {
    const F scale = __builtin_convertvector(load_widened<I>(sc), F);
    const F b = __builtin_convertvector(load_widened<I>(mn), F);
    const F S = splat(d) * scale, M = splat(dmin) * b;
    const F inv = S == splat(0.0f) ? splat(0.0f) : splat(1.0f) / S;
    F acc[5][4];
    for (auto& sums : acc)
      for (F& v : sums) v = splat(0.0f);
    for (int i = 0; i < kSub; ++i) {
      const F a = scale * vround(clamp4v((x[i] + M) * inv, 0.0f, 3.0f));
      acc[0][i % 4] += w[i] * a * a;
      acc[1][i % 4] += w[i] * a * b;
      acc[2][i % 4] += w[i] * b * b;
      acc[3][i % 4] += w[i] * x[i] * a;
      acc[4][i % 4] += w[i] * x[i] * b;
    }
    for (int k = 0; k < 5; ++k) out[k] = (acc[k][0] + acc[k][1]) + (acc[k][2] + acc[k][3]);
  }

  // q2_eval of the reference for one group of lanes.
  static F q2_eval(const F* x, const F* w, const F& fscale, const F& fmin, float d, float dmin, int reach,
                   uint8_t* sc_out, uint8_t* m_out) {
    const I no = splat_as<I>(0);
    // nibble_candidates of the reference: the first candidate, and how many.
    auto first = [reach](const F& v) {
      return reach == 0 ? __builtin_convertvector(vround(vclamp(v, 0.0f, 15.0f)), I)
                        : floor_clamped(v, 0.0f, 15.0f) - (reach - 1);
    };
    const int width = reach == 0 ? 1 : 2 * reach;
    const I rs = d > 0.0f ? first(fscale / d) : no;
    const I rm = dmin > 0.0f ? first(fmin / dmin) : no;
    const int ns = d > 0.0f ? width : 1, nm = dmin > 0.0f ? width : 1;
    F best = splat(INFINITY);
    I best_sc = load_widened<I>(sc_out), best_m = load_widened<I>(m_out);
    for (int a = 0; a < ns; ++a) {
      const I sc = d > 0.0f ? rs + a : no;
      const I valid_s = (sc >= 0) & (sc <= 15);
      const F S = splat(d) * __builtin_convertvector(sc, F);
      for (int b = 0; b < nm; ++b) {
        const I mc = dmin > 0.0f ? rm + b : no;
        const I valid = valid_s & (mc >= 0) & (mc <= 15);
        if (!any(valid)) continue;
        const F e = q2_error(x, w, S, splat(dmin) * __builtin_convertvector(mc, F));
        const I take = valid & (e < best);
        best = take ? e : best;
        best_sc = take ? sc : best_sc;
        best_m = take ? mc : best_m;
      }
    }
    store_narrow(best_sc, sc_out);
    store_narrow(best_m, m_out);
    return best;
  }
};

// The per-sub-block stages of the Q2_K / Q3_K searches with the sub-blocks in lanes
// (the policy ScalarLowOps describes). fit_q2 / fit_q3 is called first for every
// block and keeps the block's elements and weights in lane order for eval.
template <class F>
struct LaneLowOps {
  using Lanes = LowLanes<F>;
  static constexpr int kL = Lanes::kL;
  static constexpr int kGroups = Lanes::kGroups;
  F x[kGroups][kSub], w[kGroups][kSub];
  F q2_scale[kGroups], q2_min[kGroups], q3_scale[kGroups][2], q3_gain[kGroups][2], q3_curv[kGroups][2];

  void load(const float* xb, const float* wb) {
    for (int g = 0; g < kGroups; ++g) {
      transpose_lanes<kSub>(xb + g * kL * kSub, x[g]);
      transpose_lanes<kSub>(wb + g * kL * kSub, w[g]);
    }
  }

  void fit_q3(const float* xb, const float* wb, bool weighted, Q3SubFit* fits) {
    load(xb, wb);
    for (int g = 0; g < kGroups; ++g) {
      F amax = Lanes::splat(0.0f);
      for (int i = 0; i < kSub; ++i) amax = vmax(amax, vabs(x[g][i]));
      F* scale = q3_scale[g];
      F* gain = q3_gain[g];
      F* curv = q3_curv[g];
      gain[0] = Lanes::q3_fit_sign(x[g], w[g], amax, 1.0f, weighted, scale[0], curv[0]);
      gain[1] = Lanes::q3_fit_sign(x[g], w[g], amax, -1.0f, weighted, scale[1], curv[1]);
      for (int j = 0; j < kL; ++j)
        fits[g * kL + j] = Q3SubFit{{scale[0][j], scale[1][j]}, {gain[0][j], gain[1][j]}, {curv[0][j], curv[1][j]}};
    }
  }
  float bound_q3(const Q3SubFit*, float d) {
    F bound[kGroups];
    for (int g = 0; g < kGroups; ++g) bound[g] = Lanes::q3_bound(q3_scale[g], q3_curv[g], d);
    return Lanes::serial_total(bound);
  }
  void refit_q3(const float*, const float*, float d, const int8_t* sc, float& num, float& den) {
    F n[kGroups], dn[kGroups];
    for (int g = 0; g < kGroups; ++g) Lanes::q3_refit(x[g], w[g], d, sc + g * kL, n[g], dn[g]);
    num = Lanes::serial_total(n);
    den = Lanes::serial_total(dn);
  }
  float eval_q3(const float*, const float*, const Q3SubFit*, float d, Q3Reach reach, int8_t* sc) {
    F err[kGroups];
    for (int g = 0; g < kGroups; ++g)
      err[g] = Lanes::q3_eval(x[g], w[g], q3_scale[g], q3_gain[g], d, reach, sc + g * kL);
    return Lanes::serial_total(err);
  }

  void fit_q2(const float* xb, const float* wb, Q2SubFit* fits) {
    load(xb, wb);
    for (int g = 0; g < kGroups; ++g) {
      Lanes::q2_fit(x[g], w[g], q2_scale[g], q2_min[g]);
      for (int j = 0; j < kL; ++j) fits[g * kL + j] = Q2SubFit{q2_scale[g][j], q2_min[g][j]};
    }
  }
  void refit_q2(const float*, const float*, float d, float dmin, const uint8_t* sc, const uint8_t* mn,
                Q2RefitSums& r) {
    F aa[kGroups], ab[kGroups], bb[kGroups], xa[kGroups], xb[kGroups];
    for (int g = 0; g < kGroups; ++g) {
      F t[5];
      Lanes::q2_refit(x[g], w[g], d, dmin, sc + g * kL, mn + g * kL, t);
      aa[g] = t[0], ab[g] = t[1], bb[g] = t[2], xa[g] = t[3], xb[g] = t[4];
    }
    r = Q2RefitSums{Lanes::serial_total(aa), Lanes::serial_total(ab), Lanes::serial_total(bb),
                    Lanes::serial_total(xa), Lanes::serial_total(xb)};
  }
  float eval_q2(const float*, const float*, const Q2SubFit*, float d, float dmin, int reach, uint8_t* sc,
                uint8_t* m) {
    F err[kGroups];
    for (int g = 0; g < kGroups; ++g)
      err[g] = Lanes::q2_eval(x[g], w[g], q2_scale[g], q2_min[g], d, dmin, reach, sc + g * kL, m + g * kL);
    return Lanes::serial_total(err);
  }
};

}  // namespace
}  // namespace lowbit::kernels
