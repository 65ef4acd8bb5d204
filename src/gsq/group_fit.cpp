#include "lowbit/gsq/group_fit.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "lowbit/core/half.hpp"

namespace lowbit {
namespace {

struct View {
  const float* x;
  int64_t n, stride;
  const float* w;
  int64_t wstride;
  float at(int64_t i) const { return x[i * stride]; }
  double weight(int64_t i) const { return w ? static_cast<double>(w[i * wstride]) : 1.0; }
};

int maxq_of(const GsqConfig& c) { return (1 << c.bits) - 1; }
using detail::round_even;

// sum w (decode(encode(x)) - x)^2 in double, for one scheme: the search's inner
// loop, written out so it runs without calls or per-element branches. Same
// arithmetic as encode_value / decode_value.
template <bool FloatMin, bool Weighted>
double squared_error(const GroupParams& p, const View& v, float maxq) {
  const float s = p.scale, m = p.min, z = static_cast<float>(p.zero);
  constexpr int64_t kChunk = 256;
  float x[kChunk], dec[kChunk];
  double lanes[4] = {0, 0, 0, 0};
  for (int64_t i0 = 0; i0 < v.n; i0 += kChunk) {
    const int64_t len = std::min(kChunk, v.n - i0);
    for (int64_t i = 0; i < len; ++i) x[i] = v.at(i0 + i);
    // Float part first, in a loop the compiler vectorises (no calls, no branches)...
    for (int64_t i = 0; i < len; ++i) {
      if (FloatMin) {
        const float q = std::min(std::max(round_even((x[i] - m) / s), 0.0f), maxq);
        dec[i] = s * q + m;
      } else {
        const float q = std::min(std::max(round_even(x[i] / s) + z, 0.0f), maxq);
        dec[i] = s * (q - z);
      }
    }
    // ...then the double sum in four interleaved lanes (element i into lane i % 4),
    // combined as (l0 + l1) + (l2 + l3): a fixed order, so the result is the same on
    // every machine, without one long chain of dependent additions.
    for (int64_t i = 0; i < len; ++i) {
      const double d = static_cast<double>(dec[i]) - x[i];
      lanes[(i0 + i) & 3] += (Weighted ? v.weight(i0 + i) : 1.0) * (d * d);
    }
  }
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

// sum w |decode(encode(x)) - x|^norm, in double.
double group_error(const GsqConfig& c, const GroupParams& p, const View& v, double norm) {
  const bool fmin = c.scheme == GsqScheme::asymmetric_float;
  if (norm == 2.0 && p.scale != 0.0f) {
    const auto maxq = static_cast<float>(maxq_of(c));
    if (fmin) return v.w ? squared_error<true, true>(p, v, maxq) : squared_error<true, false>(p, v, maxq);
    return v.w ? squared_error<false, true>(p, v, maxq) : squared_error<false, false>(p, v, maxq);
  }
  double err = 0;
  for (int64_t i = 0; i < v.n; ++i) {
    const float x = v.at(i);
    const double d = std::fabs(static_cast<double>(decode_value(c, p, encode_value(c, p, x))) - x);
    err += v.weight(i) * (norm == 2.0 ? d * d : std::pow(d, norm));
  }
  return err;
}

// Parameters for the value range [lo, hi] (already shrunk, if searching).
GroupParams params_for_range(const GsqConfig& c, float lo, float hi, float signed_max, bool alt_symmetric) {
  GroupParams p;
  const int maxq = maxq_of(c);
  switch (c.scheme) {
    case GsqScheme::symmetric: {
      const int half = 1 << (c.bits - 1);
      p.zero = half;
      // Default: the largest magnitude lands on the most negative code (-2^(b-1)),
      // using the full range, as Q4_0 does. Alternative: on the largest positive code,
      // as GPTQ's symmetric quantizer does.
      p.scale = round_to_storage(c.scale_storage, alt_symmetric ? signed_max / static_cast<float>(half - 1)
                                                                : signed_max / -static_cast<float>(half));
      break;
    }
    case GsqScheme::asymmetric: {
      lo = std::min(lo, 0.0f);  // zero must be representable exactly
      hi = std::max(hi, 0.0f);
      if (hi == lo) break;
      p.scale = round_to_storage(c.scale_storage, (hi - lo) / static_cast<float>(maxq));
      if (p.scale == 0.0f) break;
      p.zero = static_cast<int32_t>(std::clamp(round_even(-lo / p.scale), 0.0f, static_cast<float>(maxq)));
      break;
    }
    case GsqScheme::asymmetric_float:
      p.min = round_to_storage(c.scale_storage, lo);
      if (hi > lo) p.scale = round_to_storage(c.scale_storage, (hi - lo) / static_cast<float>(maxq));
      break;
  }
  if (!std::isfinite(p.scale)) p.scale = 0.0f;
  return p;
}

// With the codes fixed, the weighted least-squares fit of w ~ s * q + b (both
// asymmetric schemes: b is the minimum, or -s * zero with the zero then rounded to an
// integer) or of w ~ s * (q - zero) with the zero fixed (symmetric). Re-coding with
// the refitted parameters is the caller's business.
GroupParams refit(const GsqConfig& c, const GroupParams& p, const View& v) {
  GroupParams r = p;
  if (c.scheme != GsqScheme::symmetric) {
    double sw = 0, sq = 0, sx = 0, sqq = 0, sqx = 0;
    for (int64_t i = 0; i < v.n; ++i) {
      const double w = v.weight(i), q = encode_value(c, p, v.at(i)), x = v.at(i);
      sw += w, sq += w * q, sx += w * x, sqq += w * q * q, sqx += w * q * x;
    }
    const double det = sw * sqq - sq * sq;
    if (!(det > 0)) return p;
    const double scale = (sw * sqx - sq * sx) / det, offset = (sqq * sx - sq * sqx) / det;
    r.scale = round_to_storage(c.scale_storage, static_cast<float>(scale));
    if (c.scheme == GsqScheme::asymmetric_float) {
      r.min = round_to_storage(c.scale_storage, static_cast<float>(offset));
    } else {
      if (!(r.scale > 0)) return p;
      r.zero = static_cast<int32_t>(std::clamp(std::nearbyint(-offset / r.scale), 0.0, static_cast<double>(maxq_of(c))));
    }
  } else {
    double num = 0, den = 0;
    for (int64_t i = 0; i < v.n; ++i) {
      const double w = v.weight(i), q = static_cast<double>(encode_value(c, p, v.at(i))) - p.zero;
      num += w * q * v.at(i), den += w * q * q;
    }
    if (!(den > 0)) return p;
    r.scale = round_to_storage(c.scale_storage, static_cast<float>(num / den));
  }
  if (!std::isfinite(r.scale) || !std::isfinite(r.min)) return p;
  return r;
}

// HQQ (Badri & Shaji 2023): minimise ||x - s (q - z)||_p^p (p < 1) by half-quadratic
// splitting. Each step: codes for the current (s, z); the residual's generalised
// soft threshold e = shrink_lp(x - s (q - z)); then, alternately, the zero point and
// the scale that best explain x - e with those codes. Starts from min/max.
GroupParams hqq(const GsqConfig& c, GroupParams p, const View& v) {
  if (p.scale == 0.0f) return p;
  const int maxq = maxq_of(c);
  double s = p.scale;
  // Work with a float zero z: w = s (q - z); for the float scheme z = -min / s.
  double z = c.scheme == GsqScheme::asymmetric_float ? -p.min / s : p.zero;
  double beta = c.hqq_beta;
  std::vector<double> q(static_cast<size_t>(v.n)), target(static_cast<size_t>(v.n));
  for (int it = 0; it < c.hqq_iters; ++it) {
    for (int64_t i = 0; i < v.n; ++i) {
      const double x = v.at(i);
      q[i] = std::clamp(std::nearbyint(x / s + z), 0.0, static_cast<double>(maxq));
      const double r = x - s * (q[i] - z);
      const double a = std::fabs(r);
      const double e = std::copysign(std::max(0.0, a - std::pow(a + 1e-8, c.hqq_p - 1.0) / beta), r);
      target[i] = x - e;  // what s (q - z) should reproduce
    }
    // Zero point with the scale fixed: mean of q - target / s.
    double acc = 0;
    for (int64_t i = 0; i < v.n; ++i) acc += q[i] - target[i] / s;
    z = acc / static_cast<double>(v.n);
    // Scale with the zero fixed: least squares of target on (q - z).
    double num = 0, den = 0;
    for (int64_t i = 0; i < v.n; ++i) num += target[i] * (q[i] - z), den += (q[i] - z) * (q[i] - z);
    if (den > 0 && num / den > 0) s = num / den;
    beta *= c.hqq_kappa;
  }
  GroupParams out = p;
  out.scale = round_to_storage(c.scale_storage, static_cast<float>(s));
  if (!std::isfinite(out.scale) || out.scale <= 0) return p;
  if (c.scheme == GsqScheme::asymmetric_float) {
    out.min = round_to_storage(c.scale_storage, static_cast<float>(-z * s));
  } else {
    out.zero = static_cast<int32_t>(std::clamp(std::nearbyint(z), 0.0, static_cast<double>(maxq)));
  }
  return out;
}

}  // namespace

float round_to_storage(ScaleStorage s, float v) {
  switch (s) {
    case ScaleStorage::fp16: return round_fp16(v);
    case ScaleStorage::bf16: return bf16_to_fp32(fp32_to_bf16(v));
    case ScaleStorage::fp32: return v;
  }
  return v;
}

GroupParams fit_group(const GsqConfig& c, const float* x, int64_t n, int64_t stride, const float* w,
                      int64_t wstride) {
  // Only the importance search weights the error; the others fit the plain values.
  View v{x, n, stride, c.search == ScaleSearch::importance ? w : nullptr, wstride};
  if (n <= 0) return params_for_range(c, 0, 0, 0, false);
  // A group whose importance is all zero: every choice costs nothing, so fall back to
  // the unweighted fit rather than an arbitrary one.
  if (v.w) {
    bool any = false;
    for (int64_t i = 0; i < n && !any; ++i) any = v.w[i * wstride] > 0;
    if (!any) v.w = nullptr;
  }
  float lo = v.at(0), hi = v.at(0), signed_max = v.at(0);
  for (int64_t i = 1; i < n; ++i) {
    const float a = v.at(i);
    lo = std::min(lo, a), hi = std::max(hi, a);
    if (std::fabs(a) > std::fabs(signed_max)) signed_max = a;
  }
  const GroupParams rtn = params_for_range(c, lo, hi, signed_max, false);
  if (c.search == ScaleSearch::rtn) return rtn;
  if (c.search == ScaleSearch::hqq) {
    // HQQ minimises an lp norm (p < 1); keep its zero only when it also lowers the
    // squared error, so the mode is never worse than min/max rounding.
    const GroupParams h = hqq(c, rtn, v);
    return group_error(c, h, v, 2.0) < group_error(c, rtn, v, 2.0) ? h : rtn;
  }

  // mse / importance: GPTQ's shrinking grid, scored by the configured norm.
  const double norm = c.mse_norm;
  GroupParams best = rtn;
  double best_err = group_error(c, rtn, v, norm);
  const int steps = static_cast<int>(c.mse_max_shrink * c.mse_grid);
  for (int i = 0; i < steps; ++i) {
    const float shrink = 1.0f - static_cast<float>(i) / static_cast<float>(c.mse_grid);
    for (int alt = 0; alt < (c.scheme == GsqScheme::symmetric ? 2 : 1); ++alt) {
      const GroupParams p = params_for_range(c, lo * shrink, hi * shrink, signed_max * shrink, alt == 1);
      const double err = group_error(c, p, v, norm);
      if (err < best_err) best_err = err, best = p;
    }
  }
  // Least-squares refits with the codes held fixed; kept only when they help.
  for (int it = 0; it < 4; ++it) {
    const GroupParams p = refit(c, best, v);
    const double err = group_error(c, p, v, norm);
    if (!(err < best_err)) break;
    best_err = err, best = p;
  }
  return best;
}

}  // namespace lowbit
