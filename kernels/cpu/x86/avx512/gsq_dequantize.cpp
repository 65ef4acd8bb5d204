// GSQ decoder, AVX-512: 16 weights per step, each computed with decode_value's float
// operations (s * float(q - z), or s * float(q) + min, no FMA) so the bytes equal the
// scalar reference's. Contiguous groups broadcast one scale per 32-code chunk (groups
// are multiples of 32 codes); act-order layouts gather each column's parameters.
#include "target.hpp"  // first: checks the folder's flags
#include "gsq_codes.hpp"
#include "lists/declarations.hpp"
#include "common/gsq_width.hpp"

namespace lowbit::kernels {
namespace {

using namespace avx512_gsq;

template <int B, bool FloatMin, bool Gidx>
void decode_row(const GsqMatrixRef& m, const Unpacker<B>& u, float* out, int64_t r) {
  const int64_t groups = m.cols / m.group, chunks = (m.cols + 31) / 32;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  const float* s = m.scales + r * groups;
  const int32_t* z = m.zeros + r * groups;
  const float* mn = FloatMin ? m.mins + r * groups : nullptr;
  for (int64_t k = 0; k < chunks; ++k) {
    const ChunkMasks mk(std::min<int64_t>(32, m.cols - 32 * k));
    const __m512i w = chunk_words<B>(row, m.words_per_row, k);
    __m512 sv, mv;
    __m512i zv;
    if constexpr (!Gidx) {
      const int64_t g = 32 * k / m.group;
      sv = _mm512_set1_ps(s[g]);
      if constexpr (FloatMin) mv = _mm512_set1_ps(mn[g]);
      else zv = _mm512_set1_epi32(z[g]);
    }
    for (int h = 0; h < 2; ++h) {
      const __mmask16 lanes = h ? mk.hi : mk.lo;
      const int64_t c = 32 * k + 16 * h;
      const __m512i code = u.codes(w, h);
      if constexpr (Gidx) {
        const __m512i gi = _mm512_maskz_loadu_epi32(lanes, m.g_idx + c);
        sv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, gi, s, 4);
        if constexpr (FloatMin) mv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, gi, mn, 4);
        else zv = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, gi, z, 4);
      }
      __m512 wv;
      if constexpr (FloatMin) wv = _mm512_add_ps(_mm512_mul_ps(sv, _mm512_cvtepi32_ps(code)), mv);
      else wv = _mm512_mul_ps(sv, _mm512_cvtepi32_ps(_mm512_sub_epi32(code, zv)));
      _mm512_mask_storeu_ps(out + c, lanes, wv);
    }
  }
}

template <int B>
void decode_bits(const GsqMatrixRef& m, float* out, int64_t ld, int64_t r0, int64_t r1) {
  const Unpacker<B> u;
  auto run = [&]<bool FloatMin, bool Gidx>() {
    for (int64_t r = r0; r < r1; ++r) decode_row<B, FloatMin, Gidx>(m, u, out + r * ld, r);
  };
  if (m.mins)
    m.g_idx ? run.template operator()<true, true>() : run.template operator()<true, false>();
  else
    m.g_idx ? run.template operator()<false, true>() : run.template operator()<false, false>();
}

}  // namespace

void gsq_dequantize__avx512(const GsqMatrixRef& m, float* out, int64_t ld, int64_t r0, int64_t r1) {
  const bool done = with_gsq_width(m.bits, [&](auto b) { decode_bits<decltype(b)::value>(m, out, ld, r0, r1); });
  if (!done) gsq_dequantize__scalar(m, out, ld, r0, r1);  // widths GsqConfig does not produce
}

}  // namespace lowbit::kernels
