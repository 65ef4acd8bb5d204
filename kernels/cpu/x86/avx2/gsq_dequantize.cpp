// GSQ decoder, AVX2: 8 weights per step, each computed with decode_value's float
// operations (s * float(q - z), or s * float(q) + min, no FMA) so the bytes equal the
// scalar reference's. Contiguous groups broadcast one scale per 32-code chunk (groups
// are multiples of 32 codes); act-order layouts gather each column's parameters.
#include "gsq_codes.hpp"
#include "lists/declarations.hpp"
#include "common/gsq_width.hpp"

namespace lowbit::kernels {
namespace {

using namespace avx2_gsq;

template <int B, bool FloatMin, bool Gidx>
void decode_row(const GsqMatrixRef& m, float* out, int64_t r) {
  const int64_t groups = m.cols / m.group, chunks = (m.cols + 31) / 32;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  const float* s = m.scales + r * groups;
  const int32_t* z = m.zeros + r * groups;
  const float* mn = FloatMin ? m.mins + r * groups : nullptr;
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t n = std::min<int64_t>(32, m.cols - 32 * k);
    const __m256i w = chunk_words<B>(row, m.words_per_row, k);
    __m256 sv, mv;
    __m256i zv;
    if constexpr (!Gidx) {
      const int64_t g = 32 * k / m.group;
      sv = _mm256_set1_ps(s[g]);
      if constexpr (FloatMin) mv = _mm256_set1_ps(mn[g]);
      else zv = _mm256_set1_epi32(z[g]);
    }
    for (int q = 0; q < 4; ++q) {
      const __m256i lanes = lane_mask(n - 8 * q);
      const int64_t c = 32 * k + 8 * q;
      const __m256i code = Unpacker<B>::codes(w, q);
      if constexpr (Gidx) {
        const __m256i gi = _mm256_maskload_epi32(m.g_idx + c, lanes);
        const __m256 fl = _mm256_castsi256_ps(lanes);
        sv = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), s, gi, fl, 4);
        if constexpr (FloatMin) mv = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), mn, gi, fl, 4);
        else zv = _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), z, gi, lanes, 4);
      }
      __m256 wv;
      if constexpr (FloatMin) wv = _mm256_add_ps(_mm256_mul_ps(sv, _mm256_cvtepi32_ps(code)), mv);
      else wv = _mm256_mul_ps(sv, _mm256_cvtepi32_ps(_mm256_sub_epi32(code, zv)));
      if (n == 32) _mm256_storeu_ps(out + c, wv);
      else _mm256_maskstore_ps(out + c, lanes, wv);
    }
  }
}

template <int B>
void decode_bits(const GsqMatrixRef& m, float* out, int64_t ld, int64_t r0, int64_t r1) {
  auto run = [&]<bool FloatMin, bool Gidx>() {
    for (int64_t r = r0; r < r1; ++r) decode_row<B, FloatMin, Gidx>(m, out + r * ld, r);
  };
  if (m.mins)
    m.g_idx ? run.template operator()<true, true>() : run.template operator()<true, false>();
  else
    m.g_idx ? run.template operator()<false, true>() : run.template operator()<false, false>();
}

}  // namespace

void gsq_dequantize__avx2(const GsqMatrixRef& m, float* out, int64_t ld, int64_t r0, int64_t r1) {
  const bool done = with_gsq_width(m.bits, [&](auto b) { decode_bits<decltype(b)::value>(m, out, ld, r0, r1); });
  if (!done) gsq_dequantize__scalar(m, out, ld, r0, r1);  // widths GsqConfig does not produce
}

}  // namespace lowbit::kernels
