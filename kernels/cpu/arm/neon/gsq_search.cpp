// The GSQ search family on NEON: four candidates per pass over the group in a 128-bit
// register, their errors in two 128-bit registers of doubles, four accumulators each
// (one per element index mod 4; kernels/cpu/lanes/gsq_search_lanes.hpp).
#include "cpu/arm/neon/target.hpp"  // first: checks this file's compile flags

#include <arm_neon.h>

#include "cpu/lanes/gsq_search_lanes.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

struct NeonGsqOps {
  using F = float32x4_t;
  using D = float64x2_t;
  static constexpr int kLanes = 4;
  static F splat(float v) { return vdupq_n_f32(v); }
  static F load(const float* p) { return vld1q_f32(p); }
  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F sub(F a, F b) { return vsubq_f32(a, b); }
  static F mul(F a, F b) { return vmulq_f32(a, b); }
  static F div(F a, F b) { return vdivq_f32(a, b); }
  // FMIN / FMAX order signed zeros and propagate NaNs; std::min / std::max are selects.
  static F min(F a, F b) { return vbslq_f32(vcltq_f32(b, a), b, a); }
  static F max(F a, F b) { return vbslq_f32(vcltq_f32(a, b), b, a); }
  static D lo(F v) { return vcvt_f64_f32(vget_low_f32(v)); }
  static D hi(F v) { return vcvt_high_f64_f32(v); }
  static D splat_d(double v) { return vdupq_n_f64(v); }
  static D add_d(D a, D b) { return vaddq_f64(a, b); }
  static D sub_d(D a, D b) { return vsubq_f64(a, b); }
  static D mul_d(D a, D b) { return vmulq_f64(a, b); }
  static void store_d(double* p, D v) { vst1q_f64(p, v); }
  static void store(float* p, F v) { vst1q_f32(p, v); }
  // Four doubles in two registers: elements j, j + 1 and j + 2, j + 3.
  struct Q {
    float64x2_t a, b;
  };
  static Q widen4(const float* p) {
    const float32x4_t v = vld1q_f32(p);
    return {vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)};
  }
  static Q zero4() { return {vdupq_n_f64(0.0), vdupq_n_f64(0.0)}; }
  static Q add4(Q x, Q y) { return {vaddq_f64(x.a, y.a), vaddq_f64(x.b, y.b)}; }
  static Q sub4(Q x, Q y) { return {vsubq_f64(x.a, y.a), vsubq_f64(x.b, y.b)}; }
  static Q mul4(Q x, Q y) { return {vmulq_f64(x.a, y.a), vmulq_f64(x.b, y.b)}; }
  static void store4(double* p, Q v) {
    vst1q_f64(p, v.a);
    vst1q_f64(p + 2, v.b);
  }
};

}  // namespace

void gsq_search_errors__neon(const GsqCandidateSet& c, const float* x, const float* w, int64_t n, double* err) {
  gsq_search_errors_in_lanes<NeonGsqOps>(c, x, w, n, err);
}

}  // namespace lowbit::kernels
