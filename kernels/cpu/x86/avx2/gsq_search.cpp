// The GSQ search family on AVX2: eight candidates per pass over the group in a 256-bit
// register, their errors in two 256-bit registers of doubles, four accumulators each
// (one per element index mod 4; kernels/cpu/lanes/gsq_search_lanes.hpp).
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include "cpu/lanes/gsq_search_lanes.hpp"
#include "cpu/x86/gsq_quad_ops.hpp"
#include "lists/declarations.hpp"

namespace lowbit::kernels {
namespace {

struct Avx2GsqOps : AvxQuadOps {
  using F = __m256;
  using D = __m256d;
  static constexpr int kLanes = 8;
  static F splat(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  // MINPS / MAXPS return their second operand unless the first is strictly smaller /
  // larger: std::min(a, b) and std::max(a, b) with the operands swapped.
  static F min(F a, F b) { return _mm256_min_ps(b, a); }
  static F max(F a, F b) { return _mm256_max_ps(b, a); }
  static D lo(F v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
  static D hi(F v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }
  static D splat_d(double v) { return _mm256_set1_pd(v); }
  static D add_d(D a, D b) { return _mm256_add_pd(a, b); }
  static D sub_d(D a, D b) { return _mm256_sub_pd(a, b); }
  static D mul_d(D a, D b) { return _mm256_mul_pd(a, b); }
  static void store_d(double* p, D v) { _mm256_storeu_pd(p, v); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
};

}  // namespace

void gsq_search_errors__avx2(const GsqCandidateSet& c, const float* x, const float* w, int64_t n, double* err) {
  gsq_search_errors_in_lanes<Avx2GsqOps>(c, x, w, n, err);
}

}  // namespace lowbit::kernels
