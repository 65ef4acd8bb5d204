#include "lowbit/gsq/group_fit.hpp"

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "lowbit/core/half.hpp"
#include "lowbit/kernels/gsq_search.hpp"

namespace lowbit {
namespace {

// One group's values and importance weights (null: all 1), contiguous.
struct View {
  const float* x;
  int64_t n;
  const float* w;
  float at(int64_t i) const { return x[i]; }
  double weight(int64_t i) const { return w ? static_cast<double>(w[i]) : 1.0; }
};

int maxq_of(const GsqConfig& c) { return (1 << c.bits) - 1; }
using detail::round_even;

// sum w |decode(encode(x)) - x|^norm in double, one candidate, in element order: the
// candidates the gsq_search kernels do not take (a zero scale, a norm other than 2).
double generic_error(const GsqConfig& c, const GroupParams& p, const View& v, double norm) {
  double err = 0;
  for (int64_t i = 0; i < v.n; ++i) {
    const float x = v.at(i);
    const double d = std::fabs(static_cast<double>(decode_value(c, p, encode_value(c, p, x))) - x);
    err += v.weight(i) * (norm == 2.0 ? d * d : std::pow(d, norm));
  }
  return err;
}

// Per-thread buffers of the search, reused from group to group.
struct SearchScratch {
  std::vector<float> x, w, scales, offsets;
  std::vector<int64_t> index;
  std::vector<GroupParams> candidates;
  std::vector<double> errors, candidate_errors;
};
SearchScratch& scratch() {
  thread_local SearchScratch s;
  return s;
}

// err[k] = sum w |decode(encode(x)) - x|^norm of candidate k. For norm 2 the candidates
// with a nonzero scale go to the gsq_search family in one call: its variants put
// candidates in vector lanes and return the scalar reference's doubles, so the search
// picks the same parameters on every machine.
void candidate_errors(const GsqConfig& c, const View& v, double norm, std::span<const GroupParams> cand,
                      double* err) {
  SearchScratch& s = scratch();
  s.scales.clear(), s.offsets.clear(), s.index.clear();
  const bool fmin = c.scheme == GsqScheme::asymmetric_float;
  for (size_t k = 0; k < cand.size(); ++k) {
    if (norm == 2.0 && cand[k].scale != 0.0f) {
      s.scales.push_back(cand[k].scale);
      s.offsets.push_back(fmin ? cand[k].min : static_cast<float>(cand[k].zero));
      s.index.push_back(static_cast<int64_t>(k));
    } else {
      err[k] = generic_error(c, cand[k], v, norm);
    }
  }
  if (s.index.empty()) return;
  const GsqCandidateSet set{s.scales.data(), s.offsets.data(), static_cast<int64_t>(s.index.size()),
                            static_cast<float>(maxq_of(c)), fmin};
  s.errors.resize(s.index.size());
  gsq_search_kernels().select(GsqSearchKey{}).fn(set, v.x, v.w, v.n, s.errors.data());
  for (size_t j = 0; j < s.index.size(); ++j) err[s.index[j]] = s.errors[j];
}

double group_error(const GsqConfig& c, const GroupParams& p, const View& v, double norm) {
  double err = 0;
  candidate_errors(c, v, norm, std::span<const GroupParams>(&p, 1), &err);
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
  if (n <= 0) return params_for_range(c, 0, 0, 0, false);
  // Only the importance search weights the error; the others fit the plain values.
  if (c.search != ScaleSearch::importance) w = nullptr;
  // A group whose importance is all zero: every choice costs nothing, so fall back to
  // the unweighted fit rather than an arbitrary one.
  if (w) {
    bool any = false;
    for (int64_t i = 0; i < n && !any; ++i) any = w[i * wstride] > 0;
    if (!any) w = nullptr;
  }
  // The kernels read contiguous values: gather a strided group (GPTQ's columns).
  SearchScratch& s = scratch();
  if (stride != 1) {
    s.x.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) s.x[i] = x[i * stride];
    x = s.x.data();
  }
  if (w && wstride != 1) {
    s.w.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) s.w[i] = w[i * wstride];
    w = s.w.data();
  }
  const View v{x, n, w};
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
    const GroupParams both[2] = {hqq(c, rtn, v), rtn};
    double err[2];
    candidate_errors(c, v, 2.0, both, err);
    return err[0] < err[1] ? both[0] : rtn;
  }

  // mse / importance: GPTQ's shrinking grid, scored by the configured norm; every
  // candidate's error first (one kernel call), then the reference's choice in order:
  // rtn unless a later candidate is strictly better.
  const double norm = c.mse_norm;
  std::vector<GroupParams>& cand = s.candidates;
  cand.assign(1, rtn);
  const int steps = static_cast<int>(c.mse_max_shrink * c.mse_grid);
  for (int i = 0; i < steps; ++i) {
    const float shrink = 1.0f - static_cast<float>(i) / static_cast<float>(c.mse_grid);
    for (int alt = 0; alt < (c.scheme == GsqScheme::symmetric ? 2 : 1); ++alt)
      cand.push_back(params_for_range(c, lo * shrink, hi * shrink, signed_max * shrink, alt == 1));
  }
  std::vector<double>& err = s.candidate_errors;
  err.resize(cand.size());
  candidate_errors(c, v, norm, cand, err.data());
  size_t best_k = 0;
  for (size_t k = 1; k < cand.size(); ++k)
    if (err[k] < err[best_k]) best_k = k;
  GroupParams best = cand[best_k];
  double best_err = err[best_k];
  // Least-squares refits with the codes held fixed; kept only when they help.
  for (int it = 0; it < 4; ++it) {
    const GroupParams p = refit(c, best, v);
    const double e = group_error(c, p, v, norm);
    if (!(e < best_err)) break;
    best_err = e, best = p;
  }
  return best;
}

}  // namespace lowbit
