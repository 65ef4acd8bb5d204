// GSQ x Q8_0 GEMV, AVX2: the reference's arithmetic (kernels/cpu/reference/
// gsq_gemv_q8.cpp) with each 32-column block's integer sum I = sum q * xq in vectors.
//
// The activations are laid out once per call in the orders the weight codes come out
// cheapest, so that matching pairs multiply without a shuffle:
//   - 4 bits: a block's 16 bytes hold codes 2k (low nibbles) and 2k + 1 (high): the
//     activations as bytes, even ones then odd ones, for one vpmaddubsw (codes <= 15,
//     so no pair sum saturates) and one vpmaddwd by ones;
//   - 8 bits: the codes are the bytes, widened to int16 in order, against the
//     activations in order (vpmaddwd);
//   - 2, 3, 5 and 6 bits: codes come out of the dword unpacker (gsq_codes.hpp) and
//     _mm256_packs_epi32 narrows pairs of them to int16 interleaved by 128-bit lane
//     (codes 0-3, 8-11, 4-7, 12-15), against the activations in that order.
// Codes are at most 255 and activations within int8: every sum is exact in int32. The block's float term is the reference's own formula in float64, summed
// over blocks in order, so y is the scalar reference's, bit for bit, at any thread
// count. Act-order layouts (g_idx) change groups inside a block and run the reference.
#include "cpu/x86/avx2/target.hpp"  // first: checks this file's compile flags

#include <immintrin.h>

#include <vector>

#include "common/gsq_q8_term.hpp"
#include "cpu/gsq_q8_rows.hpp"
#include "cpu/x86/avx2/gsq_codes.hpp"
#include "lists/declarations.hpp"
#include "lowbit/core/half.hpp"
#include "lowbit/formats/blocks.hpp"

namespace lowbit::kernels {
namespace {

using namespace avx2_gsq;

struct alignas(32) BlockX {
  int16_t packs[2][16];  // [h]: codes 16h + {0-3, 8-11, 4-7, 12-15}
  int16_t order[2][16];  // [h]: codes 16h .. 16h + 15
  int8_t even_odd[32];   // codes 0, 2, .., 30, then 1, 3, .., 31
  double d = 0;          // the block's scale
  int64_t sum = 0;       // the sum of its 32 codes
};

void widen(const block_q8_0* x, int64_t blocks, std::vector<BlockX>& out) {
  static constexpr int kOrder[16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};
  out.resize(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b) {
    BlockX& o = out[static_cast<size_t>(b)];
    int64_t s = 0;
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 16; ++i) {
        o.packs[h][i] = x[b].qs[16 * h + kOrder[i]];
        o.order[h][i] = x[b].qs[16 * h + i];
        o.even_odd[16 * h + i] = x[b].qs[2 * i + h];
      }
    for (int j = 0; j < 32; ++j) s += x[b].qs[j];
    o.sum = s;
    o.d = fp16_to_fp32(x[b].d);
  }
}

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

template <int B>
double row_grouped(const GsqMatrixRef& m, const std::vector<BlockX>& xb, int64_t r) {
  const int64_t groups = m.cols / m.group;
  const uint32_t* row = m.qweight + r * m.words_per_row;
  double acc = 0;
  for (size_t b = 0; b < xb.size(); ++b) {
    const BlockX& x = xb[b];
    __m256i p;
    if constexpr (B == 4) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 4 * static_cast<int64_t>(b)));
      const __m128i nibble = _mm_set1_epi8(0x0F);
      const __m256i codes =
          _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), nibble), _mm_and_si128(v, nibble));
      const __m256i pairs =
          _mm256_maddubs_epi16(codes, _mm256_load_si256(reinterpret_cast<const __m256i*>(x.even_odd)));
      p = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    } else if constexpr (B == 8) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 8 * static_cast<int64_t>(b)));
      const __m256i lo = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(v));
      const __m256i hi = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(v, 1));
      p = _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_load_si256(reinterpret_cast<const __m256i*>(x.order[0]))),
                           _mm256_madd_epi16(hi, _mm256_load_si256(reinterpret_cast<const __m256i*>(x.order[1]))));
    } else {
      const __m256i w = chunk_words<B>(row, m.words_per_row, static_cast<int64_t>(b));
      p = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const __m256i c = _mm256_packs_epi32(Unpacker<B>::codes(w, 2 * h), Unpacker<B>::codes(w, 2 * h + 1));
        p = _mm256_add_epi32(p,
                             _mm256_madd_epi16(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(x.packs[h]))));
      }
    }
    const int64_t qx = hsum(p);
    const int64_t g = r * groups + 32 * static_cast<int64_t>(b) / m.group;
    acc += gsq_q8_block_term(m, g, x.d, qx, x.sum);
  }
  return acc;
}

}  // namespace

void gsq_gemv_q8__avx2(const GsqMatrixRef& m, const void* xq, float* y, int64_t r0, int64_t r1) {
  if (m.g_idx) return gsq_gemv_q8__scalar(m, xq, y, r0, r1);
  gsq_q8_rows<BlockX>(m, xq, y, r0, r1, widen, [&](auto width, const std::vector<BlockX>& xb, int64_t r) {
    return row_grouped<decltype(width)::value>(m, xb, r);
  });
}

}  // namespace lowbit::kernels
