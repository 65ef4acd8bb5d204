#pragma once
// The standard-effort searches of Q4_K, Q5_K and Q6_K (kernels/cpu/reference/
// kquants_search.hpp) with the sub-blocks of a super-block in vector lanes (Q4_K/Q5_K:
// its eight in the eight lanes of V; Q6_K: its sixteen, lanes_of<F> at a time),
// byte-identical to the scalar reference. Lane j runs sub-block j's
// scalar float and double operations in the reference's order: the same halving
// sums over its elements (tree_sum on vectors adds the same pairs lane by lane),
// the same roundings, no FMA (the library builds with -ffp-contract=off), and
// selects where the reference branches. A lane that the reference would leave early
// (a Lloyd step or local-search round that found nothing) keeps computing but
// changes nothing, because a masked lane's values are never taken.
//
// Only the per-sub-block stages live here (the fit, the integer pick, scoring and the
// local search: nearly all of the time); the super-block stages run the reference's
// own scalar code through quantize_affine_block.
//
// The including file defines V, Vi, Vd, Vdi as search_lanes.hpp says.
#include <cstdint>
#include <cstring>

#include "cpu/reference/kquants_search.hpp"
#include "cpu/lanes/search_lanes.hpp"

namespace lowbit::kernels {
namespace {

constexpr int kSearchLanes = 8;
static_assert(kSearchLanes == kAffSubs, "one lane per Q4_K/Q5_K sub-block");

inline V fsplat(float v) { return splat_as<V>(v); }
LOWBIT_LANES_INLINE Vd dsplat(double v) { return splat_as<Vd>(v); }
LOWBIT_LANES_INLINE Vd widen(V v) { return __builtin_convertvector(v, Vd); }
LOWBIT_LANES_INLINE V narrow(const Vd& v) { return __builtin_convertvector(v, V); }
LOWBIT_LANES_INLINE Vdi widen_mask(Vi m) { return __builtin_convertvector(m, Vdi); }
LOWBIT_LANES_INLINE Vi narrow_mask(const Vdi& m) { return __builtin_convertvector(m, Vi); }


template <class F>
LOWBIT_LANES_INLINE auto tree_sum32(const F& f) {
  return tree_sum_of<0, 1, kAffSub>(f);
}
template <class F>
LOWBIT_LANES_INLINE auto tree_sum16(const F& f) {
  return tree_sum_of<0, 1, kSymSub>(f);
}
struct Sums3 {
  V a, b, c;
  Sums3 operator+(const Sums3& o) const { return {a + o.a, b + o.b, c + o.c}; }
};

// solve_affine of the reference in every lane (double sums in, error out).
struct AffineSumsLanes {
  Vd sw, swx, swx2, sl, sl2, sxl;
};
LOWBIT_LANES_INLINE Vd solve_affine_lanes(const AffineSumsLanes& t, Vd& s, Vd& mn) {
  const Vd zero = dsplat(0.0);
  const Vd det = t.sw * t.sl2 - t.sl * t.sl;
  const Vdi solved = det > zero;
  s = solved ? (t.sw * t.sxl - t.swx * t.sl) / det : zero;
  mn = solved ? (t.sl2 * t.swx - t.sl * t.sxl) / det : zero;
  const Vdi pin = (det <= zero) | (mn > zero);
  s = pin ? (t.sl2 > zero ? t.sxl / t.sl2 : zero) : s;
  mn = pin ? zero : mn;
  const Vdi negative = s < zero;
  const Vd mean = t.swx / t.sw;
  const Vd only_offset = t.sw > zero ? (mean < zero ? mean : zero) : zero;
  s = negative ? zero : s;
  mn = negative ? only_offset : mn;
  return t.swx2 - 2 * s * t.sxl - 2 * mn * t.swx + s * s * t.sl2 + 2 * s * mn * t.sl + mn * mn * t.sw;
}

// code_sums of the reference for the codes code(i), per lane.
template <class Code>
LOWBIT_LANES_INLINE void code_sums_lanes(const V* x, const V* w, const Code& code, AffineSumsLanes& t) {
  const Sums3 r = tree_sum32([&](int i) {
    const V q = code(i);
    const V wl = w[i] * q;
    return Sums3{wl, wl * q, wl * x[i]};
  });
  t.sl = widen(r.a);
  t.sl2 = widen(r.b);
  t.sxl = widen(r.c);
}

// fit_affine<NMAX> of the reference for all eight sub-blocks at once.
template <int NMAX>
void fit_affine_lanes(const V* x, const V* w, AffineFit* fits) {
  constexpr float fn = NMAX;
  const V zero = fsplat(0.0f);
  V xmin = x[0], xmax = x[0];
  for (int i = 0; i < kAffSub; ++i) {
    xmin = vmin(xmin, x[i]);
    xmax = vmax(xmax, x[i]);
  }
  const Sums3 data = tree_sum32([&](int i) {
    const V wx = w[i] * x[i];
    return Sums3{w[i], wx, wx * x[i]};
  });
  AffineSumsLanes t;
  t.sw = widen(data.a);
  t.swx = widen(data.b);
  t.swx2 = widen(data.c);
  t.sl = t.sl2 = t.sxl = dsplat(0.0);

  const V lo = vmin(xmin, zero);
  const V range = xmax - lo;
  const Vi constant = ~(range > fsplat(kTiny));

  Vd best_err = dsplat(INFINITY), best_s = dsplat(0.0), best_mn = dsplat(0.0);
  Vd best_sl = t.sl, best_sl2 = t.sl2;
  constexpr float kStep = NMAX > 15 ? 0.6f : 0.3f;
  for (int a = 0; a < 3; ++a) {
    const V anchor = lo + fsplat(0.3f * static_cast<float>(a)) * range / fn;
    for (int k = -3; k <= 3; ++k) {
      const V iscale = fsplat(fn + kStep * static_cast<float>(k)) / range;
      code_sums_lanes(x, w, [&](int i) { return vclamp(round_even((x[i] - anchor) * iscale), 0.0f, fn); }, t);
      Vd s, mn;
      const Vd err = solve_affine_lanes(t, s, mn);
      const Vdi take = err < best_err;
      best_err = take ? err : best_err;
      best_s = take ? s : best_s;
      best_mn = take ? mn : best_mn;
      best_sl = take ? t.sl : best_sl;
      best_sl2 = take ? t.sl2 : best_sl2;
    }
  }
  // Lloyd iterations; a lane leaves (for good) at its first step that does not win.
  Vdi active = (best_s > dsplat(0.0)) & ~widen_mask(constant);
  for (int it = 0; it < 4 && any(narrow_mask(active)); ++it) {
    const V s = narrow(best_s), mn = narrow(best_mn);
    const V inv = fsplat(1.0f) / s;
    code_sums_lanes(x, w, [&](int i) { return vclamp(round_even((x[i] - mn) * inv), 0.0f, fn); }, t);
    Vd ns, nmn;
    const Vd err = solve_affine_lanes(t, ns, nmn);
    const Vdi take = active & (err < best_err * (1 - 1e-9));
    best_err = take ? err : best_err;
    best_s = take ? ns : best_s;
    best_mn = take ? nmn : best_mn;
    best_sl = take ? t.sl : best_sl;
    best_sl2 = take ? t.sl2 : best_sl2;
    active = take & (best_s > dsplat(0.0));
  }
  const V s = narrow(best_s), m = narrow(-best_mn), a = narrow(best_sl2), b = narrow(best_sl), c = narrow(t.sw);
  const V b_over_c = narrow(t.sw > dsplat(0.0) ? best_sl / t.sw : dsplat(0.0));
  for (int j = 0; j < kAffSubs; ++j) {
    if (constant[j]) {
      fits[j] = AffineFit{};
      fits[j].m = -lo[j];
      fits[j].c = c[j];
    } else {
      fits[j] = AffineFit{s[j], m[j], a[j], b[j], c[j], b_over_c[j]};
    }
  }
}

// affine_codes<NMAX> of the reference in every lane, scale ds and offset dm per
// lane: the weighted squared error of the nearest codes (written to L when given).
template <int NMAX>
V affine_codes_lanes(const V* x, const V* w, V ds, V dm, V* L) {
  const V zero = fsplat(0.0f);
  const Vi flat = ds == zero;
  const V inv = fsplat(1.0f) / ds;
  if (!any(flat))  // the common case, without the selects for a zero scale
    return tree_sum32([&](int i) {
      const V q = vclamp(round_even((x[i] + dm) * inv), 0.0f, static_cast<float>(NMAX));
      if (L != nullptr) L[i] = q;
      const V r = ds * q - dm - x[i];
      return w[i] * r * r;
    });
  return tree_sum32([&](int i) {
    V q = vclamp(round_even((x[i] + dm) * inv), 0.0f, static_cast<float>(NMAX));
    q = flat ? zero : q;
    if (L != nullptr) L[i] = q;
    const V r = flat ? -dm - x[i] : ds * q - dm - x[i];
    return w[i] * r * r;
  });
}

// The four per-sub-block stages of quantize_affine_block with the sub-blocks in
// lanes (the policy ScalarAffineOps describes). The choice's error per sub-block is
// kept current; its codes are filled in only when codes() asks.
template <int NMAX>
struct LaneAffineOps {
  V x[kAffSub], w[kAffSub];
  V fs, fm, fa, fb, fc, fbc;  // the fits fit() returned, one field per vector

  void fit(const float* xb, const float* wb, AffineFit* fits) {
    transpose_lanes<kAffSub>(xb, x);
    transpose_lanes<kAffSub>(wb, w);
    fit_affine_lanes<NMAX>(x, w, fits);
    float t[6][kAffSubs];
    for (int j = 0; j < kAffSubs; ++j) {
      t[0][j] = fits[j].s, t[1][j] = fits[j].m, t[2][j] = fits[j].a;
      t[3][j] = fits[j].b, t[4][j] = fits[j].c, t[5][j] = fits[j].b_over_c;
    }
    fs = load_vector<V>(t[0]), fm = load_vector<V>(t[1]), fa = load_vector<V>(t[2]);
    fb = load_vector<V>(t[3]), fc = load_vector<V>(t[4]), fbc = load_vector<V>(t[5]);
  }

  // pick_integers of the reference, the eight sub-blocks in lanes, for the fits that
  // fit() returned (quantize_affine_block passes those same fits).
  void pick(const AffineFit*, float d, float dmin, uint8_t* sc, uint8_t* mm) {
    const float inv_d = d > 0 ? 1.0f / d : 0.0f, inv_dmin = dmin > 0 ? 1.0f / dmin : 0.0f;
    constexpr float kMax = static_cast<float>(kScaleMax);
    const Vi top = splat_as<Vi>(kScaleMax);
    V best = fsplat(INFINITY);
    Vi best_s = splat_as<Vi>(0), best_m = splat_as<Vi>(0);
    const Vi s_lo = __builtin_convertvector(vclamp(fs * inv_d, 0.0f, kMax), Vi);
    for (int ds = 0; ds <= 1; ++ds) {
      const Vi s = s_lo + ds;
      const Vi sv = s < top ? s : top;
      const V es = fsplat(d) * __builtin_convertvector(sv, V) - fs;
      const Vi m_lo = __builtin_convertvector(vclamp((fm + fbc * es) * inv_dmin, 0.0f, kMax), Vi);
      for (int dm = 0; dm <= 1; ++dm) {
        const Vi m = m_lo + dm;
        const Vi mv = m < top ? m : top;
        const V em = fm - fsplat(dmin) * __builtin_convertvector(mv, V);
        const V q = fa * es * es + 2 * fb * es * em + fc * em * em;
        const Vi better = q < best;
        best = better ? q : best;
        best_s = better ? sv : best_s;
        best_m = better ? mv : best_m;
      }
    }
    store_narrow(best_s, sc);
    store_narrow(best_m, mm);
  }

  // c.d * sc[j] and c.dmin * mm[j], as the reference computes them.
  static void scales(const AffineChoice& c, V& ds, V& dm) {
    ds = fsplat(c.d) * __builtin_convertvector(load_widened<Vi>(c.sc), V);
    dm = fsplat(c.dmin) * __builtin_convertvector(load_widened<Vi>(c.mm), V);
  }

  void score(const float*, const float*, AffineChoice& c) {
    V ds, dm;
    scales(c, ds, dm);
    const V e = affine_codes_lanes<NMAX>(x, w, ds, dm, nullptr);
    std::memcpy(c.err, &e, sizeof e);
  }

  // local_search of the reference: each lane moves its integer scale and min by +-1
  // while its real error drops, up to three rounds, neighbours in the same order.
  void local(const float*, const float*, AffineChoice& c) {
    const V d = fsplat(c.d), dmin = fsplat(c.dmin);
    V err = load_vector<V>(c.err);
    Vi s = load_widened<Vi>(c.sc), m = load_widened<Vi>(c.mm);
    Vi active = splat_as<Vi>(-1);
    for (int round = 0; round < 3 && any(active); ++round) {
      const Vi s0 = s, m0 = m;
      Vi moved = splat_as<Vi>(0);
      for (int ds = -1; ds <= 1; ++ds)
        for (int dm = -1; dm <= 1; ++dm) {
          if (ds == 0 && dm == 0) continue;
          const Vi ns = s0 + ds, nm = m0 + dm;
          const Vi valid = active & (ns >= 0) & (ns <= kScaleMax) & (nm >= 0) & (nm <= kScaleMax);
          if (!any(valid)) continue;
          const V e = affine_codes_lanes<NMAX>(x, w, d * __builtin_convertvector(ns, V),
                                               dmin * __builtin_convertvector(nm, V), nullptr);
          const Vi take = valid & (e < err);
          err = take ? e : err;
          s = take ? ns : s;
          m = take ? nm : m;
          moved |= take;
        }
      active &= moved;
    }
    std::memcpy(c.err, &err, sizeof err);
    store_narrow(s, c.sc);
    store_narrow(m, c.mm);
  }

  void codes(const float*, const float*, AffineChoice& c) {
    V ds, dm, L[kAffSub];
    scales(c, ds, dm);
    affine_codes_lanes<NMAX>(x, w, ds, dm, L);
    for (int i = 0; i < kAffSub; ++i)
      for (int j = 0; j < kAffSubs; ++j) c.L[kAffSub * j + i] = static_cast<uint8_t>(L[i][j]);
  }
};

// ---------------------------------------------------------------- Q6_K
// The sixteen 16-element sub-blocks of a super-block, lanes_of<F> at a time: F is W
// (sixteen lanes) where the ISA has 512-bit registers, V (eight) where it does not,
// since GCC lowers a vector wider than the registers piece by piece.

template <class F>
struct Sums2 {
  F a, b;
  LOWBIT_LANES_INLINE Sums2 operator+(const Sums2& o) const { return {a + o.a, b + o.b}; }
};

// fit_sym of the reference for lanes_of<F> sub-blocks at once.
template <class F>
LOWBIT_LANES_INLINE void fit_sym_lanes(const F* x, const F* w, SymFit* fits) {
  using I = typename LaneTypes<F>::I;
  using D = typename LaneTypes<F>::D;
  using DI = typename LaneTypes<F>::DI;
  const F zero = splat_as<F>(0.0f);
  F amax = zero, vmax_ = zero;
  for (int i = 0; i < kSymSub; ++i) {
    const F ax = vabs(x[i]);
    const I gt = ax > amax;
    amax = gt ? ax : amax;
    vmax_ = gt ? x[i] : vmax_;
  }
  const I tiny = amax < splat_as<F>(kTiny);
  const D swx2 = __builtin_convertvector(tree_sum16([&](int i) LOWBIT_LANES_INLINE_LAMBDA { return w[i] * x[i] * x[i]; }), D);
  const D dzero = splat_as<D>(0.0);
  D best_err = splat_as<D>(INFINITY), best_s = dzero, best_a = dzero;
  // try_codes of the reference in the lanes of `active`; returns where it won.
  auto try_codes = [&](const F& iscale, const DI& active) LOWBIT_LANES_INLINE_LAMBDA {
    const Sums2<F> r = tree_sum16([&](int i) LOWBIT_LANES_INLINE_LAMBDA {
      const F q = vclamp(vround(x[i] * iscale), -32.0f, 31.0f);
      return Sums2<F>{w[i] * q * q, w[i] * x[i] * q};
    });
    const D sq2 = __builtin_convertvector(r.a, D), sxq = __builtin_convertvector(r.b, D);
    const D s = sxq / sq2, err = swx2 - s * sxq;
    const DI take = active & (sq2 > dzero) & (err < best_err * (1 - 1e-9));
    best_err = take ? err : best_err;
    best_s = take ? s : best_s;
    best_a = take ? sq2 : best_a;
    return take;
  };
  const DI all = ~__builtin_convertvector(tiny, DI);
  for (int k = -8; k <= 4; ++k) {
    try_codes(splat_as<F>(-(32.0f + static_cast<float>(k))) / vmax_, all);
    try_codes(splat_as<F>(31.0f + static_cast<float>(k)) / vmax_, all);
  }
  DI active = all & (best_s != dzero);
  for (int it = 0; it < 4 && any(active); ++it)
    active = try_codes(__builtin_convertvector(1.0 / best_s, F), active) & (best_s != dzero);
  const F s = __builtin_convertvector(best_s, F), a = __builtin_convertvector(best_a, F);
  for (int j = 0; j < lanes_of<F>; ++j) fits[j] = tiny[j] ? SymFit{} : SymFit{s[j], a[j]};
}

// sym_codes of the reference in every lane, scale ds per lane.
template <class F>
LOWBIT_LANES_INLINE F sym_codes_lanes(const F* x, const F* w, const F& ds, F* L) {
  using I = typename LaneTypes<F>::I;
  const F zero = splat_as<F>(0.0f);
  const I flat = ds == zero;
  const F inv = splat_as<F>(1.0f) / ds;
  if (!any(flat))
    return tree_sum16([&](int i) LOWBIT_LANES_INLINE_LAMBDA {
      const F q = vclamp(vround(x[i] * inv), -32.0f, 31.0f);
      if (L != nullptr) L[i] = q;
      const F r = ds * q - x[i];
      return w[i] * r * r;
    });
  return tree_sum16([&](int i) LOWBIT_LANES_INLINE_LAMBDA {
    const F q = vclamp(vround(x[i] * inv), -32.0f, 31.0f);
    if (L != nullptr) L[i] = flat ? zero : q;
    const F r = ds * q - x[i];
    return flat ? w[i] * x[i] * x[i] : w[i] * r * r;
  });
}

// The per-sub-block stages of quantize_q6_K_block with the sub-blocks in lanes
// (LaneAffineOps's counterpart), kGroups groups of lanes_of<F>.
template <class F>
struct LaneSymOps {
  using I = typename LaneTypes<F>::I;
  static constexpr int kL = lanes_of<F>;
  static constexpr int kGroups = kSymSubs / kL;
  F x[kGroups][kSymSub], w[kGroups][kSymSub];

  static I integers(const int8_t* sc) { return load_widened<I>(sc); }
  static F scales(const SymChoice& c, const I& sc) { return splat_as<F>(c.d) * __builtin_convertvector(sc, F); }

  void fit(const float* xb, const float* wb, SymFit* fits) {
    for (int g = 0; g < kGroups; ++g) {
      transpose_lanes<kSymSub>(xb + g * kL * kSymSub, x[g]);
      transpose_lanes<kSymSub>(wb + g * kL * kSymSub, w[g]);
      fit_sym_lanes(x[g], w[g], fits + g * kL);
    }
  }
  void score(const float*, const float*, SymChoice& c) {
    for (int g = 0; g < kGroups; ++g) {
      const F e = sym_codes_lanes(x[g], w[g], scales(c, integers(c.sc + g * kL)), static_cast<F*>(nullptr));
      std::memcpy(c.err + g * kL, &e, sizeof e);
    }
  }
  // local_search_sym of the reference: each lane moves its scale by -1, then +1,
  // while its real error drops, up to three rounds.
  void local(const float*, const float*, SymChoice& c) {
    for (int g = 0; g < kGroups; ++g) {
      F err = load_vector<F>(c.err + g * kL);
      I s = integers(c.sc + g * kL), active = splat_as<I>(-1);
      for (int round = 0; round < 3 && any(active); ++round) {
        const I s0 = s;
        I moved = splat_as<I>(0);
        for (int step : {-1, 1}) {
          const I ns = s0 + step;
          const I valid = active & (ns >= -128) & (ns <= 127);
          if (!any(valid)) continue;
          const F e = sym_codes_lanes(x[g], w[g], scales(c, ns), static_cast<F*>(nullptr));
          const I take = valid & (e < err);
          err = take ? e : err;
          s = take ? ns : s;
          moved |= take;
        }
        active &= moved;
      }
      std::memcpy(c.err + g * kL, &err, sizeof err);
      store_narrow(s, c.sc + g * kL);
    }
  }
  void codes(const float*, const float*, SymChoice& c) {
    for (int g = 0; g < kGroups; ++g) {
      F L[kSymSub];
      sym_codes_lanes(x[g], w[g], scales(c, integers(c.sc + g * kL)), L);
      for (int i = 0; i < kSymSub; ++i)
        for (int j = 0; j < kL; ++j) c.L[kSymSub * (g * kL + j) + i] = static_cast<int8_t>(L[i][j]);
    }
  }
};


}  // namespace
}  // namespace lowbit::kernels
