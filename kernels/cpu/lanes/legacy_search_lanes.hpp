#pragma once
// The standard-effort searches of the 32-element formats (Q4_0, Q5_0, Q8_0 symmetric,
// Q4_1, Q5_1 asymmetric; kernels/cpu/reference/legacy_search.hpp) with one block per
// vector lane, lanes_of<F> blocks at a time, byte-identical to the scalar reference.
// Lane b runs block b's float operations in the reference's order: its eight partial
// sums (element j into sum j % 8, then ((0+1)+(2+3))+((4+5)+(6+7))) become eight
// accumulators per lane, ggml's serial sums stay serial, the reference's fused
// multiply-adds are the ISA's (vfma), ggml's integer rounding trick is the same bit
// arithmetic, fp16 conversions are the ISA's (F16C, AArch64 FCVT: the same
// round-to-nearest-even as lowbit/core/half.hpp on the finite, clamped values the
// search stores), and where the reference branches or skips a candidate the lane
// computes it and does not take it. The candidate rankings keep a count per lane.
// The per-block inputs (weights, ggml's plain and imatrix scales) are made in the
// lanes too (BlockLanes, make_qx, make_qkx3); writing each block is the reference's
// own code.
//
// The including file defines V, Vi, Vd, Vdi as search_lanes.hpp says.
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/reference/legacy_search.hpp"
#include "cpu/lanes/search_lanes.hpp"

namespace lowbit::kernels {
namespace {

// fp32 -> fp16 bits (in int32 lanes) and back, by the ISA's conversion instructions:
// IEEE round-to-nearest-even like fp32_to_fp16, on the finite, clamped values the
// search converts.
#if defined(__F16C__)
inline Vi half_bits(const V& v) {
  const __m128i h = _mm256_cvtps_ph(reinterpret_cast<__m256>(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return reinterpret_cast<Vi>(_mm256_cvtepu16_epi32(h));
}
inline V half_value(const Vi& h) {
  const __m256i b = reinterpret_cast<__m256i>(h);
  const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
  return reinterpret_cast<V>(_mm256_cvtph_ps(packed));
}
#elif defined(__ARM_NEON)
// FCVTN / FCVTL round to nearest even (the FPCR default) and handle subnormals.
inline Vi half_bits(const V& v) {
  float32x4_t lo, hi;
  std::memcpy(&lo, &v, 16);
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + 16, 16);
  const uint32x4_t a = vmovl_u16(vreinterpret_u16_f16(vcvt_f16_f32(lo)));
  const uint32x4_t b = vmovl_u16(vreinterpret_u16_f16(vcvt_f16_f32(hi)));
  Vi r;
  std::memcpy(&r, &a, 16);
  std::memcpy(reinterpret_cast<char*>(&r) + 16, &b, 16);
  return r;
}
inline V half_value(const Vi& h) {
  uint32x4_t a, b;
  std::memcpy(&a, &h, 16);
  std::memcpy(&b, reinterpret_cast<const char*>(&h) + 16, 16);
  const float32x4_t lo = vcvt_f32_f16(vreinterpret_f16_u16(vmovn_u32(a)));
  const float32x4_t hi = vcvt_f32_f16(vreinterpret_f16_u16(vmovn_u32(b)));
  V r;
  std::memcpy(&r, &lo, 16);
  std::memcpy(reinterpret_cast<char*>(&r) + 16, &hi, 16);
  return r;
}
#else
#error "legacy_search_lanes.hpp needs F16C (x86) or AArch64 for its fp16 conversions"
#endif
#if defined(__AVX512F__)
inline Wi half_bits(const W& v) {
  const __m256i h = _mm512_cvtps_ph(reinterpret_cast<__m512>(v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return reinterpret_cast<Wi>(_mm512_cvtepu16_epi32(h));
}
inline W half_value(const Wi& h) {
  return reinterpret_cast<W>(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(reinterpret_cast<__m512i>(h))));
}
#endif

// Lane-wise integer max / min (the reference's clamps: l < lo ? lo : l, l > hi ? hi : l).
#if defined(__AVX2__)
inline Vi imax(const Vi& a, const Vi& b) { return reinterpret_cast<Vi>(_mm256_max_epi32(reinterpret_cast<__m256i>(a), reinterpret_cast<__m256i>(b))); }
inline Vi imin(const Vi& a, const Vi& b) { return reinterpret_cast<Vi>(_mm256_min_epi32(reinterpret_cast<__m256i>(a), reinterpret_cast<__m256i>(b))); }
#else
inline Vi imax(const Vi& a, const Vi& b) { return a < b ? b : a; }
inline Vi imin(const Vi& a, const Vi& b) { return b < a ? b : a; }
#endif
#if defined(__AVX512F__)
inline Wi imax(const Wi& a, const Wi& b) { return reinterpret_cast<Wi>(_mm512_max_epi32(reinterpret_cast<__m512i>(a), reinterpret_cast<__m512i>(b))); }
inline Wi imin(const Wi& a, const Wi& b) { return reinterpret_cast<Wi>(_mm512_min_epi32(reinterpret_cast<__m512i>(a), reinterpret_cast<__m512i>(b))); }
#endif

template <class F>
struct SymLanes {
  using I = typename LaneTypes<F>::I;
  static constexpr int kL = lanes_of<F>;

  static F splat(float v) { return splat_as<F>(v); }
  static I isplat(int v) { return splat_as<I>(v); }

  // to_half of the reference: std::clamp to the finite fp16 range, then fp16.
  static I to_half(const F& v) {
    const F lo = splat(-kHalfMax), hi = splat(kHalfMax);
    return half_bits(v < lo ? lo : (hi < v ? hi : v));
  }
  static F copysign(const F& magnitude, const F& sign) {
    return reinterpret_cast<F>((reinterpret_cast<I>(magnitude) & 0x7fffffff) |
                               (reinterpret_cast<I>(sign) & static_cast<int32_t>(0x80000000u)));
  }
  static F safe_inverse(const F& d, const F& span) {
    constexpr float kLimit = 2097152.0f;  // 2^21
    const F id = splat(1.0f) / d;
    const F limited = vabs(id) * span > kLimit ? copysign(splat(kLimit) / span, id) : id;
    return d == splat(0.0f) ? splat(0.0f) : limited;
  }
  static F lane_sum(const F* a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }

  // level_of_product of the reference as a float: the fused product rounded to an
  // integer by the constant (exact below 2^22, which safe_inverse guarantees), then
  // clamped; the same value as the reference's integer clamp, in fewer operations.
  // Clamp false: the caller has shown that no element can round outside [lo, hi].
  template <bool Clamp = true>
  static F level_of_product(const F& x, const F& id, const SymSpec& s) {
    const F l = vfma(x, id, kRoundingConstant) - kRoundingConstant;
    if constexpr (!Clamp) return l;
    return vmin(vmax(l, splat(static_cast<float>(s.lo))), splat(static_cast<float>(s.hi)));
  }
  // Whether a trial that maps the block's extreme to `level` (the same in every lane)
  // can round any element outside [lo, hi]. Every |x_j| <= |max|, so every x_j * id
  // lies within |level| (times 1 + 2^-23 for id's rounding): below lo - 0.5 or above
  // hi + 0.5 it cannot go when |level| is below both, with a margin far above
  // that rounding. The clamps are then no-ops and are skipped: the same values.
  static bool trial_needs_clamp(float level, const SymSpec& s) {
    constexpr float kMargin = 0.05f;
    const float reach = std::fabs(level);
    return reach > static_cast<float>(-s.lo) - 0.5f - kMargin || reach > static_cast<float>(s.hi) + 0.5f - kMargin;
  }

  // sym_error of the reference, d per lane (fp16-exact). Unit: every weight is 1
  // (no importance), so w * e is e exactly and the product is skipped.
  template <bool Unit>
  static F error(const F* x, const F* w, const F& span, const F& d, const SymSpec& s) {
    const F id = safe_inverse(d, span), nd = -d;
    F acc[kLanes];
    for (int k = 0; k < kLanes; ++k) acc[k] = splat(0.0f);
    // Fully unrolled, so that the eight partial sums stay in registers.
#pragma GCC unroll 32
    for (int j = 0; j < QK; ++j) {
      const F e = vfma(level_of_product(x[j], id, s), nd, x[j]);
      acc[j % kLanes] = vfma(Unit ? e : w[j] * e, e, acc[j % kLanes]);
    }
    return lane_sum(acc);
  }
  // sym_refit of the reference: the least-squares scale and its gain (-1 where the
  // levels are all zero). wx[j] = w[j] * x[j], made once per block.
  template <bool Unit, bool Clamp = true>
  static void refit(const F* x, const F* w, const F* wx, const F& id, const SymSpec& s, F& d, F& gain) {
    F lx[kLanes], l2[kLanes];
    for (int k = 0; k < kLanes; ++k) lx[k] = l2[k] = splat(0.0f);
#pragma GCC unroll 32
    for (int j = 0; j < QK; ++j) {
      const F l = level_of_product<Clamp>(x[j], id, s);
      lx[j % kLanes] = vfma(wx[j], l, lx[j % kLanes]);
      l2[j % kLanes] = vfma(Unit ? l : w[j] * l, l, l2[j % kLanes]);
    }
    const F sumlx = lane_sum(lx), suml2 = lane_sum(l2);
    const I ok = suml2 > splat(0.0f);
    d = ok ? sumlx / suml2 : splat(0.0f);
    gain = ok ? sumlx * sumlx / suml2 : splat(-1.0f);
  }

  // TopK<float, K>::push of the reference in every lane (n is the same in all).
  template <int K>
  struct Top {
    F item[K] = {}, gain[K] = {};
    int n = 0;
    void push(const F& t, const F& g) {
      const int start = n < K ? n++ : K;
      I moving = isplat(-1);
      for (int p = start; p > 0; --p) {
        const I shift = moving & (gain[p - 1] < g);
        const I here = moving & ~shift;
        if (p < K) {
          item[p] = shift ? item[p - 1] : (here ? t : item[p]);
          gain[p] = shift ? gain[p - 1] : (here ? g : gain[p]);
        }
        moving = shift;
      }
      item[0] = moving ? t : item[0];
      gain[0] = moving ? g : gain[0];
    }
  };

  // ggml_search::make_qx (ggml's imatrix search, serial sums in ggml's order) for kL
  // blocks with ggml's weights gw; max is each block's signed absmax.
  static F make_qx(const F* x, const F* gw, const F& max, int nmax) {
    constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS, as ggml_search's
    auto code = [&](const F& v) LOWBIT_LANES_INLINE_LAMBDA {
      const I l = (reinterpret_cast<I>(v + 12582912.0f) & 0x007fffff) - 0x00400000;
      return __builtin_convertvector(l < -nmax ? isplat(-nmax) : (l > nmax - 1 ? isplat(nmax - 1) : l), F);
    };
    auto sums = [&](const F& iscale, F& sumlx, F& suml2) LOWBIT_LANES_INLINE_LAMBDA {
      sumlx = suml2 = splat(0.0f);
#pragma GCC unroll 32
      for (int j = 0; j < QK; ++j) {
        const F fl = code(iscale * x[j]);
        sumlx += gw[j] * x[j] * fl;
        suml2 += gw[j] * fl * fl;
      }
    };
    F sumlx, suml2;
    sums(splat(static_cast<float>(-nmax)) / max, sumlx, suml2);
    F scale = suml2 != splat(0.0f) ? sumlx / suml2 : splat(0.0f);
    F best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
      if (is == 0) continue;
      sums(splat(-(static_cast<float>(nmax) + 0.1f * static_cast<float>(is))) / max, sumlx, suml2);
      const I take = (suml2 > splat(0.0f)) & (sumlx * sumlx > best * suml2);
      scale = take ? sumlx / suml2 : scale;
      best = take ? scale * sumlx : best;
    }
    return vabs(max) < kGroupMaxEps ? splat(0.0f) : scale;
  }

  // The signed absmax of every lane's block (the first element of largest |x|).
  static F signed_absmax(const F* x) {
    F amax = splat(0.0f), max = splat(0.0f);
    for (int j = 0; j < QK; ++j) {
      const F ax = vabs(x[j]);
      const I gt = ax > amax;
      amax = gt ? ax : amax;
      max = gt ? x[j] : max;
    }
    return max;
  }

  // sym_search of the reference for kL blocks: x, w in lanes, ggml's scales per lane.
  template <bool Unit>
  static I search(const F* x, const F* w, const SymSpec& s, const F& ggml_d, const SymSearch& search,
                  const F& ggml_imatrix) {
    const F zero = splat(0.0f);
    F amax = zero, max = zero, rmin = x[0], rmax = x[0];
    for (int j = 0; j < QK; ++j) {
      const F ax = vabs(x[j]);
      const I gt = ax > amax;
      amax = gt ? ax : amax;
      max = gt ? x[j] : max;
      rmin = vmin(rmin, x[j]);
      rmax = vmax(rmax, x[j]);
    }
    const F span = vmax(-rmin, rmax);
    F wx[QK];
    for (int j = 0; j < QK; ++j) wx[j] = w[j] * x[j];

    I best_h = to_half(ggml_d);
    F best_err = error<Unit>(x, w, span, half_value(best_h), s);
    auto consider = [&](const F& d, I mask, bool check_clip) {
      const I h = to_half(d);
      const F dh = half_value(h);
      mask &= h != best_h;
      if (check_clip && !search.allow_clip) mask &= amax <= (static_cast<float>(-s.lo) + 0.5f) * vabs(dh);
      if (!any(mask)) return;
      const F e = error<Unit>(x, w, span, dh, s);
      const I take = mask & (e < best_err);
      best_err = take ? e : best_err;
      best_h = take ? h : best_h;
    };
    consider(ggml_imatrix, ggml_imatrix == ggml_imatrix, false);
    Top<4> top;
    Top<kMaxRefineTop> coarse;
    // A trial: the extreme on level side + offset, refitted, ranked. The offsets of
    // the fixed schedule are the same in every lane, so whether the clamps can act is
    // known per trial; a refinement's offsets differ by lane and keep them.
    auto trial = [&](const F& offset, int side, bool clamp) LOWBIT_LANES_INLINE_LAMBDA {
      F d, g;
      const F id = (splat(static_cast<float>(side)) + offset) / max;
      if (clamp)
        refit<Unit, true>(x, w, wx, id, s, d, g);
      else
        refit<Unit, false>(x, w, wx, id, s, d, g);
      top.push(d, g);
      return g;
    };
    auto scheduled = [&](float offset, int side) LOWBIT_LANES_INLINE_LAMBDA {
      return trial(splat(offset), side, trial_needs_clamp(static_cast<float>(side) + offset, s));
    };
    for (int k = 0; k < search.n_lo; ++k) coarse.push(splat(search.lo_offsets[k]), scheduled(search.lo_offsets[k], s.lo));
    for (int k = 0; k < search.n_hi; ++k) scheduled(search.hi_offsets[k], s.hi);
    for (int t = 0; t < coarse.n && t < search.refine_top; ++t) {
      trial(coarse.item[t] - search.refine_step, s.lo, true);
      trial(coarse.item[t] + search.refine_step, s.lo, true);
    }
    for (int k = 0; k < top.n && k < search.keep; ++k) {
      I live = top.gain[k] > zero;
      if (!any(live)) continue;
      F d = top.item[k];
      consider(d, live, true);
      for (int it = 0; it < search.lloyd; ++it) {
        const F dh = half_value(to_half(d));
        live &= dh != zero;
        if (!any(live)) break;
        F g;
        refit<Unit>(x, w, wx, safe_inverse(dh, amax), s, d, g);
        consider(d, live, true);
      }
    }

    // Polish: refit on the winner's own levels, then its fp16 neighbours.
    const F bd = half_value(best_h);
    F d, g;
    refit<Unit>(x, w, wx, safe_inverse(bd, amax), s, d, g);
    consider(d, bd != zero, true);
    const I h0 = best_h, mag = h0 & 0x7fff;
    const I inside = (mag != 0) & (mag < 0x7bff);
    consider(half_value(h0 + 1), inside, true);
    consider(half_value(h0 - 1), inside, true);
    return amax == zero ? isplat(0) : best_h;
  }
};

// asym_search of the reference (Q4_1, Q5_1) for lanes_of<F> blocks.
template <class F>
struct AsymLanes {
  using S = SymLanes<F>;
  using I = typename S::I;
  static constexpr int kL = S::kL;

  static F splat(float v) { return splat_as<F>(v); }
  // level_of_product(u, id, 0, nmax) as a float. Clamp false where the caller has
  // shown that the level cannot leave [0, nmax].
  template <bool Clamp = true>
  static F level_of_product(const F& u, const F& id, int nmax) {
    return S::template level_of_product<Clamp>(u, id, SymSpec{0, nmax});
  }

  // asym_error of the reference: stored (fp16-exact) d and m per lane. Unit: every
  // weight is 1 (see SymLanes::error).
  template <bool Unit>
  static F error(const F* x, const F* w, const F& rmin, const F& rmax, const F& d, const F& m, int nmax) {
    const F id = S::safe_inverse(d, vmax(vabs(rmax - m), vabs(rmin - m))), nd = -d;
    F acc[kLanes];
    for (int k = 0; k < kLanes; ++k) acc[k] = splat(0.0f);
#pragma GCC unroll 32
    for (int j = 0; j < QK; ++j) {
      const F u = x[j] - m;
      const F e = vfma(level_of_product(u, id, nmax), nd, u);
      acc[j % kLanes] = vfma(Unit ? e : w[j] * e, e, acc[j % kLanes]);
    }
    return S::lane_sum(acc);
  }

  // asym_refit of the reference: the least-squares (d, m) and gain; ok where it
  // returns true.
  template <bool Unit, bool Clamp = true>
  static I refit(const F* x, const F* w, const F* wx, const F& sw, const F& sx, const F& origin, const F& id,
                 int nmax, F& d, F& m, F& gain) {
    F a_l[kLanes], a_ll[kLanes], a_xl[kLanes];
    for (int k = 0; k < kLanes; ++k) a_l[k] = a_ll[k] = a_xl[k] = splat(0.0f);
#pragma GCC unroll 32
    for (int j = 0; j < QK; ++j) {
      const F l = level_of_product<Clamp>(x[j] - origin, id, nmax);
      // With unit weights fma(1, l, a) is a + l, rounded the same.
      a_l[j % kLanes] = Unit ? a_l[j % kLanes] + l : vfma(w[j], l, a_l[j % kLanes]);
      a_ll[j % kLanes] = vfma(Unit ? l : w[j] * l, l, a_ll[j % kLanes]);
      a_xl[j % kLanes] = vfma(wx[j], l, a_xl[j % kLanes]);
    }
    const F sl = S::lane_sum(a_l), sll = S::lane_sum(a_ll), sxl = S::lane_sum(a_xl);
    const F det = sw * sll - sl * sl;
    d = (sw * sxl - sx * sl) / det;
    m = (sll * sx - sl * sxl) / det;
    gain = d * sxl + m * sx;
    return (det > splat(0.0f)) & (d > splat(0.0f));
  }

  // TopK<Affine, 4> with asym_search's push (one copy per stored (d, m)), every lane
  // with its own count.
  struct Top {
    // Slots a lane has not filled yet are never read for it (n counts them), but
    // start from zeros rather than indeterminate values.
    F d[4] = {}, m[4] = {}, gain[4] = {};
    I hd[4] = {}, hm[4] = {};  // the stored (fp16) form of each item, for the duplicate check
    I n = splat_as<I>(0);
    void push(const F& cd, const F& cm, const F& g, I mask) {
      const I h_d = S::to_half(cd), h_m = S::to_half(cm);
      for (int k = 0; k < 4; ++k) mask &= ~((n > k) & (hd[k] == h_d) & (hm[k] == h_m));
      if (!any(mask)) return;
      const I start = n < 4 ? n : S::isplat(4);
      n = (mask & (n < 4)) ? n + 1 : n;
      I moving = mask;
      for (int p = 4; p > 0; --p) {
        const I act = moving & (start >= p);
        const I shift = act & (gain[p - 1] < g);
        const I here = act & ~shift;
        if (p < 4) {
          d[p] = shift ? d[p - 1] : (here ? cd : d[p]);
          m[p] = shift ? m[p - 1] : (here ? cm : m[p]);
          gain[p] = shift ? gain[p - 1] : (here ? g : gain[p]);
          hd[p] = shift ? hd[p - 1] : (here ? h_d : hd[p]);
          hm[p] = shift ? hm[p - 1] : (here ? h_m : hm[p]);
        }
        moving &= ~here;
      }
      d[0] = moving ? cd : d[0];
      m[0] = moving ? cm : m[0];
      gain[0] = moving ? g : gain[0];
      hd[0] = moving ? h_d : hd[0];
      hm[0] = moving ? h_m : hm[0];
    }
  };

  // ggml_search::make_qkx3 (ggml's imatrix search for Q4_1/Q5_1, serial sums in
  // ggml's order, its minimum moving with each winning trial) with ggml's weights gw:
  // the scale and the minimum per lane.
  static void make_qkx3(const F* x, const F* gw, int nmax, F& scale_out, F& min_out) {
    constexpr float rmin = -0.9f, rdelta = 0.05f;
    constexpr int nstep = 36;
    const F zero = splat(0.0f);
    auto code = [&](const F& v) LOWBIT_LANES_INLINE_LAMBDA {
      const I l = (reinterpret_cast<I>(v + 12582912.0f) & 0x007fffff) - 0x00400000;
      return __builtin_convertvector(imin(imax(l, S::isplat(0)), S::isplat(nmax)), F);
    };
    F min = x[0], max = x[0], sum_w = gw[0], sum_x = sum_w * x[0];
    for (int j = 1; j < QK; ++j) {
      min = x[j] < min ? x[j] : min;
      max = x[j] > max ? x[j] : max;
      sum_w += gw[j];
      sum_x += gw[j] * x[j];
    }
    min = min > zero ? zero : min;
    const I flat = max <= min;
    F iscale = splat(static_cast<float>(nmax)) / (max - min);
    F scale = splat(1.0f) / iscale;
    F best_mad = zero;
    for (int j = 0; j < QK; ++j) {
      F diff = scale * code(iscale * (x[j] - min)) + min - x[j];
      diff = diff * diff;
      best_mad += gw[j] * diff;
    }
    for (int is = 0; is <= nstep; ++is) {
      iscale = splat(rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
      F laux[QK], sum_l = zero, sum_l2 = zero, sum_xl = zero;
      for (int j = 0; j < QK; ++j) {
        laux[j] = code(iscale * (x[j] - min));
        sum_l += gw[j] * laux[j];
        sum_l2 += gw[j] * laux[j] * laux[j];
        sum_xl += gw[j] * laux[j] * x[j];
      }
      const F D = sum_w * sum_l2 - sum_l * sum_l;
      F this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      F this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      const I positive = this_min > zero;
      this_min = positive ? zero : this_min;
      this_scale = positive ? sum_xl / sum_l2 : this_scale;
      F mad = zero;
      for (int j = 0; j < QK; ++j) {
        F diff = this_scale * laux[j] + this_min - x[j];
        diff = diff * diff;
        mad += gw[j] * diff;
      }
      const I take = (D > zero) & (mad < best_mad);
      best_mad = take ? mad : best_mad;
      scale = take ? this_scale : scale;
      min = take ? this_min : min;
    }
    scale_out = flat ? zero : scale;
    min_out = min;
  }

  // The chosen (d, m) fp16 bits per lane.
  template <bool Unit>
  static void search(const F* x, const F* w, int nmax, const I& g_d, const I& g_m, const I& have_g,
                     const AsymSearch& search, I& out_d, I& out_m) {
    const F zero = splat(0.0f);
    F rmin = x[0], rmax = x[0];
    for (int j = 1; j < QK; ++j) {
      rmin = vmin(rmin, x[j]);
      rmax = vmax(rmax, x[j]);
    }
    I best_d = S::to_half((rmax - rmin) / static_cast<float>(nmax)), best_m = S::to_half(rmin);
    F best_err = error<Unit>(x, w, rmin, rmax, half_value(best_d), half_value(best_m), nmax);
    auto consider_half = [&](const I& hd, const I& hm, I mask) {
      mask &= (hd != best_d) | (hm != best_m);
      if (!any(mask)) return;
      const F e = error<Unit>(x, w, rmin, rmax, half_value(hd), half_value(hm), nmax);
      const I take = mask & (e < best_err);
      best_err = take ? e : best_err;
      best_d = take ? hd : best_d;
      best_m = take ? hm : best_m;
    };
    consider_half(g_d, g_m, have_g);
    const I flat = rmax == rmin;
    const I flat_d = best_d, flat_m = best_m;
    auto consider = [&](const F& d, const F& m, const I& mask) { consider_half(S::to_half(d), S::to_half(m), mask); };

    const F range = rmax - rmin;
    F sw = zero, sx = zero, wx[QK];
    for (int j = 0; j < QK; ++j) {
      wx[j] = w[j] * x[j];
      sw += w[j];
      sx += wx[j];
    }
    Top top;
    const I all = ~flat;
    F d, m, g;
    // Anchored at the minimum, x - min >= 0 exactly and x - min <= range, so with
    // id = (nmax + delta) / range and delta < 0.5 (minus a margin far above id's
    // rounding) no level leaves [0, nmax]: those trials, and the coarser grids below,
    // skip the clamps (the same values).
    for (int k = -10; k <= search.k_max; ++k) {
      const float delta = 0.2f * static_cast<float>(k);
      const F id = splat(static_cast<float>(nmax) + delta) / range;
      I ok = delta < 0.45f ? refit<Unit, false>(x, w, wx, sw, sx, rmin, id, nmax, d, m, g)
                           : refit<Unit, true>(x, w, wx, sw, sx, rmin, id, nmax, d, m, g);
      top.push(d, m, g, all & ok);
      ok = refit<Unit>(x, w, wx, sw, sx, rmax - splat(static_cast<float>(nmax)) / id, id, nmax, d, m, g);
      top.push(d, m, g, all & ok);
    }
    for (int levels = (nmax + 1) / 2; levels < nmax - 2; ++levels) {
      const I ok =
          refit<Unit, false>(x, w, wx, sw, sx, rmin, splat(static_cast<float>(levels)) / range, nmax, d, m, g);
      top.push(d, m, g, all & ok);
    }
    // A refit on the levels of the stored (d, m) hd, hm.
    auto refit_own = [&](const I& hd, const I& hm) LOWBIT_LANES_INLINE_LAMBDA {
      const F bd = half_value(hd), bm = half_value(hm);
      return (bd > zero) &
             refit<Unit>(x, w, wx, sw, sx, bm, S::safe_inverse(bd, vmax(rmax - bm, bm - rmin)), nmax, d, m, g);
    };
    for (int k = 0; k < 4; ++k) {
      I live = all & (top.n > k);
      consider(top.d[k], top.m[k], live);
      I cd = S::to_half(top.d[k]), cm = S::to_half(top.m[k]);
      for (int it = 0; it < search.lloyd && any(live); ++it) {
        live &= refit_own(cd, cm);
        consider(d, m, live);
        cd = S::to_half(d);
        cm = S::to_half(m);
      }
    }
    // Polish: refit on the winner's own levels, then the fp16 neighbours of d and m.
    for (int iter = 0; iter < 2; ++iter) {
      const I ok = refit_own(best_d, best_m);
      consider(d, m, all & ok);
    }
    const I cd = best_d, cm = best_m;
    const I md = cd & 0x7fff, mm = cm & 0x7fff;
    const I inside = all & (md != 0) & (md < 0x7bff) & (mm != 0) & (mm < 0x7bff);
    for (int dd = -1; dd <= 1; ++dd)
      for (int dm = -1; dm <= 1; ++dm)
        if (dd != 0 || dm != 0) consider_half(cd + dd, cm + dm, inside);
    out_d = flat ? flat_d : best_d;
    out_m = flat ? flat_m : best_m;
  }
};

// The inputs of kL blocks' searches, in lanes (lane g: block b0 + g, the last group
// padded with copies of the row's last block): the values, the objective's weights
// (importance_or_ones) and, where wanted, ggml's imatrix weights
// (ggml_search::imatrix_weights with the block's own sigma^2), made with the
// reference's operations lane by lane: the same maximum, power-of-two scale, serial
// sum of squares and correctly rounded square root.
template <class F>
struct BlockLanes {
  using I = typename LaneTypes<F>::I;
  static constexpr int kL = lanes_of<F>;
  F x[QK], w[QK], gw[QK];
  I have_gw;  // -1 where ggml's imatrix weights exist (some importance in the block positive)

  void load(const float* row, const float* importance, int64_t b0, int64_t nb, bool want_gw) {
    float t[kL][QK];
    for (int g = 0; g < kL; ++g) std::memcpy(t[g], row + std::min(b0 + g, nb - 1) * QK, sizeof t[g]);
    transpose_lanes<QK>(t[0], x);
    have_gw = splat_as<I>(0);
    if (importance == nullptr) {
      for (int j = 0; j < QK; ++j) w[j] = splat_as<F>(1.0f);
      return;
    }
    for (int g = 0; g < kL; ++g) std::memcpy(t[g], importance + std::min(b0 + g, nb - 1) * QK, sizeof t[g]);
    F imp[QK];
    transpose_lanes<QK>(t[0], imp);
    // unit_scaled_weights: the largest weight, and 2^-(ilogb(max) + 1) from its
    // exponent field while that scale is a normal float; other lanes (subnormal or
    // huge importance) take the reference's own path below.
    F wmax = splat_as<F>(0.0f);
    for (int j = 0; j < QK; ++j) wmax = vmax(wmax, imp[j]);
    const I positive = wmax > splat_as<F>(0.0f);
    const I exponent = (reinterpret_cast<I>(wmax) >> 23) & 0xff;
    if (any(positive & ((exponent == 0) | (exponent >= 252)))) return load_by_block(row, importance, b0, nb, want_gw);
    const F scale = reinterpret_cast<F>((253 - exponent) << 23);
    for (int j = 0; j < QK; ++j) w[j] = positive ? imp[j] * scale : splat_as<F>(1.0f);
    if (!want_gw) return;
    F sigma2 = splat_as<F>(0.0f);
    for (int j = 0; j < QK; ++j) sigma2 += x[j] * x[j];
    sigma2 = sigma2 / static_cast<float>(QK);
    for (int j = 0; j < QK; ++j) gw[j] = w[j] * vsqrt(sigma2 + x[j] * x[j]);
    have_gw = positive;
  }

 private:
  // The reference's per-block steps (importance_or_ones, ggml_search::imatrix_weights).
  void load_by_block(const float* row, const float* importance, int64_t b0, int64_t nb, bool want_gw) {
    float ws[kL][QK], gws[kL][QK], xs[kL][QK];
    int32_t have[kL];
    for (int g = 0; g < kL; ++g) {
      const int64_t b = std::min(b0 + g, nb - 1);
      const float* imp = importance + b * QK;
      std::memcpy(xs[g], row + b * QK, sizeof xs[g]);
      importance_or_ones(imp, ws[g]);
      have[g] = want_gw && ggml_search::imatrix_weights(xs[g], imp, ggml_search::row_sigma2(xs[g], QK), QK, gws[g])
                    ? -1
                    : 0;
    }
    transpose_lanes<QK>(ws[0], w);
    transpose_lanes<QK>(gws[0], gw);
    have_gw = load_vector<I>(have);
  }
};

// A row of an asymmetric format with kL blocks per search.
template <class F, class Block>
void asym_row_lanes(const float* x, void* y, int64_t n, const float* importance, int nmax,
                    void (*store)(const float*, AffineHalf, Block&), const AsymEffort& effort) {
  using L = AsymLanes<F>;
  using I = typename L::I;
  constexpr int kL = L::kL;
  auto* out = static_cast<Block*>(y);
  const int64_t nb = n / QK;
  BlockLanes<F> in;
  for (int64_t b0 = 0; b0 < nb; b0 += kL) {
    // asym_prepare's steps, with ggml's imatrix search (ggml_imatrix_affine) run in
    // the lanes below.
    in.load(x, importance, b0, nb, true);
    I g_d = splat_as<I>(0), g_m = splat_as<I>(0);
    if (any(in.have_gw)) {
      F scale, min;
      L::make_qkx3(in.x, in.gw, nmax, scale, min);
      g_d = SymLanes<F>::to_half(scale);
      g_m = SymLanes<F>::to_half(min);
    }
    I hd, hm;
    const AsymSearch& search = effort.search_for(importance);
    if (importance)
      L::template search<false>(in.x, in.w, nmax, g_d, g_m, in.have_gw, search, hd, hm);
    else
      L::template search<true>(in.x, in.w, nmax, g_d, g_m, in.have_gw, search, hd, hm);
    for (int g = 0; g < kL && b0 + g < nb; ++g)
      store(x + (b0 + g) * QK, AffineHalf{static_cast<uint16_t>(hd[g]), static_cast<uint16_t>(hm[g])}, out[b0 + g]);
  }
}

// A row of a symmetric format with kL blocks per search.
template <class F, class Block>
void sym_row_lanes(const float* x, void* y, int64_t n, const float* importance, const SymFormat& f,
                   void (*store)(const float*, uint16_t, Block&)) {
  using L = SymLanes<F>;
  constexpr int kL = L::kL;
  auto* out = static_cast<Block*>(y);
  const int64_t nb = n / QK;
  const bool guard = f.imatrix_guard && importance != nullptr;
  BlockLanes<F> in;
  for (int64_t b0 = 0; b0 < nb; b0 += kL) {
    // sym_prepare's steps, with ggml's imatrix search (ggml_imatrix_d) in the lanes.
    in.load(x, importance, b0, nb, guard);
    const F* xt = in.x;
    // ggml's scale (ggml_sym_d / ggml_q8_d) per lane: the same serial comparisons in
    // element order, for kL blocks at once instead of one dependent chain per block.
    F gd, max = splat_as<F>(0.0f);
    if (f.ggml_nmax > 0) {
      max = L::signed_absmax(xt);
      gd = max / static_cast<float>(-f.ggml_nmax);
    } else {
      F amax = splat_as<F>(0.0f);
      for (int j = 0; j < QK; ++j) amax = vmax(amax, vabs(xt[j]));
      gd = amax / 127.0f;
    }
    F ggml_imatrix = splat_as<F>(NAN);
    if (guard && any(in.have_gw)) {
      const F qx = L::make_qx(xt, in.gw, max, f.ggml_nmax);  // guard: a 4/5-bit format, max is set
      ggml_imatrix = in.have_gw ? qx : ggml_imatrix;
    }
    const SymSearch& search = f.search_for(importance);
    const typename L::I h = importance ? L::template search<false>(xt, in.w, f.spec, gd, search, ggml_imatrix)
                                       : L::template search<true>(xt, in.w, f.spec, gd, search, ggml_imatrix);
    for (int g = 0; g < kL && b0 + g < nb; ++g) store(x + (b0 + g) * QK, static_cast<uint16_t>(h[g]), out[b0 + g]);
  }
}

}  // namespace
}  // namespace lowbit::kernels
