#pragma once
// The four-double operations of the GSQ search's single-candidate path
// (kernels/cpu/lanes/gsq_search_lanes.hpp), the same 256-bit AVX instructions in the
// AVX2 and AVX-512 variants: the accumulator is four lanes wide whatever the ISA.
// Included by ISA files only, after their target.hpp (internal linkage).
#include <immintrin.h>

namespace lowbit::kernels {
namespace {

struct AvxQuadOps {
  using Q = __m256d;
  static Q widen4(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
  static Q zero4() { return _mm256_setzero_pd(); }
  static Q add4(Q a, Q b) { return _mm256_add_pd(a, b); }
  static Q sub4(Q a, Q b) { return _mm256_sub_pd(a, b); }
  static Q mul4(Q a, Q b) { return _mm256_mul_pd(a, b); }
  static void store4(double* p, Q v) { _mm256_storeu_pd(p, v); }
};

}  // namespace
}  // namespace lowbit::kernels
