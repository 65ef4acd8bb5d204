// GSQ GEMV, AVX2 + FMA: y = W x on the packed codes with float32 activations.
//
// Contiguous groups (no g_idx): two rows at a time share every load of x; each row
// sums (q - z) * x (or q * x with a float minimum) per group in two accumulators and
// applies the group's scale once. Subtracting the zero point in integers keeps the
// float sums free of the cancellation that s * (sum q x - z sum x) would suffer.
// A row's arithmetic does not depend on which rows share its pass, so the result is
// the same at any thread count or row split.
//
// Act-order layouts (g_idx): each lane gathers its column's scale and zero, decodes
// the weight exactly and accumulates w * x: the general path, slower by the gathers.
#include "gsq_codes.hpp"
#include "lists/declarations.hpp"
#include "common/gsq_width.hpp"

namespace lowbit::kernels {
namespace {

using namespace avx2_gsq;

inline float reduce_add(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int B, bool FloatMin, int R>
void rows_grouped(const GsqMatrixRef& m, const float* x, float* y, int64_t r) {
  const int64_t groups = m.cols / m.group, chunks = (m.cols + 31) / 32, full = m.cols / 32;
  const uint32_t* rows[R];
  __m256 total[R];
  for (int i = 0; i < R; ++i) {
    rows[i] = m.qweight + (r + i) * m.words_per_row;
    total[i] = _mm256_setzero_ps();
  }
  for (int64_t g = 0; g < groups; ++g) {
    __m256 acc[R][2], ax[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    __m256i zero_point[R];
    for (int i = 0; i < R; ++i) {
      acc[i][0] = acc[i][1] = _mm256_setzero_ps();
      if constexpr (!FloatMin) zero_point[i] = _mm256_set1_epi32(m.zeros[(r + i) * groups + g]);
    }
    auto step = [&](int64_t k, int64_t n) {  // chunk k, holding n codes
      __m256 xv[4];
      for (int q = 0; q < 4; ++q)
        xv[q] = n == 32 ? _mm256_loadu_ps(x + 32 * k + 8 * q)
                        : _mm256_maskload_ps(x + 32 * k + 8 * q, lane_mask(n - 8 * q));
      if constexpr (FloatMin) {
        ax[0] = _mm256_add_ps(ax[0], _mm256_add_ps(xv[0], xv[2]));
        ax[1] = _mm256_add_ps(ax[1], _mm256_add_ps(xv[1], xv[3]));
      }
#pragma GCC unroll 2
      for (int i = 0; i < R; ++i) {
        const __m256i w = chunk_words<B>(rows[i], m.words_per_row, k);
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          __m256i c = Unpacker<B>::codes(w, q);
          if constexpr (!FloatMin) c = _mm256_sub_epi32(c, zero_point[i]);
          acc[i][q & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c), xv[q], acc[i][q & 1]);
        }
      }
    };
    const int64_t k0 = g * m.group / 32, k1 = std::min(chunks, ((g + 1) * m.group + 31) / 32);
    const int64_t kf = std::min(k1, full);
    for (int64_t k = k0; k < kf; ++k) step(k, 32);
    if (kf < k1) step(kf, m.cols - 32 * kf);
    for (int i = 0; i < R; ++i) {
      const int64_t gi = (r + i) * groups + g;
      total[i] = _mm256_fmadd_ps(_mm256_set1_ps(m.scales[gi]), _mm256_add_ps(acc[i][0], acc[i][1]), total[i]);
      if constexpr (FloatMin)
        total[i] = _mm256_fmadd_ps(_mm256_set1_ps(m.mins[gi]), _mm256_add_ps(ax[0], ax[1]), total[i]);
    }
  }
  for (int i = 0; i < R; ++i) y[r + i] = reduce_add(total[i]);
}

template <int B, bool FloatMin>
void row_gidx(const GsqMatrixRef& m, const float* x, float* y, int64_t r) {
  const int64_t groups = m.cols / m.group, chunks = (m.cols + 31) / 32;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  const float* s = m.scales + r * groups;
  const int32_t* z = m.zeros + r * groups;
  const float* mn = FloatMin ? m.mins + r * groups : nullptr;
  __m256 t[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t n = std::min<int64_t>(32, m.cols - 32 * k);
    const __m256i w = chunk_words<B>(row, m.words_per_row, k);
    for (int q = 0; q < 4; ++q) {
      const __m256i lanes = lane_mask(n - 8 * q);
      const int64_t c = 32 * k + 8 * q;
      const __m256i code = Unpacker<B>::codes(w, q);
      const __m256i gi = _mm256_maskload_epi32(m.g_idx + c, lanes);
      const __m256 fl = _mm256_castsi256_ps(lanes);
      const __m256 sv = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), s, gi, fl, 4);
      __m256 wv;
      if constexpr (FloatMin) {
        const __m256 mv = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), mn, gi, fl, 4);
        wv = _mm256_add_ps(_mm256_mul_ps(sv, _mm256_cvtepi32_ps(code)), mv);
      } else {
        const __m256i zv = _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), z, gi, lanes, 4);
        wv = _mm256_mul_ps(sv, _mm256_cvtepi32_ps(_mm256_sub_epi32(code, zv)));
      }
      // Lanes past the row hold zero scales and zero x: their products add nothing.
      t[q & 1] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(x + c, lanes), t[q & 1]);
    }
  }
  y[r] = reduce_add(_mm256_add_ps(t[0], t[1]));
}

template <int B>
void gemv_bits(const GsqMatrixRef& m, const float* x, float* y, int64_t r0, int64_t r1) {
  auto run = [&]<bool FloatMin>() {
    if (m.g_idx) {
      for (int64_t r = r0; r < r1; ++r) row_gidx<B, FloatMin>(m, x, y, r);
      return;
    }
    int64_t r = r0;
    for (; r + 2 <= r1; r += 2) rows_grouped<B, FloatMin, 2>(m, x, y, r);
    for (; r < r1; ++r) rows_grouped<B, FloatMin, 1>(m, x, y, r);
  };
  if (m.mins)
    run.template operator()<true>();
  else
    run.template operator()<false>();
}

}  // namespace

void gsq_gemv__avx2(const GsqMatrixRef& m, const float* x, float* y, int64_t r0, int64_t r1) {
  const bool done = with_gsq_width(m.bits, [&](auto b) { gemv_bits<decltype(b)::value>(m, x, y, r0, r1); });
  if (!done) gsq_gemv__scalar(m, x, y, r0, r1);  // widths GsqConfig does not produce
}

}  // namespace lowbit::kernels
