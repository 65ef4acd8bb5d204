#pragma once
// The standard-effort searches of IQ4_NL and IQ4_XS (kernels/cpu/reference/
// iq4_search.hpp) with one block (IQ4_NL) or sub-block (IQ4_XS's per-sub-block steps)
// per vector lane, eight at a time, byte-identical to the scalar reference. The
// reference's code-book look-up (nearest_index: the half-unit cell floor(2v) + 256,
// then a table) is a bucketed comparison with permute look-ups on x86 (cell_index);
// elsewhere the cell's lower end is compared with the fifteen midpoints between
// neighbouring code values, the table's own construction. ggml's iq4_index is the
// same look-up on an exactly floored cell (ggml_value). The sums stay serial, the
// ranking keeps its order, and fp16 rounding is the ISA's conversion
// (legacy_search_lanes.hpp's half_bits / half_value). The per-block steps around the
// search (weights, ggml's weights, writing the block) are the reference's own code.
//
// The including file defines V, Vi, Vd, Vdi as search_lanes.hpp says.
#include <array>
#include <cstdint>
#include <cstring>

#include "cpu/lanes/legacy_search_lanes.hpp"
#include "cpu/lanes/search_lanes.hpp"
#include "cpu/reference/iq4_search.hpp"

namespace lowbit::kernels {
namespace {

#if defined(__AVX2__)
// The index of a half-unit cell's code value (kCellIndex[c]) without a gather: the
// cell's 32-cell bucket (c >> 5, 0..15) gives how many of the fifteen thresholds lie
// below the bucket and the at most two inside it, and the cell is compared with those.
// Threshold k, between code values k and k + 1, is the first cell whose lower end
// reaches their midpoint: 2 * midpoint + 256 = kValues[k] + kValues[k + 1] + 256.
// Three 16-entry look-ups (two vpermd and a blend each) and two comparisons: on Zen 3
// an eight-lane gather cost more than the whole rest of a trial's element step.
struct CellBuckets {
  int32_t below[16];     // thresholds in buckets before this one
  int32_t first[16];     // the bucket's first threshold minus one (above every cell where none)
  int32_t second[16];    // its second
};
constexpr CellBuckets make_cell_buckets() {
  CellBuckets t{};
  constexpr int32_t kNone = 1 << 20;
  for (int b = 0; b < 16; ++b) {
    t.first[b] = t.second[b] = kNone;
    int n = 0;
    for (int k = 0; k < 15; ++k) {
      const int32_t threshold = static_cast<int32_t>(kValues[k] + kValues[k + 1]) + 256;
      if (threshold < 32 * b) ++t.below[b];
      else if (threshold < 32 * b + 32) (n++ == 0 ? t.first[b] : t.second[b]) = threshold - 1;
    }
    if (n > 2) throw "a bucket holds more than two thresholds";  // not a constant expression: fails the build
  }
  return t;
}
alignas(32) constexpr CellBuckets kCellBuckets = make_cell_buckets();
alignas(32) constexpr std::array<float, 16> kBookValues = kValues;

// table[i] per lane for i in 0..15 (two registers of eight entries).
inline __m256i lookup16(const int32_t* table, __m256i i) {
  const __m256i lo = _mm256_permutevar8x32_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(table)), i);
  const __m256i hi = _mm256_permutevar8x32_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(table + 8)), i);
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(lo), _mm256_castsi256_ps(hi),
                                              _mm256_castsi256_ps(_mm256_slli_epi32(i, 28))));
}
inline V book_value(const Vi& index) {
  const __m256i i = reinterpret_cast<__m256i>(index);
  const __m256 lo = _mm256_permutevar8x32_ps(_mm256_load_ps(kBookValues.data()), i);
  const __m256 hi = _mm256_permutevar8x32_ps(_mm256_load_ps(kBookValues.data() + 8), i);
  return reinterpret_cast<V>(_mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(i, 28))));
}
inline Vi cell_index(const Vi& cell) {
  const __m256i c = reinterpret_cast<__m256i>(cell);
  const __m256i bucket = _mm256_srli_epi32(c, 5);
  const __m256i past_first = _mm256_cmpgt_epi32(c, lookup16(kCellBuckets.first, bucket));
  const __m256i past_second = _mm256_cmpgt_epi32(c, lookup16(kCellBuckets.second, bucket));
  return reinterpret_cast<Vi>(
      _mm256_sub_epi32(_mm256_sub_epi32(lookup16(kCellBuckets.below, bucket), past_first), past_second));
}
#endif

template <class F>
struct Iq4Lanes {
  using I = typename LaneTypes<F>::I;
  static constexpr int kL = lanes_of<F>;

  static F splat(float v) { return splat_as<F>(v); }

  static F clamp_to_book(F v) {
    v = v > splat(kValues[0]) ? v : splat(kValues[0]);
    return v < splat(kValues[15]) ? v : splat(kValues[15]);
  }
  // kValues[nearest_index(v)] of the reference (whose cell, floor(2v) + 256, comes
  // from one rounded addition, as there).
  static F nearest_value(const F& v) {
    const I cell = __builtin_convertvector(2.0f * clamp_to_book(v) + 256.0f, I);
#if defined(__AVX2__)
    return book_value(cell_index(cell));
#else
    return code_at_or_below(0.5f * (__builtin_convertvector(cell, F) - 256.0f));
#endif
  }
  // The code value of the last midpoint at or below a cell's lower end `lo`: the
  // cells table's own construction, without a table.
  static F code_at_or_below(const F& lo) {
    F q = splat(kValues[0]);
    for (int i = 0; i < 15; ++i) q = lo >= splat(0.5f * (kValues[i] + kValues[i + 1])) ? splat(kValues[i + 1]) : q;
    return q;
  }
  // kIq4nlValues[ggml_search::iq4_index(v)] (finite v): the exactly nearest code
  // value, ties up, as kernels/common/iq4_buckets.hpp argues (near a midpoint ggml's
  // two subtractions are exact), and as a comparison with ggml's binary search over
  // every finite float of magnitude up to 300 confirmed. So nearest_value's look-up,
  // on the cell of an exact floor(2v) instead of the reference's rounded 2v + 256
  // (which moves a few values just below a midpoint into the cell above): one look-up
  // where comparisons with all fifteen neighbour pairs were.
  static F ggml_value(const F& v) {
    const F t = 2.0f * clamp_to_book(v);
    I floor_t = __builtin_convertvector(t, I);
    floor_t += __builtin_convertvector(floor_t, F) > t;  // truncation -> floor: -1 where it rounded up
#if defined(__AVX2__)
    return book_value(cell_index(floor_t + 256));
#else
    return code_at_or_below(0.5f * __builtin_convertvector(floor_t, F));
#endif
  }

  // nl_error of the reference, d per lane.
  static F error(const F* x, const F* w, const F& d) {
    const F zero = splat(0.0f);
    const F id = d != zero ? splat(1.0f) / d : zero;
    F err = zero;
    for (int j = 0; j < QB; ++j) {
      const F e = x[j] - d * nearest_value(x[j] * id);
      err += w[j] * e * e;
    }
    return err;
  }
  // nl_refit of the reference: the scale and gain (0 and -1 where sumq2 <= 0).
  static void refit(const F* x, const F* w, const F& id, F& d, F& gain) {
    F sumqx = splat(0.0f), sumq2 = splat(0.0f);
    for (int j = 0; j < QB; ++j) {
      const F q = nearest_value(x[j] * id);
      sumqx += w[j] * q * x[j];
      sumq2 += w[j] * q * q;
    }
    const I ok = sumq2 > splat(0.0f);
    d = ok ? sumqx / sumq2 : splat(0.0f);
    gain = ok ? sumqx * sumqx / sumq2 : splat(-1.0f);
  }

  // ggml_search::iq4_scale for every lane's block with ggml's weights gw.
  static F ggml_scale(const F* x, const F* gw, const F& max) {
    constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS, as ggml_search's
    const F zero = splat(0.0f);
    auto fit = [&](const F& id, F& sumqx, F& sumq2) LOWBIT_LANES_INLINE_LAMBDA {
      sumqx = sumq2 = zero;
      for (int j = 0; j < QB; ++j) {
        const F q = ggml_value(id * x[j]);
        sumqx += gw[j] * q * x[j];
        sumq2 += gw[j] * q * q;
      }
    };
    const float v0 = static_cast<float>(kIq4nlValues[0]);
    F sumqx, sumq2;
    fit(splat(1.0f) / (-max / v0), sumqx, sumq2);
    const I started = sumq2 > zero;
    F d = sumqx / sumq2, best = d * sumqx;
    for (int itry = -7; itry <= 7; ++itry) {
      fit(splat(static_cast<float>(itry + kIq4nlValues[0])) / max, sumqx, sumq2);
      const I take = (sumq2 > zero) & (sumqx * sumqx > best * sumq2);
      d = take ? sumqx / sumq2 : d;
      best = take ? d * sumqx : best;
    }
    return (vabs(max) < kGroupMaxEps) | ~started ? zero : d;
  }

  // nl_search of the reference, its `round` fp16 (IQ4_NL) or none (an IQ4_XS
  // sub-block), ggml_d per lane (0: none).
  template <bool kFp16>
  static F search(const F* x, const F* w, const F& max, const F& ggml_d) {
    constexpr int kKeep = 4;
    const F zero = splat(0.0f);
    auto round = [](const F& v) LOWBIT_LANES_INLINE_LAMBDA {
      if constexpr (kFp16)
        return half_value(SymLanes<F>::to_half(v));
      else
        return v;
    };
    // rank(): the reference's insertion above the first kept fit with a lower gain.
    F top_d[kKeep], top_g[kKeep];
    for (int k = 0; k < kKeep; ++k) top_d[k] = zero, top_g[k] = splat(-1.0f);
    auto rank = [&](const F& d, const F& g) {
      I before = splat_as<I>(0);
      for (int k = 0; k < kKeep; ++k) {
        const I here = ~before & (g > top_g[k]);
        const F prev_d = top_d[k], prev_g = top_g[k];
        top_d[k] = here ? d : top_d[k];
        top_g[k] = here ? g : top_g[k];
        // Positions after the insertion take what was one above them.
        for (int m = kKeep - 1; m > k; --m) {
          top_d[m] = here ? (m == k + 1 ? prev_d : top_d[m - 1]) : top_d[m];
          top_g[m] = here ? (m == k + 1 ? prev_g : top_g[m - 1]) : top_g[m];
        }
        before |= here;
      }
    };
    F d, g;
    for (int t = kLowTrials.from; t <= kLowTrials.to; t += kTrialStep) {
      refit(x, w, splat(kValues[0] + static_cast<float>(t)) / max, d, g);
      rank(d, g);
    }
    for (int t = kHighTrials.from; t <= kHighTrials.to; t += kTrialStep) {
      refit(x, w, splat(kValues[15] + static_cast<float>(t)) / max, d, g);
      rank(d, g);
    }
    F best_d = round(max / kValues[0]);
    F best_err = error(x, w, best_d);
    auto consider = [&](const F& dc, const I& mask) {
      if (!any(mask)) return;
      const F r = round(dc);
      const F e = error(x, w, r);
      const I take = mask & (r != best_d) & (e < best_err);
      best_err = take ? e : best_err;
      best_d = take ? r : best_d;
    };
    consider(ggml_d, ggml_d != zero);
    for (int k = 0; k < kKeep; ++k) consider(top_d[k], top_g[k] >= zero);
    // Polish: refit on the winner's own indices.
    refit(x, w, splat(1.0f) / best_d, d, g);
    consider(d, best_d != zero);
    return best_d;
  }
};

// A row of IQ4_NL with kL blocks per search (padded as sym_row_lanes).
template <class F>
void iq4_nl_row_lanes(const float* x, void* y, int64_t n, const float* importance) {
  using L = Iq4Lanes<F>;
  constexpr int kL = L::kL;
  auto* out = static_cast<block_iq4_nl*>(y);
  const int64_t nb = n / QB;
  float xs[kL][QB], ws[kL][QB], gws[kL][QB], maxs[kL];
  for (int64_t b0 = 0; b0 < nb; b0 += kL) {
    for (int g = 0; g < kL; ++g) {
      const int64_t b = std::min(b0 + g, nb - 1);
      const float* imp = importance ? importance + b * QB : nullptr;
      std::memcpy(xs[g], x + b * QB, sizeof xs[g]);
      objective_weights(imp, QB, ws[g]);
      maxs[g] = ggml_search::signed_absmax(xs[g], QB);
      ggml_search::iq4_weights(xs[g], imp, QB, gws[g]);
    }
    F xt[QB], wt[QB], gwt[QB];
    transpose_lanes<QB>(xs[0], xt);
    transpose_lanes<QB>(ws[0], wt);
    transpose_lanes<QB>(gws[0], gwt);
    const F max = load_vector<F>(maxs);
    const F d = L::template search<true>(xt, wt, max, L::ggml_scale(xt, gwt, max));
    for (int g = 0; g < kL && b0 + g < nb; ++g)
      store_iq4_nl(x + (b0 + g) * QB, maxs[g] != 0.0f ? d[g] : 0.0f, out[b0 + g]);
  }
}

// The per-sub-block steps of the IQ4_XS search (ScalarXsOps) with the eight
// sub-blocks of a super-block in the eight lanes of V. sub_scales() comes first for
// every super-block and keeps its elements and weights in lane order for evaluate().
struct LaneXsOps {
  using L = Iq4Lanes<V>;
  V x[QB], w[QB];

  void sub_scales(const float* xs, const float* wb, float* scales) {
    transpose_lanes<QB>(xs, x);
    transpose_lanes<QB>(wb, w);
    const V max = SymLanes<V>::signed_absmax(x), zero = L::splat(0.0f);
    const V s = L::template search<false>(x, w, max, zero);
    const V out = max != zero ? s : zero;
    std::memcpy(scales, &out, sizeof out);
  }

  // xs_evaluate of the reference: the two integer scales around scale/d (and ggml's,
  // when given) per sub-block, by measured error.
  XsChoice evaluate(const float*, const float*, const float* counts, const float* scales, float d,
                    const int* extra) {
    const V vd = L::splat(d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const V r = vclamp(load_vector<V>(scales) * id, -32.0f, 31.0f);
    const Vi t = __builtin_convertvector(r, Vi);
    const Vi lo = __builtin_convertvector(t, V) > r ? t - 1 : t;
    const Vi hi = lo + 1 < 31 ? lo + 1 : splat_as<Vi>(31);
    Vi best_l = lo;
    V best_e = L::error(x, w, vd * __builtin_convertvector(lo, V));
    const Vi has_hi = hi != lo;
    if (any(has_hi)) {
      const V e = L::error(x, w, vd * __builtin_convertvector(hi, V));
      const Vi take = has_hi & (e < best_e);
      best_e = take ? e : best_e;
      best_l = take ? hi : best_l;
    }
    if (extra != nullptr) {
      const Vi ex = load_vector<Vi>(extra);
      const Vi has_ex = (ex != lo) & (ex != hi);
      if (any(has_ex)) {
        const V e = L::error(x, w, vd * __builtin_convertvector(ex, V));
        const Vi take = has_ex & (e < best_e);
        best_e = take ? e : best_e;
        best_l = take ? ex : best_l;
      }
    }
    XsChoice c{};
    std::memcpy(c.ls, &best_l, sizeof best_l);
    for (int ib = 0; ib < kXsSubs; ++ib) c.err += counts[ib] * best_e[ib];
    return c;
  }

  // ggml's sub-block scales of the super-block sub_scales() saw, with ggml's weights.
  void ggml_scales(const float*, const float* gw, float* out) {
    V gwt[QB];
    transpose_lanes<QB>(gw, gwt);
    const V s = L::ggml_scale(x, gwt, SymLanes<V>::signed_absmax(x));
    std::memcpy(out, &s, sizeof s);
  }
};

}  // namespace
}  // namespace lowbit::kernels
