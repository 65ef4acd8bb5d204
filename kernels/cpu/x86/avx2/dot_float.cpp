// AVX2 dot products of float weight rows (F32, F16, BF16) with float activations:
// four independent FMA chains hide the FMA latency; a scalar tail covers n % 32.
#include "target.hpp"
// (target.hpp first: it checks the compile flags.)
#include "dot_common.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"

namespace lowbit::kernels {
namespace {

template <class Load8, class Scalar>
float dot_floats(const float* a, int64_t n, Load8 load8, Scalar scalar) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(load8(i + 8 * k), _mm256_loadu_ps(a + i + 8 * k), acc[k]);
  float tail = 0;
  for (; i < n; ++i) tail += scalar(i) * a[i];
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) + tail;
}

}  // namespace

float dot_f32_f32__avx2(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const float*>(vw);
  return dot_floats(static_cast<const float*>(va), n, [w](int64_t i) { return _mm256_loadu_ps(w + i); },
                    [w](int64_t i) { return w[i]; });
}

float dot_f16_f32__avx2(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  return dot_floats(
      static_cast<const float*>(va), n,
      [w](int64_t i) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i))); },
      [w](int64_t i) { return fp16_to_fp32(w[i]); });
}

float dot_bf16_f32__avx2(const void* vw, const void* va, int64_t n) {
  const auto* w = static_cast<const uint16_t*>(vw);
  return dot_floats(
      static_cast<const float*>(va), n,
      [w](int64_t i) {
        const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
      },
      [w](int64_t i) { return bf16_to_fp32(w[i]); });
}

}  // namespace lowbit::kernels
